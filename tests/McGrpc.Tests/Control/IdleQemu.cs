using System.Diagnostics;
using System.Text;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Control;

/// <summary>
/// A QEMU that boots nothing (-S, no kernel): enough for a daemon to connect,
/// inspect the VM and map its RAM, at a fraction of a booted guest's cost.
/// Optionally with a writable virtio disk, or waiting as an incoming backup.
/// </summary>
internal sealed class IdleQemu : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private bool _disposed;

    private IdleQemu(Process process, string directory, string ramFile)
    {
        _process = process;
        Directory = directory;
        RamFile = ramFile;
    }

    public string Directory { get; }

    public string RamFile { get; }

    public string QmpSocket => Path.Combine(Directory, "qmp.sock");

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

    /// <param name="name">QEMU -name, the VM id the daemons use.</param>
    /// <param name="writableDisk">Attach a writable 1 MiB raw image on virtio.</param>
    /// <param name="incoming">Start with -incoming defer, as a backup.</param>
    public static async Task<IdleQemu> StartAsync(string name, bool writableDisk, bool incoming)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("mcgrpc-idle-").FullName;
        var ramFile = $"/dev/shm/mcgrpc-test-{Path.GetFileName(directory)}.ram";
        var args = new List<string>
        {
            "-accel", "tcg",
            "-machine", "q35,memory-backend=ram0",
            "-m", "64M",
            "-object", $"memory-backend-file,id=ram0,size=64M,mem-path={ramFile},share=on",
            "-name", name,
            "-nodefaults", "-vga", "none", "-display", "none", "-no-user-config", "-S",
            "-qmp", $"unix:{Path.Combine(directory, "qmp.sock")},server=on,wait=off",
        };
        if (writableDisk)
        {
            var disk = Path.Combine(directory, "disk.raw");
            await using (var image = File.Create(disk))
            {
                image.SetLength(1024 * 1024);
            }

            args.AddRange(["-drive", $"file={disk},if=virtio,format=raw"]);
        }

        if (incoming)
        {
            args.AddRange(["-incoming", "defer"]);
        }

        var start = new ProcessStartInfo("qemu-system-x86_64") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        args.ForEach(start.ArgumentList.Add);
        var process = new Process { StartInfo = start };
        var qemu = new IdleQemu(process, directory, ramFile);
        process.OutputDataReceived += (_, e) => qemu.Append(e.Data);
        process.ErrorDataReceived += (_, e) => qemu.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await Wait.UntilAsync(() => File.Exists(qemu.QmpSocket) || process.HasExited, TimeSpan.FromSeconds(30), () => $"QEMU did not create its QMP socket.\n{qemu.Output}");
            if (process.HasExited)
            {
                throw new InvalidOperationException($"QEMU exited at start ({process.ExitCode}):\n{qemu.Output}");
            }
        }
        catch
        {
            await qemu.DisposeAsync();
            throw;
        }

        return qemu;
    }

    public ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return ValueTask.CompletedTask;
        }

        _disposed = true;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
        File.Delete(RamFile);
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }

        return ValueTask.CompletedTask;
    }

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
