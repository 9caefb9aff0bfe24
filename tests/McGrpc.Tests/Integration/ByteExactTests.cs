using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Integration;

/// <summary>Invariant I3: after applying checkpoint N the backup's RAM equals the primary's at stop N.</summary>
[Collection(GuestCollection.Name)]
public sealed class ByteExactTests
{
    private readonly GuestChain _chain;

    public ByteExactTests(GuestChain chain)
    {
        _chain = chain;
    }

    [Fact]
    public async Task Fifty_consecutive_epochs_match_byte_for_byte_under_the_memory_workload()
    {
        await _chain.ProtectAsync(["--digest", "true"]);
        var start = await _chain.BackupControl.QueryStatusAsync(new QueryStatusRequest());
        BackupStatus status = start;
        await Wait.UntilAsync(
            async () =>
            {
                status = await _chain.BackupControl.QueryStatusAsync(new QueryStatusRequest());
                return status.DigestChecks >= start.DigestChecks + 50 || status.DigestMismatches > 0;
            },
            TimeSpan.FromSeconds(180),
            () => $"only {status.DigestChecks - start.DigestChecks} digest checks.\n{_chain.Diagnostics()}",
            200);

        Assert.Equal(0ul, status.DigestMismatches);
        Assert.True(status.LastAppliedEpoch >= start.LastAppliedEpoch + 50);
        var primary = await _chain.PrimaryControl.QueryStatusAsync(new QueryStatusRequest());
        Assert.True(primary.Stats.DirtyPages > 0 || primary.Stats.TotalRawBytes > 0, "the memory workload wrote nothing");
        Assert.Empty(_chain.Primary.Violations());
    }
}
