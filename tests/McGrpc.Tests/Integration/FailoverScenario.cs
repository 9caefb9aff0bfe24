using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Integration;

/// <summary>Steps shared by the failover tests: kill the primary host, resume on the backup, check the guest.</summary>
internal static class FailoverScenario
{
    public static readonly TimeSpan VerifyOnBackup = TimeSpan.FromSeconds(20);

    /// <summary>kill -9 of the primary QEMU and mc-primary, as close together as two syscalls.</summary>
    public static void KillPrimaryHost(GuestChain chain)
    {
        // SIGKILL both before waiting for either: like a host dying, neither
        // gets to notice the other's death (mc-primary must not see QEMU go first).
        foreach (var pid in new[] { chain.Primary.Pid, chain.PrimaryDaemon!.Pid })
        {
            try
            {
                System.Diagnostics.Process.GetProcessById(pid).Kill();
            }
            catch (ArgumentException)
            {
                // Already gone.
            }
        }

        chain.Primary.Kill();
        chain.PrimaryDaemon.Kill();
    }

    public static async Task<BackupStatus> WaitBackupStateAsync(GuestChain chain, string state, TimeSpan timeout)
    {
        BackupStatus? status = null;
        await Wait.UntilAsync(
            async () =>
            {
                status = await chain.BackupControl.QueryStatusAsync(new QueryStatusRequest());
                return status.State == state;
            },
            timeout,
            () => $"backup never reached '{state}' (last: {status?.State}: {status?.StateReason}).\n{chain.Diagnostics()}");
        return status!;
    }

    /// <summary>
    /// With the backup holding the checkpoint and not yet running: reads the
    /// counter from its RAM, fails over, and checks the guest continues from
    /// that value and keeps its memory invariant for <see cref="VerifyOnBackup"/>.
    /// </summary>
    public static async Task<long> FailOverManuallyAndVerifyAsync(GuestChain chain)
    {
        var lost = await WaitBackupStateAsync(chain, "primary_lost", TimeSpan.FromSeconds(10));
        Assert.True(lost.CanFailover, lost.CannotFailoverReason);
        var checkpointCounter = CounterProbe.Read(chain.Backup!.RamFile);
        await chain.BackupControl.FailoverAsync(new FailoverRequest());
        await VerifyGuestRunsOnAsync(chain, checkpointCounter);
        return checkpointCounter;
    }

    /// <summary>The backup guest prints counters from at least <paramref name="atLeast"/> on, and memverify stays clean.</summary>
    public static async Task VerifyGuestRunsOnAsync(GuestChain chain, long atLeast)
    {
        var backup = chain.Backup!;
        await Wait.UntilAsync(() => backup.CounterValues().Count >= 3, TimeSpan.FromSeconds(20), () => $"the guest prints no counter on the backup.\n{chain.Diagnostics()}");
        var first = backup.CounterValues()[0];
        Assert.True(first >= atLeast, $"The backup guest's counter restarted at {first}, below {atLeast} held in the last acked checkpoint.\n{chain.Diagnostics()}");
        Assert.True(first > 1, $"The backup guest counts from boot ({first}).");

        var checksBefore = MemverifyOk(backup);
        await Task.Delay(VerifyOnBackup);
        var counters = backup.CounterValues();
        Assert.True(counters[^1] > first + 10, $"The backup guest stopped counting at {counters[^1]}.\n{chain.Diagnostics()}");
        Assert.True(IsConsecutive(counters), $"Counter lines on the backup are not consecutive: {string.Join(' ', counters.Take(30))}");
        Assert.Empty(backup.Violations());
        Assert.True(MemverifyOk(backup) > checksBefore, $"memverify completed no full check on the backup in {VerifyOnBackup.TotalSeconds} s.\n{chain.Diagnostics()}");
    }

    private static int MemverifyOk(TestVm vm) => vm.SerialLines().Count(l => l.StartsWith("MEMVERIFY ok", StringComparison.Ordinal));

    private static bool IsConsecutive(IReadOnlyList<long> values)
    {
        for (var i = 1; i < values.Count; i++)
        {
            if (values[i] != values[i - 1] + 1)
            {
                return false;
            }
        }

        return true;
    }
}
