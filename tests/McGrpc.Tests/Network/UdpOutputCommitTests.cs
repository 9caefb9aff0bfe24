using System.Diagnostics;
using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;
using McGrpc.Tests.Integration;
using Xunit.Abstractions;

namespace McGrpc.Tests.Network;

/// <summary>
/// Output commit seen from the network, with the guest's udpseq datagrams
/// (one every 10 ms, numbered, to an observer in the client namespace).
/// <para>
/// Why "no number is seen twice" is the sound check of invariant I1: udpseq
/// keeps its next number in memory. The backup resumes the guest from the
/// last acked checkpoint and sends that checkpoint's next number and every
/// one after it. A number the observer saw before the crash that was sent
/// after that checkpoint would therefore be sent again by the backup, and
/// seen twice, once the backup's numbers pass it. So once the numbers after
/// the failover run past the highest number seen before, no duplicate means
/// every number seen before the crash was at most the checkpoint's counter.
/// </para>
/// </summary>
[Collection(NetworkCollection.Name)]
public sealed class UdpOutputCommitTests
{
    private readonly NetworkGuestChain _chain;
    private readonly ITestOutputHelper _output;

    public UdpOutputCommitTests(NetworkGuestChain chain, ITestOutputHelper output)
    {
        _chain = chain;
        _output = output;
    }

    private UdpSeqObserver Observer => _chain.Observer;

