using System.Diagnostics;
using System.Text;

namespace McGrpc.Tests.Qmp;

/// <summary>
/// A real qemu-system-x86_64 with a QMP socket in a temp directory. Its output is kept for
/// failure messages; disposing kills it and removes the directory and any extra files.
/// </summary>
internal sealed class QemuProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly string _directory;
    private readonly IReadOnlyList<string> _cleanupFiles;
    private readonly StringBuilder _output = new();

    private QemuProcess(Process process, string directory, IReadOnlyList<string> cleanupFiles)
    {
        _process = process;
        _directory = directory;
        _cleanupFiles = cleanupFiles;
    }

    public string QmpSocketPath => Path.Combine(_directory, "qmp.sock");

    public int Pid => _process.Id;

    /// <summary>What QEMU printed so far, for assertion messages.</summary>
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

    /// <summary>
    /// Starts QEMU with <paramref name="arguments"/> plus a QMP server socket and waits until the
    /// socket exists. <paramref name="cleanupFiles"/> are deleted on dispose (e.g. RAM files in /dev/shm).
    /// </summary>
    public static async Task<QemuProcess> StartAsync(IEnumerable<string> arguments, params string[] cleanupFiles)
    {
        var directory = Directory.CreateTempSubdirectory("mcgrpc-qemu-").FullName;
        var startInfo = new ProcessStartInfo("qemu-system-x86_64")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        startInfo.ArgumentList.Add("-qmp");
        startInfo.ArgumentList.Add($"unix:{Path.Combine(directory, "qmp.sock")},server=on,wait=off");

        var process = new Process { StartInfo = startInfo };
        var qemu = new QemuProcess(process, directory, cleanupFiles);
        process.OutputDataReceived += (_, e) => qemu.Append(e.Data);
        process.ErrorDataReceived += (_, e) => qemu.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            await qemu.WaitForSocketAsync();
        }
        catch
        {
            await qemu.DisposeAsync();
            throw;
        }

        return qemu;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            _process.Dispose();
            foreach (var file in _cleanupFiles)
            {
                File.Delete(file);
            }

            Directory.Delete(_directory, recursive: true);
        }
    }

    private async Task WaitForSocketAsync()
    {
        // QEMU creates the listening socket during start-up; there is nothing to wait on but the
        // file itself, so check it on a short period, bounded by StartTimeout.
        var deadline = Stopwatch.StartNew();
        while (!File.Exists(QmpSocketPath))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"QEMU exited with {_process.ExitCode} before creating its QMP socket:\n{Output}");
            }

            if (deadline.Elapsed > StartTimeout)
            {
                throw new TimeoutException($"QEMU created no QMP socket within {StartTimeout.TotalSeconds} s:\n{Output}");
            }

            await Task.Delay(10);
        }
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
