using System.Diagnostics;
using System.Text;
using McGrpc.Shared.Qmp;

namespace McGrpc.Tests.Infrastructure;

/// <summary>
/// A real QEMU (TCG) running the test guest, or waiting as an incoming backup.
/// RAM is a shared file in /dev/shm; the serial console goes to a file the
/// tests read. QEMU gets two QMP sockets: one for the daemon, one for the test.
/// Disposing kills QEMU and deletes its files.
/// </summary>
internal sealed class TestVm : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private bool _disposed;
    private QmpClient? _testQmp;

    private TestVm(Process process, string directory, string ramFile, TestVmOptions options)
    {
        _process = process;
        Directory = directory;
        RamFile = ramFile;
        Options = options;
    }

    public TestVmOptions Options { get; }

    public string Directory { get; }

    public string RamFile { get; }

    public string DaemonQmpSocket => Path.Combine(Directory, "qmp.sock");

    public string TestQmpSocket => Path.Combine(Directory, "test-qmp.sock");

    public string SerialLog => Path.Combine(Directory, "serial.log");

    public int Pid => _process.Id;

    public bool HasExited => _disposed || _process.HasExited;

    public static async Task<TestVm> StartAsync(TestVmOptions options)
    {
        var (kernel, initrd) = await TestGuest.EnsureBuiltAsync();
        var directory = System.IO.Directory.CreateTempSubdirectory("mcgrpc-vm-").FullName;
        var ramFile = $"/dev/shm/mcgrpc-test-{Path.GetFileName(directory)}.ram";
        var args = new List<string>
        {
            "-accel", "tcg",
            "-machine", "q35,memory-backend=ram0,suppress-vmdesc=on",
            "-m", $"{options.MemoryMiB}M",
            "-object", $"memory-backend-file,id=ram0,size={options.MemoryMiB}M,mem-path={ramFile},share=on",
            "-smp", "1", "-nodefaults", "-vga", "none", "-display", "none", "-no-user-config",
            "-name", options.Name,
            "-kernel", kernel, "-initrd", initrd,
            "-append", $"console=ttyS0 quiet mc.run={options.Run} {options.ExtraAppend}".Trim(),
            "-chardev", $"file,id=ser0,path={Path.Combine(directory, "serial.log")}", "-serial", "chardev:ser0",
            "-qmp", $"unix:{Path.Combine(directory, "qmp.sock")},server=on,wait=off",
            "-qmp", $"unix:{Path.Combine(directory, "test-qmp.sock")},server=on,wait=off",
        };
        args.AddRange(options.ExtraArgs);
        if (options.Incoming)
        {
            args.AddRange(["-incoming", "defer", "-S"]);
        }

        var start = new ProcessStartInfo("qemu-system-x86_64") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        args.ForEach(start.ArgumentList.Add);
        var process = new Process { StartInfo = start };
        var vm = new TestVm(process, directory, ramFile, options);
        process.OutputDataReceived += (_, e) => vm.Append(e.Data);
        process.ErrorDataReceived += (_, e) => vm.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await Wait.UntilAsync(() => File.Exists(vm.TestQmpSocket) || process.HasExited, TimeSpan.FromSeconds(20), () => $"QEMU did not create its QMP socket.\n{vm.Output}");
            if (process.HasExited)
            {
                throw new InvalidOperationException($"QEMU exited at start ({process.ExitCode}):\n{vm.Output}");
            }
        }
        catch
        {
            await vm.DisposeAsync();
            throw;
        }

        return vm;
    }

    /// <summary>What QEMU printed on stdout/stderr.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>The test's own QMP connection (the daemon has the other socket).</summary>
    public async Task<QmpClient> QmpAsync()
    {
        return _testQmp ??= await QmpClient.ConnectAsync(TestQmpSocket, null, null, CancellationToken.None);
    }

    public string[] SerialLines()
    {
        try
        {
            using var stream = new FileStream(SerialLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (FileNotFoundException)
        {
            return [];
        }
    }

    public Task WaitForSerialAsync(Func<string, bool> line, TimeSpan timeout, string what)
        => Wait.UntilAsync(() => SerialLines().Any(line), timeout, () => $"{what} never appeared on the serial console:\n{Tail(SerialLines(), 20)}", 100);

    /// <summary>Values of "COUNTER n" lines, in order.</summary>
    public IReadOnlyList<long> CounterValues() => SerialLines()
        .Where(l => l.StartsWith("COUNTER ", StringComparison.Ordinal))
        .Select(l => long.TryParse(l.AsSpan(8).Trim(), out var v) ? v : -1)
        .Where(v => v >= 0)
        .ToList();

    public IReadOnlyList<string> Violations() => SerialLines().Where(l => l.Contains("VIOLATION", StringComparison.Ordinal)).ToList();

    public void Kill()
    {
        if (_disposed)
        {
            return;
        }

        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
    }

    public string Diagnostics(string label) => $"--- {label} QEMU output ---\n{Tail(Output.Split('\n'), 20)}\n--- {label} serial ---\n{Tail(SerialLines(), 15)}";

    public async ValueTask DisposeAsync()
    {
        if (_testQmp is not null)
        {
            await _testQmp.DisposeAsync();
        }

        Kill();
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _process.Dispose();
        File.Delete(RamFile);
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    internal static string Tail(IEnumerable<string> lines, int count) => string.Join('\n', lines.TakeLast(count));

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