    [Fact]
    public async Task Kill_at_a_random_moment_no_datagram_is_seen_twice_and_the_numbers_continue_on_the_backup()
    {
        // Default --output-buffer (auto) must choose the userspace buffer for a VM with a NIC.
        var metricsPort = FreePort.Next();
        await _chain.ProtectAsync(["--metrics", $"127.0.0.1:{metricsPort}"]);
        var status = await _chain.PrimaryControl.QueryStatusAsync(new QueryStatusRequest());
        Assert.Equal("userspace", status.OutputBuffer);
        var start = Observer.Count;
        await Observer.WaitForCountAsync(start + 100, TimeSpan.FromSeconds(60), $"datagrams through the buffer while protected.\n{_chain.Diagnostics()}");

        // What the observer got went through the buffer, and the metrics say so.
        var metrics = await Control.PrometheusScrape.GetAsync(metricsPort);
        Assert.True(metrics["mcgrpc_primary_output_released_packets"] >= 50, $"released packets {metrics["mcgrpc_primary_output_released_packets"]}");
        Assert.Equal(0, metrics["mcgrpc_primary_output_dropped_packets"]);
        Assert.True(metrics.Samples.ContainsKey("mcgrpc_primary_output_held_packets"));

        await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(0, 3000)));
        var killedAt = Stopwatch.GetTimestamp();
        _chain.KillPrimaryHostAtOnce();
        var failedOver = await FailoverScenario.WaitBackupStateAsync(_chain, "failed_over", TimeSpan.FromSeconds(60));

        var seenBefore = Observer.Snapshot()[start..].Where(r => r.Timestamp < killedAt).ToList();
        Assert.True(seenBefore.Count > 0);
        var highestBefore = seenBefore.Max(r => r.Seq);
        await Wait.UntilAsync(
            () => Observer.Last > highestBefore + 300,
            TimeSpan.FromSeconds(90),
            () => $"the numbers did not continue past {highestBefore} after the failover: {UdpSeqObserver.Describe(Observer.Snapshot()[start..])}\n{_chain.Diagnostics()}");

        var received = Observer.Snapshot()[start..];
        var after = received.Where(r => r.Timestamp >= killedAt).ToList();
        var firstAfter = after.Min(r => r.Seq);
        _output.WriteLine($"killed {Stopwatch.GetElapsedTime(killedAt).TotalSeconds:F1} s ago at epoch {status.Epoch}+; failover epoch {failedOver.FailoverEpoch}; "
            + $"highest before the kill {highestBefore}, first after {firstAfter}: {firstAfter - highestBefore - 1} numbers lost with the primary's held output");
        _output.WriteLine(UdpSeqObserver.Describe(received));

        Assert.True(UdpSeqObserver.Duplicates(received).Count == 0, $"Numbers seen twice {string.Join(",", UdpSeqObserver.Duplicates(received).Take(20))}: unacked output left the primary.\n{UdpSeqObserver.Describe(received)}");
        Assert.True(firstAfter > highestBefore, $"The backup sent {firstAfter}, which the observer had seen before the crash (highest {highestBefore}).");

        // Lost with the primary: at most what it held (a few epochs of 10-ms datagrams), never more.
        Assert.True(firstAfter - highestBefore - 1 < 500, $"{firstAfter - highestBefore - 1} numbers missing across the failover.\n{UdpSeqObserver.Describe(received)}");
        Assert.Empty(UdpSeqObserver.Gaps(seenBefore));
        Assert.Empty(UdpSeqObserver.Gaps(after));
        Assert.Equal(0, Observer.Malformed);
    }

    [Fact]
    public async Task Backup_lost_the_primary_holds_output_then_releases_all_of_it_and_runs_unprotected()
    {
        const int UnprotectedAfterMs = 4000;
        await _chain.ProtectAsync(["--unprotected-after", $"{UnprotectedAfterMs}", "--output-buffer", "userspace"]);
        var start = Observer.Count;
        await Observer.WaitForCountAsync(start + 100, TimeSpan.FromSeconds(60), "datagrams while protected");

        _chain.BackupDaemon!.Kill();
        _chain.Backup!.Kill();
        var degradedAt = await WaitPrimaryStateAsync("degraded", TimeSpan.FromSeconds(30));
        var unprotected = await WaitPrimaryStateAsync("unprotected", TimeSpan.FromSeconds(60));
        var status = await _chain.PrimaryControl.QueryStatusAsync(new QueryStatusRequest());
        Assert.Contains("UNPROTECTED", status.StateReason, StringComparison.Ordinal);
        await Observer.WaitForCountAsync(Observer.Count + 200, TimeSpan.FromSeconds(60), "datagrams while unprotected");

        var received = Observer.Snapshot()[start..];
        var silence = received.Zip(received.Skip(1), (a, b) => (Gap: Stopwatch.GetElapsedTime(a.Timestamp, b.Timestamp), After: a.Seq)).MaxBy(g => g.Gap);
        _output.WriteLine($"degraded -> unprotected in {Stopwatch.GetElapsedTime(degradedAt, unprotected).TotalMilliseconds:F0} ms; longest silence at the observer {silence.Gap.TotalMilliseconds:F0} ms after {silence.After}");
        _output.WriteLine(UdpSeqObserver.Describe(received));

        // Held while degraded (nothing out), then everything let out: no loss, no repeat.
        Assert.True(silence.Gap > TimeSpan.FromMilliseconds(UnprotectedAfterMs * 0.6), $"Output was not held while degraded: longest silence {silence.Gap.TotalMilliseconds:F0} ms.\n{UdpSeqObserver.Describe(received)}");
        Assert.Empty(UdpSeqObserver.Duplicates(received));
        Assert.True(UdpSeqObserver.Gaps(received).Count == 0, $"Held output was lost: {UdpSeqObserver.Describe(received)}");
    }

    [Fact]
    public async Task The_kernel_back_end_without_sch_plug_stops_protection_and_says_why()
    {
        var tap = _chain.TapOf(_chain.Primary);
        var ifb = $"mcn{Environment.ProcessId}i";
        await _chain.ProtectAsync(["--output-buffer", "kernel", "--kernel-setup", "true", "--kernel-tap", tap, "--kernel-ifb", ifb], waitProtected: false);
        PrimaryStatus? status = null;
        await Wait.UntilAsync(
            async () =>
            {
                status = await TryPrimaryStatusAsync() ?? status;
                return status?.State is "failed" or "protected";
            },
            TimeSpan.FromSeconds(90),
            () => $"mc-primary neither failed nor protected: {status}\n{_chain.Diagnostics()}");
        _output.WriteLine($"{status!.State}: {status.StateReason}");

        if (Output.KernelTestNamespace.KernelHasPlug())
        {
            // A kernel with sch_plug: the same setup protects with the kernel back end.
            Assert.Equal("protected", status.State);
            Assert.Equal("kernel", status.OutputBuffer);
            return;
        }

        Assert.Equal("failed", status.State);
        Assert.Contains("sch_plug is not available", status.StateReason, StringComparison.Ordinal);
        Assert.Contains("userspace", status.StateReason, StringComparison.Ordinal);
        var backup = await _chain.BackupControl.QueryStatusAsync(new QueryStatusRequest());
        Assert.Equal("waiting", backup.State);
        Assert.False(_chain.Primary.HasExited);

        // Nothing of the kernel set-up is left behind: no IFB, no ingress redirect on the guest's tap.
        Assert.DoesNotContain(ifb, _chain.Network.Links(), StringComparer.Ordinal);
        Assert.DoesNotContain("ingress", _chain.Network.Qdiscs(tap), StringComparison.Ordinal);
    }

    private async Task<PrimaryStatus?> TryPrimaryStatusAsync()
    {
        try
        {
            return await _chain.PrimaryControl.QueryStatusAsync(new QueryStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
        }
        catch (Grpc.Core.RpcException)
        {
            return null; // still starting
        }
    }

    private async Task<long> WaitPrimaryStateAsync(string state, TimeSpan timeout)
    {
        PrimaryStatus? status = null;
        await Wait.UntilAsync(
            async () =>
            {
                status = await _chain.PrimaryControl.QueryStatusAsync(new QueryStatusRequest());
                return status.State == state;
            },
            timeout,
            () => $"mc-primary never reached '{state}' (last: {status?.State}: {status?.StateReason}).\n{_chain.Diagnostics()}",
            20);
        return Stopwatch.GetTimestamp();
    }
}
