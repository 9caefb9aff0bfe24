using System.Diagnostics;
using System.Globalization;
using McGrpc.Primary.Tracking;
using McGrpc.Shared.Native;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace McGrpc.Tests.Tracking;

/// <summary>The uffd-wp tracker attached to a real QEMU running the memory verifier.</summary>
[Collection(TrackingQemuCollection.Name)]
public sealed class UffdWpQemuTests
{
    private static readonly TimeSpan MemverifyTimeout = TimeSpan.FromSeconds(30);
    private readonly TrackingQemu _qemu;
    private readonly ITestOutputHelper _output;

    public UffdWpQemuTests(MemverifyGuestFixture fixture, ITestOutputHelper output)
    {
        _qemu = fixture.Qemu;
        _output = output;
    }

    [Fact]
    public async Task Attaching_registers_the_ram_and_leaves_qemu_without_a_userfaultfd_of_its_own()
    {
        using var ram = _qemu.MapRam();
        using (var tracker = _qemu.CreateUffdWpTracker(ram))
        {
            tracker.Start();
            Assert.Contains("uw", _qemu.RamVmFlags().Split(' '));
            Assert.DoesNotContain(QemuDescriptorTargets(), target => target.Contains("userfaultfd", StringComparison.Ordinal));
            Assert.True(await _qemu.IsRunningAsync(), _qemu.Diagnostics);
            await _qemu.WaitForMemverifyAsync(1, MemverifyTimeout);

            var runs = new DirtyPageRuns();
            tracker.Harvest(runs);
            Assert.True(runs.PageCount > 0, "The running verifier wrote no page?");
        }

        Assert.False(_qemu.RamVmFlags().Split(' ').Contains("uw"), TrackingQemu.UserfaultfdHolders());
        Assert.Equal(0, _qemu.CountUffdWpPages());
        Assert.True(await _qemu.IsRunningAsync(), _qemu.Diagnostics);
    }

    [Fact]
    public async Task Attaching_and_detaching_twenty_times_keeps_the_guest_running_and_memverify_clean()
    {
        using var ram = _qemu.MapRam();
        var runs = new DirtyPageRuns();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 20; i++)
        {
            using var tracker = _qemu.CreateUffdWpTracker(ram);
            tracker.Start();
            runs.Clear();
            tracker.Harvest(runs);
            Assert.True(await _qemu.IsRunningAsync(), $"attach {i}: {_qemu.Diagnostics}");
        }

