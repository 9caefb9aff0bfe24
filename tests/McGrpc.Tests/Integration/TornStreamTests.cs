using McGrpc.Protos.Control;
using McGrpc.Shared.Frames;
using McGrpc.Shared.Native;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Integration;

/// <summary>A stream cut in the middle of epoch N (a fault-injection seam in mc-primary) leaves the backup at checkpoint N-1.</summary>
[Collection(GuestCollection.Name)]
public sealed class TornStreamTests
{
    private const int CutEpoch = 25;
    private readonly GuestChain _chain;

    public TornStreamTests(GuestChain chain)
    {
        _chain = chain;
    }

    [Fact]
    public async Task Cut_mid_epoch_keeps_the_previous_checkpoint_and_replication_resumes()
    {
        await _chain.ProtectAsync(
            ["--digest", "true", "--tracker", Environment.GetEnvironmentVariable("MC_TRACKER") ?? "auto", $"--Primary:Faults:CutStreamInEpoch={CutEpoch}", "--Primary:Faults:ReconnectDelayAfterCutMs=4000"],
            ["--stream-loss-grace", "30000", "--failover-policy", "manual"]);

        var cut = await WaitForCutAsync();
        Assert.Equal("protected", cut.State);
        AssertBackupRamIsCheckpoint(cut);

        // The primary comes back within the grace and resends what was never acked.
        BackupStatus status = cut;
        await Wait.UntilAsync(
            async () =>
            {
                status = await _chain.BackupControl.QueryStatusAsync(new QueryStatusRequest());
                return status.LastAppliedEpoch > CutEpoch + 5 && await _chain.TryPrimaryStateAsync() is "protected";
            },
            TimeSpan.FromSeconds(60),
            () => $"replication did not resume (backup at {status.LastAppliedEpoch}).\n{_chain.Diagnostics()}");
        Assert.Equal(0ul, status.DigestMismatches);
        Assert.Equal("protected", status.State);
    }

    [Fact]
    public async Task Cut_without_grace_declares_the_primary_dead_and_a_returning_primary_is_fenced()
    {
        await _chain.ProtectAsync(
            ["--digest", "true", $"--Primary:Faults:CutStreamInEpoch={CutEpoch}", "--Primary:Faults:ReconnectDelayAfterCutMs=5000"],
            ["--failover-policy", "manual"]);

        var cut = await WaitForCutAsync();
        Assert.Equal("primary_lost", cut.State);
        AssertBackupRamIsCheckpoint(cut);
        var checkpointCounter = CounterProbe.Read(_chain.Backup!.RamFile);

        await _chain.BackupControl.FailoverAsync(new FailoverRequest());
        await Wait.UntilAsync(
            async () => await _chain.TryPrimaryStateAsync() is "fenced",
            TimeSpan.FromSeconds(30),
            () => $"the old primary did not fence itself.\n{_chain.Diagnostics()}");
        var oldPrimary = await (await _chain.Primary.QmpAsync()).QueryStatusAsync(CancellationToken.None);
        Assert.False(oldPrimary.Running, "the fenced primary's VM still runs");
        await FailoverScenario.VerifyGuestRunsOnAsync(_chain, checkpointCounter);
    }

    private async Task<BackupStatus> WaitForCutAsync()
    {
        BackupStatus status = new();
        await Wait.UntilAsync(
            async () =>
            {
                status = await _chain.BackupControl.QueryStatusAsync(new QueryStatusRequest());
                return status.EpochsDiscarded > 0;
            },
            TimeSpan.FromSeconds(60),
            () => $"the stream was never cut (backup at epoch {status.LastAppliedEpoch}).\n{_chain.Diagnostics()}");
        Assert.Equal((ulong)CutEpoch - 1, status.LastAppliedEpoch);
        Assert.True(status.DigestMismatches == 0, $"{status.DigestMismatches} digest mismatches.\n{_chain.Diagnostics()}");
        return status;
    }

    /// <summary>The backup's RAM file, hashed here, equals the digest of checkpoint N-1 that the primary computed at that stop.</summary>
    private void AssertBackupRamIsCheckpoint(BackupStatus status)
    {
        var path = _chain.Backup!.RamFile;
        var length = new FileInfo(path).Length;
        using var ram = MappedMemory.MapSharedFile(path, length, writable: false);
        Assert.Equal(status.LastRamDigest, RamDigest.ToHex(RamDigest.Compute(ram, length)));
    }
}
