using Grpc.Core;
using McGrpc.Protos.Control;
using McGrpc.Shared.Qmp;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Integration;

/// <summary>kill -9 of the primary host at different moments; the guest must run on at the backup from the last acked checkpoint.</summary>
[Collection(GuestCollection.Name)]
public sealed class FailoverTests
{
    private static readonly string[] Manual = ["--failover-policy", "manual"];
    private readonly GuestChain _chain;

    public FailoverTests(GuestChain chain)
    {
        _chain = chain;
    }

    [Fact]
    public async Task Kill_between_epochs_backup_resumes_from_last_checkpoint()
    {
        await _chain.ProtectAsync(["--delay", "3000"], Manual);

        // Kill mid-interval: just after an ack, with nothing in flight and the
        // next stop still seconds away. Under load an ack can come late, so
        // look again rather than kill at the wrong moment.
        var killed = false;
        for (var attempt = 0; attempt < 10 && !killed; attempt++)
        {
            var acked = (await _chain.PrimaryControl.QueryStatusAsync(new QueryStatusRequest())).LastAckedEpoch;
            await Wait.UntilAsync(
                async () => (await _chain.PrimaryControl.QueryStatusAsync(new QueryStatusRequest())).LastAckedEpoch > acked,
                TimeSpan.FromSeconds(30),
                () => $"no new epoch was acked.\n{_chain.Diagnostics()}");
            await Task.Delay(300);
            if ((await _chain.PrimaryControl.QueryStatusAsync(new QueryStatusRequest())).EpochsInFlight == 0)
            {
                FailoverScenario.KillPrimaryHost(_chain);
                killed = true;
            }
        }

        Assert.True(killed, "never found a moment with nothing in flight");
        await FailoverScenario.FailOverManuallyAndVerifyAsync(_chain);
    }

    [Fact]
    public async Task Kill_during_a_stop_backup_resumes_from_last_checkpoint()
    {
        await _chain.ProtectAsync(null, Manual);
        var qmp = await _chain.Primary.QmpAsync();
        using var stops = qmp.Subscribe(e => e.Name == "STOP");
        var stop = await stops.Reader.ReadAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        FailoverScenario.KillPrimaryHost(_chain);
        Assert.Equal("STOP", stop.Name);
        await FailoverScenario.FailOverManuallyAndVerifyAsync(_chain);
    }

    [Fact]
    public async Task Kill_during_a_transfer_discards_the_partial_epoch()
    {
        // Slow frames and a Commit held back 150 ms keep every transfer open that long, so the kill lands inside one.
        await _chain.ProtectAsync(["--delay", "300", "--Primary:Faults:FrameDelayMs=5", "--Primary:Faults:CommitDelayMs=150"], Manual);
        var qmp = await _chain.Primary.QmpAsync();
        using var resumes = qmp.Subscribe(e => e.Name == "RESUME");
        await resumes.Reader.ReadAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        var discardedBefore = (await _chain.BackupControl.QueryStatusAsync(new QueryStatusRequest())).EpochsDiscarded;
        await Task.Delay(60);
        FailoverScenario.KillPrimaryHost(_chain);
        var lost = await FailoverScenario.WaitBackupStateAsync(_chain, "primary_lost", TimeSpan.FromSeconds(10));
        Assert.True(lost.EpochsDiscarded > discardedBefore, $"The kill did not land in a transfer (nothing discarded).\n{_chain.Diagnostics()}");
        await FailoverScenario.FailOverManuallyAndVerifyAsync(_chain);
    }

    [Fact]
    public async Task Auto_policy_fails_over_by_itself_and_reports_timing()
    {
        await _chain.ProtectAsync();
        await Task.Delay(1500);

        // The paused backup's RAM always holds its last applied checkpoint: the
        // counter there is a lower bound for where the resumed guest goes on.
        var inBackupCheckpoint = await ReadBackupCounterAsync();
        FailoverScenario.KillPrimaryHost(_chain);
        var status = await FailoverScenario.WaitBackupStateAsync(_chain, "failed_over", TimeSpan.FromSeconds(15));
        Assert.True(status.FailoverRestoreMs > 0 && status.FailoverTotalMs >= status.FailoverRestoreMs, $"timing not reported: {status}");
        Assert.True(status.FailoverEpoch > 0);
        await FailoverScenario.VerifyGuestRunsOnAsync(_chain, inBackupCheckpoint);
    }

    /// <summary>Reads the counter from the backup's RAM file; a read that races an apply is retried.</summary>
    private async Task<long> ReadBackupCounterAsync()
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return CounterProbe.Read(_chain.Backup!.RamFile);
            }
            catch (InvalidOperationException) when (attempt < 20)
            {
                await Task.Delay(20);
            }
        }
    }

    [Fact]
    public async Task Kill_before_the_first_checkpoint_leaves_the_backup_paused_and_says_why()
    {
        await _chain.ProtectAsync(waitProtected: false);
        await Wait.UntilAsync(async () => await _chain.TryPrimaryStateAsync() is "syncing", TimeSpan.FromSeconds(30), () => $"never syncing.\n{_chain.Diagnostics()}", 20);
        _chain.PrimaryDaemon!.Kill();

        var status = await FailoverScenario.WaitBackupStateAsync(_chain, "waiting", TimeSpan.FromSeconds(10));
        Assert.Contains("nothing to resume", status.StateReason, StringComparison.Ordinal);
        Assert.False(status.CanFailover);
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await _chain.BackupControl.FailoverAsync(new FailoverRequest { Force = true }));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("No checkpoint", refused.Status.Detail, StringComparison.Ordinal);
        var backupQmp = await _chain.Backup!.QmpAsync();
        Assert.Equal("inmigrate", (await backupQmp.QueryStatusAsync(CancellationToken.None)).Status);

        // The guest was never stopped for long; make sure it runs, then a new primary daemon protects it again.
        var primaryQmp = await _chain.Primary.QmpAsync();
        if (!(await primaryQmp.QueryStatusAsync(CancellationToken.None)).Running)
        {
            await primaryQmp.ContAsync(CancellationToken.None);
        }

        _chain.StartPrimaryDaemon(null);
        await _chain.WaitProtectedAsync(TimeSpan.FromSeconds(60));
    }
}
