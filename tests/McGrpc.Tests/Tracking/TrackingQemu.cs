using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using McGrpc.Primary.Tracking;
using McGrpc.Shared.Memory;
using McGrpc.Shared.Native;
using McGrpc.Shared.Qmp;
using Microsoft.Extensions.Logging.Abstractions;

namespace McGrpc.Tests.Tracking;

/// <summary>
/// A real QEMU (TCG, q35) whose guest RAM is a shared file in /dev/shm, with a
/// QMP client and the serial console in a file. Either the test guest (kernel +
/// initramfs running workloads) or firmware only. Dispose kills QEMU and deletes
/// its files.
/// </summary>
internal sealed partial class TrackingQemu : IAsyncDisposable
{
    public const long RamSize = 256L * 1024 * 1024;

    private static readonly TimeSpan BootTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private TrackingQemu(Process process, string directory, string ramPath)
    {
        _process = process;
        Directory = directory;
        RamPath = ramPath;
    }

    public string Directory { get; }

    public string RamPath { get; }

    public string SerialPath => Path.Combine(Directory, "serial.log");

    public int Pid => _process.Id;

    public QmpClient Qmp { get; private set; } = null!;

    /// <summary>QEMU's mapping of the RAM file (/proc/&lt;pid&gt;/maps).</summary>
    public ProcMapsEntry RamMapping { get; private set; } = null!;

    public string Serial => File.Exists(SerialPath) ? File.ReadAllText(SerialPath) : string.Empty;

    /// <summary>What QEMU printed and the serial tail, for assertion messages.</summary>
    public string Diagnostics
    {
        get
        {
            string output;
            lock (_output)
            {
                output = _output.ToString();
            }

            var serial = Serial;
            return $"QEMU output:\n{output}\nserial (tail):\n{serial[Math.Max(0, serial.Length - 2000)..]}";
        }
    }

    /// <param name="workloads">Guest workloads (mc.run=...); null boots firmware only, no guest kernel.</param>
    /// <param name="extraAppend">More kernel command-line words (e.g. workload arguments).</param>
    public static async Task<TrackingQemu> StartAsync(string? workloads, string extraAppend = "")
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("mcgrpc-tracking-").FullName;
        var ramPath = $"/dev/shm/mcgrpc-tracking-{Guid.NewGuid():N}.ram";
        var startInfo = new ProcessStartInfo("qemu-system-x86_64")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        string[] arguments =
        [
            "-accel", "tcg", "-smp", "2",
            "-machine", "q35,memory-backend=ram0", "-m", "256M",
            "-object", $"memory-backend-file,id=ram0,size=256M,mem-path={ramPath},share=on",
            "-nodefaults", "-display", "none", "-vga", "none",
            "-qmp", $"unix:{Path.Combine(directory, "qmp.sock")},server=on,wait=off",
            "-chardev", $"file,id=ser0,path={Path.Combine(directory, "serial.log")}", "-serial", "chardev:ser0",
        ];
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        if (workloads is not null)
        {
            var guest = GuestDirectory();
            startInfo.ArgumentList.Add("-kernel");
            startInfo.ArgumentList.Add(Path.Combine(guest, "vmlinuz"));
            startInfo.ArgumentList.Add("-initrd");
            startInfo.ArgumentList.Add(Path.Combine(guest, "initramfs.cpio.gz"));
            startInfo.ArgumentList.Add("-append");
            startInfo.ArgumentList.Add($"console=ttyS0 quiet mc.run={workloads} {extraAppend}".Trim());
        }

