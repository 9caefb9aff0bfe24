using System.Diagnostics;
using System.Text;

namespace McGrpc.Tests.Infrastructure;

/// <summary>mc-primary or mc-backup as a real process; its output is kept for failure messages.</summary>
internal sealed class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private bool _disposed;
    private StreamWriter? _log;

    private DaemonProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public int Pid => _process.Id;

    public bool HasExited => _disposed || _process.HasExited;

    public int ExitCode => _process.ExitCode;

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

    public static DaemonProcess StartPrimary(params string[] args) => Start("mc-primary", TestPaths.DaemonDll("Primary", "mc-primary"), args);

    public static DaemonProcess StartBackup(params string[] args) => Start("mc-backup", TestPaths.DaemonDll("Backup", "mc-backup"), args);

    public static DaemonProcess Start(string name, string dll, IEnumerable<string> args)
    {
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"{name} is not built at {dll}; build the solution first (dotnet build -c {TestPaths.Configuration}).");
        }

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_gcServer"] = "0";
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var daemon = new DaemonProcess(name, process);
        process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
        process.Start();
        daemon._log = new StreamWriter(Path.Combine(TestPaths.LogDirectory, $"{DateTime.Now:HHmmss}-{name}-{process.Id}.log")) { AutoFlush = true };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return daemon;
    }

    public bool OutputContains(string text) => Output.Contains(text, StringComparison.Ordinal);

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

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancellation.Token);
        return _process.ExitCode;
    }

    public string Diagnostics() => $"--- {Name} output ---\n{TestVm.Tail(Output.Split('\n'), 40)}";

    public ValueTask DisposeAsync()
    {
        Kill();
        if (!_disposed)
        {
            _disposed = true;
            _process.Dispose();
            lock (_output)
            {
                _log?.Dispose();
                _log = null;
            }
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
            _log?.WriteLine(line);
        }
    }
}