        _output.WriteLine($"20 attach/start/harvest/detach cycles in {clock.Elapsed.TotalMilliseconds:F0} ms");
        Assert.False(_qemu.RamVmFlags().Split(' ').Contains("uw"), TrackingQemu.UserfaultfdHolders());
        Assert.Equal(0, _qemu.CountUffdWpPages());
        await _qemu.WaitForMemverifyAsync(2, MemverifyTimeout);
    }

    [Fact]
    public async Task Auto_selection_picks_uffd_wp_and_says_why_not_the_others()
    {
        using var ram = _qemu.MapRam();
        var target = new DirtyTrackerTarget(_qemu.Pid, _qemu.RamMapping.Start, (long)_qemu.RamMapping.Length, Environment.SystemPageSize, ram, HasRamDiscardingDevice: false);

        var selection = DirtyTrackerSelector.Select(DirtyTrackerMode.Auto, target, NullLogger.Instance);
        using (selection.Tracker)
        {
            Assert.Equal("uffd-wp", selection.Tracker.Name);
            Assert.Equal(["soft-dirty", "compare"], selection.Rejected.Select(r => r.Tracker));
            Assert.Contains("uffd-wp ranks higher", selection.Rejected[1].Reason, StringComparison.Ordinal);
            foreach (var rejection in selection.Rejected)
            {
                _output.WriteLine($"{rejection.Tracker}: {rejection.Reason}");
            }
        }

        Assert.True(await _qemu.IsRunningAsync(), _qemu.Diagnostics);
    }

    [Fact]
    public async Task Injection_into_a_qemu_traced_by_someone_else_fails_cleanly()
    {
        using var ram = _qemu.MapRam();
        using var otherTracer = OtherTracer.Seize(_qemu.Pid);

        var error = Assert.Throws<SyscallInjectionException>(() => _qemu.CreateUffdWpTracker(ram));
        Assert.Contains("already traced", error.Message, StringComparison.Ordinal);

        otherTracer.Dispose();
        Assert.True(await _qemu.IsRunningAsync(), _qemu.Diagnostics);
        Assert.False(_qemu.RamVmFlags().Split(' ').Contains("uw"), TrackingQemu.UserfaultfdHolders());
        await _qemu.WaitForMemverifyAsync(1, MemverifyTimeout);
    }

    [Fact]
    public async Task Killing_the_process_that_holds_the_userfaultfd_leaves_qemu_unprotected_and_at_full_speed()
    {
        var before = await _qemu.WaitForMemverifyAsync(2, MemverifyTimeout);
        var start = _qemu.RamMapping.Start;
        var length = _qemu.RamMapping.Length;

        // Set up exactly as the tracker does, then move the only reference
        // to the context into a child process standing in for mc-primary.
        var injection = UserfaultfdInjector.Inject(_qemu.Pid, TimeSpan.FromSeconds(2));
        var holder = await StartOrphanSleepAsync();
        try
        {
            using (var userfaultfd = injection.Userfaultfd)
            {
                userfaultfd.Handshake(Userfaultfd.AsyncWriteProtectFeatures);
                userfaultfd.RegisterWriteProtect(start, length);
                userfaultfd.WriteProtect(start, length, protect: true);
                var childFd = HandOver(userfaultfd, holder);
                Assert.Contains("userfaultfd", ReadLink($"/proc/{holder}/fd/{childFd}"), StringComparison.Ordinal);
            }

            // Our copy is closed: the registration lives on only through the holder.
            Assert.Contains("uw", _qemu.RamVmFlags().Split(' '));
            Assert.True(_qemu.CountUffdWpPages() > 0);
        }
        finally
        {
            Tmds.Linux.LibC.kill(holder, Tmds.Linux.LibC.SIGKILL);
        }

        var clock = Stopwatch.StartNew();
        while (IsAlive(holder))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "The holder did not die.");
            await Task.Delay(10);
        }

        Assert.False(_qemu.RamVmFlags().Split(' ').Contains("uw"), TrackingQemu.UserfaultfdHolders());
        Assert.Equal(0, _qemu.CountUffdWpPages());
        Assert.True(await _qemu.IsRunningAsync(), _qemu.Diagnostics);
        // The first write to each page after the release may still fault once
        // (the kernel does not always make a shared PTE writable again when it
        // drops the protection). Past that, a protection left behind would
        // cost a fault per page the verifier writes (4097 pages, each many
        // times a second); a clean QEMU takes none.
        await _qemu.WaitForMemverifyAsync(1, MemverifyTimeout);
        var faults = MinorFaults();
        var after = await _qemu.WaitForMemverifyAsync(2, MemverifyTimeout);
        faults = MinorFaults() - faults;
        _output.WriteLine($"memverify updates per check: {before:F0} before, {after:F0} after the holder was killed; QEMU minor faults over two checks after the kill: {faults}");
        Assert.True(faults < 100, $"QEMU took {faults} page faults over two memverify checks after the holder died.");
        Assert.True(after >= before * 0.5, $"memverify ran at {after:F0} updates per check after the kill, {before:F0} before.");
    }

    /// <summary>minflt of QEMU (field 10 of /proc/&lt;pid&gt;/stat).</summary>
    private long MinorFaults()
    {
        var stat = File.ReadAllText($"/proc/{_qemu.Pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[7], CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// A "sleep 600" that is not this process's child (started through a shell
    /// that exits): the .NET runtime reaps its own children with wait4(pid),
    /// which would also collect the ptrace stops of the hand-over.
    /// </summary>
    private static async Task<int> StartOrphanSleepAsync()
    {
        var start = new ProcessStartInfo("sh", ["-c", "sleep 600 </dev/null >/dev/null 2>&1 & echo $!"]) { RedirectStandardOutput = true, UseShellExecute = false };
        using var shell = Process.Start(start)!;
        var line = await shell.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        await shell.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        return int.Parse(line!.Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>True while the process exists and is not a zombie (a zombie has closed its files).</summary>
    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string ReadLink(string path) => new FileInfo(path).LinkTarget ?? string.Empty;

    /// <summary>Copies <paramref name="userfaultfd"/> into process <paramref name="processId"/> (blocked in a syscall) with injected pidfd_open + pidfd_getfd.</summary>
    private static long HandOver(Userfaultfd userfaultfd, int processId)
    {
        var clock = Stopwatch.StartNew();
        while (!int.TryParse(File.ReadAllText($"/proc/{processId}/syscall").Split(' ')[0], NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "sleep did not block in a system call.");
            Thread.Sleep(10);
        }

        long childFd = -1;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var traced = TracedThread.TryAttach(processId, processId, TimeSpan.FromSeconds(2), out var notUsable)
                    ?? throw new InvalidOperationException(notUsable);
                var pidfd = traced.Syscall(LinuxSyscall.PidfdOpen, Environment.ProcessId, 0);
                Assert.True(pidfd >= 0, $"pidfd_open in the child: {pidfd}");
                childFd = traced.Syscall(LinuxSyscall.PidfdGetfd, pidfd, userfaultfd.Fd, 0);
                traced.Syscall(LinuxSyscall.Close, pidfd);
                Assert.True(childFd >= 0, $"pidfd_getfd in the child: {childFd}");
            }
            catch (Exception e)
            {
                error = e;
            }
        });
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)), "Handing the descriptor over timed out.");
        Assert.Null(error);
        return childFd;
    }

    private IEnumerable<string> QemuDescriptorTargets() =>
        Directory.EnumerateFileSystemEntries($"/proc/{_qemu.Pid}/fd").Select(ReadLink);
}