        var process = Process.Start(startInfo) ?? throw new InvalidOperationException("qemu-system-x86_64 did not start.");
        var qemu = new TrackingQemu(process, directory, ramPath);
        process.OutputDataReceived += (_, e) => qemu.Append(e.Data);
        process.ErrorDataReceived += (_, e) => qemu.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await qemu.InitializeAsync(workloads is not null);
            return qemu;
        }
        catch
        {
            await qemu.DisposeAsync();
            throw;
        }
    }

    /// <summary>Maps the RAM file read-only, as mc-primary does.</summary>
    public MappedMemory MapRam() => MappedMemory.MapSharedFile(RamPath, RamSize, writable: false);

    /// <summary>A uffd-wp tracker on this QEMU's guest RAM, read through <paramref name="ram"/>.</summary>
    public UffdWpTracker CreateUffdWpTracker(MappedMemory ram) =>
        new(Pid, RamMapping.Start, (long)RamMapping.Length, Environment.SystemPageSize, ram, NullLogger.Instance);

    /// <summary>Copies all guest RAM from <paramref name="from"/> into <paramref name="to"/>, 1 MiB at a time.</summary>
    public static void CopyRam(MappedMemory from, MappedMemory to)
    {
        for (long offset = 0; offset < RamSize; offset += 1 << 20)
        {
            from.Read(offset, 1 << 20).CopyTo(to.Write(offset, 1 << 20));
        }
    }

    public async Task<bool> IsRunningAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var status = await Qmp.QueryStatusAsync(timeout.Token);
        return status.Running;
    }

    public async Task StopAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Qmp.StopAsync(timeout.Token);
    }

    public async Task ContAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Qmp.ContAsync(timeout.Token);
    }

    /// <summary>The "MEMVERIFY ok" lines so far as (checks, updates), and the number of violation lines.</summary>
    public (IReadOnlyList<(long Checks, long Updates)> Ok, int Violations) Memverify()
    {
        var ok = new List<(long, long)>();
        var violations = 0;
        foreach (var line in Serial.Split('\n'))
        {
            var match = MemverifyOk().Match(line);
            if (match.Success)
            {
                ok.Add((long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture)));
            }
            else if (line.Contains("MEMVERIFY VIOLATION", StringComparison.Ordinal))
            {
                violations++;
            }
        }

        return (ok, violations);
    }

    /// <summary>Waits until <paramref name="more"/> new "MEMVERIFY ok" lines arrived; returns the guest's updates per second over them.</summary>
    public async Task<double> WaitForMemverifyAsync(int more, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        var start = Memverify().Ok.Count;
        while (true)
        {
            var (ok, violations) = Memverify();
            Assert.True(violations == 0, $"memverify reported violations.\n{Diagnostics}");
            if (ok.Count >= Math.Max(start + more, 2))
            {
                var first = ok[Math.Max(start - 1, 0)];
                var last = ok[^1];
                return (last.Updates - first.Updates) / (double)Math.Max(1, last.Checks - first.Checks);
            }

            Assert.True(clock.Elapsed < timeout, $"memverify printed {ok.Count - start} of {more} lines within {timeout.TotalSeconds} s.\n{Diagnostics}");
            Assert.False(_process.HasExited, $"QEMU exited.\n{Diagnostics}");
            await Task.Delay(100);
        }
    }

    /// <summary>VmFlags of QEMU's RAM mapping in /proc/&lt;pid&gt;/smaps ("uw" = registered for userfaultfd write-protect).</summary>
    public string RamVmFlags()
    {
        var inRam = false;
        foreach (var line in File.ReadLines($"/proc/{Pid}/smaps"))
        {
            if (line.Contains(RamPath, StringComparison.Ordinal))
            {
                inRam = true;
            }
            else if (inRam && line.StartsWith("VmFlags:", StringComparison.Ordinal))
            {
                return line[8..].Trim();
            }
        }

        throw new InvalidOperationException($"No smaps entry for {RamPath}.");
    }

    /// <summary>Every process holding a userfaultfd ("pid comm fd"), for assertion messages.</summary>
    public static string UserfaultfdHolders()
    {
        var holders = new List<string>();
        foreach (var process in System.IO.Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(process), out var pid))
            {
                continue;
            }

            try
            {
                foreach (var fd in System.IO.Directory.EnumerateFileSystemEntries(Path.Combine(process, "fd")))
                {
                    if ((new FileInfo(fd).LinkTarget ?? string.Empty).Contains("userfaultfd", StringComparison.Ordinal))
                    {
                        holders.Add($"{pid} {File.ReadAllText(Path.Combine(process, "comm")).Trim()} fd {Path.GetFileName(fd)}");
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return $"userfaultfd holders: [{string.Join("; ", holders)}]";
    }

    /// <summary>How many pages of QEMU's RAM mapping have the uffd-wp bit (57) in /proc/&lt;pid&gt;/pagemap.</summary>
    public long CountUffdWpPages()
    {
        using var pagemap = new Pagemap(Pid, regionCapacity: 1);
        var entries = new ulong[64 * 1024];
        var pageSize = Environment.SystemPageSize;
        var pages = RamMapping.Length / (ulong)pageSize;
        long count = 0;
        for (ulong page = 0; page < pages; page += (ulong)entries.Length)
        {
            var span = entries.AsSpan(0, (int)Math.Min((ulong)entries.Length, pages - page));
            pagemap.ReadEntries(RamMapping.Start + (page * (ulong)pageSize), pageSize, span);
            foreach (var entry in span)
            {
                if ((entry & (1UL << Pagemap.EntryUffdWpBit)) != 0)
                {
                    count++;
                }
            }
        }

        return count;
    }

    public async ValueTask DisposeAsync()
    {
        if (Qmp is not null)
        {
            await Qmp.DisposeAsync();
        }

        try
        {
            // By pid rather than Process.Kill: Process trusts its own record of
            // whether the child exited, which a ptrace stop of QEMU's main thread
            // collected by the runtime's wait4 would falsify.
            var cmdline = $"/proc/{Pid}/cmdline";
            if (File.Exists(cmdline) && File.ReadAllText(cmdline).Contains(RamPath, StringComparison.Ordinal))
            {
                Tmds.Linux.LibC.kill(Pid, Tmds.Linux.LibC.SIGKILL);
            }

            await _process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or IOException)
        {
        }

        _process.Dispose();
        File.Delete(RamPath);
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>tests/guest/out of this repository, built by tests/guest/build.sh.</summary>
    private static string GuestDirectory()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "McGrpc.sln")))
        {
            directory = directory.Parent;
        }

        var guest = Path.Combine(directory?.FullName ?? throw new InvalidOperationException("Repository root not found."), "tests", "guest", "out");
        if (!File.Exists(Path.Combine(guest, "vmlinuz")) || !File.Exists(Path.Combine(guest, "initramfs.cpio.gz")))
        {
            throw new InvalidOperationException($"The test guest is not built in {guest}: run tests/guest/build.sh first.");
        }

        return guest;
    }

    [GeneratedRegex(@"MEMVERIFY ok checks=(\d+) updates=(\d+)")]
    private static partial Regex MemverifyOk();

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

    private async Task InitializeAsync(bool withGuest)
    {
        var socket = Path.Combine(Directory, "qmp.sock");
        var clock = Stopwatch.StartNew();
        while (!File.Exists(socket))
        {
            if (_process.HasExited || clock.Elapsed > StartTimeout)
            {
                throw new InvalidOperationException($"QEMU did not open its QMP socket within {StartTimeout.TotalSeconds} s.\n{Diagnostics}");
            }

            await Task.Delay(50);
        }

        using var timeout = new CancellationTokenSource(StartTimeout);
        Qmp = await QmpClient.ConnectAsync(socket, null, null, timeout.Token);
        RamMapping = ProcMapsEntry.ReadAll(Pid).Single(entry => entry.Path == RamPath);

        while (withGuest && !Serial.Contains("GUEST READY", StringComparison.Ordinal))
        {
            if (_process.HasExited || clock.Elapsed > BootTimeout)
            {
                throw new InvalidOperationException($"The guest did not print GUEST READY within {BootTimeout.TotalSeconds} s.\n{Diagnostics}");
            }

            await Task.Delay(100);
        }
    }
}
