using System.Diagnostics;
using McGrpc.Primary.Output;
using McGrpc.Shared.Qmp;
using McGrpc.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace McGrpc.Tests.Output;

/// <summary>
/// The userspace buffer against a real QEMU 7.2 on user networking: what
/// leaves the guest and when, the filters it adds and removes, its own
/// reconnects, and what QEMU does when the buffer dies. One guest for the
/// class; every test leaves QEMU's networking as it found it (no filters).
/// </summary>
public sealed class UserspaceOutputBufferQemuTests : IClassFixture<UserspaceQemuGuest>, IAsyncLifetime
{
    /// <summary>The guest sends every 10 ms; this long without a datagram means output is held (or dropped).</summary>
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1);

    private readonly UserspaceQemuGuest _guest;
    private readonly List<UserspaceOutputBuffer> _buffers = [];
    private ulong _epoch;

    public UserspaceOutputBufferQemuTests(UserspaceQemuGuest guest)
    {
        _guest = guest;
    }

    private QmpClient Qmp => _guest.BufferQmp;

    private UdpSeqObserver Observer => _guest.Observer;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var buffer in _buffers)
        {
            await buffer.ReleaseAllAndStopAsync(CancellationToken.None);
            await buffer.DisposeAsync();
        }

        // A test that simulated a crash leaves filters behind: a fresh buffer removes them, then detaches.
        if ((await OurObjectsAsync()).Count > 0)
        {
            await using var cleaner = await StartBufferAsync(track: false);
        }

        Assert.Empty(await OurObjectsAsync());
        var test = await _guest.Vm.QmpAsync();
        if (!(await test.QueryStatusAsync(CancellationToken.None)).Running)
        {
            await test.ContAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Output_passes_through_until_the_first_barrier_then_each_ack_lets_out_exactly_its_epoch()
    {
        var buffer = await StartBufferAsync();
        Assert.Equal([new QemuNetdev("net0", "user", "e1000.0"), new QemuNetdev("quiet1", "user", "e1000.1")], buffer.Netdevs);
        Assert.Equal(8, (await OurObjectsAsync()).Count);
        var start = Observer.Count;
        await Observer.WaitForCountAsync(start + 20, TimeSpan.FromSeconds(20), "pass-through before the first barrier");

        var (first, _) = await BarrierAsync(buffer);
        await AssertQuietAsync("after the first barrier");
        Assert.True(buffer.Stats.HeldPackets > 10, $"held {buffer.Stats.HeldPackets}");

        // QMP answers at once while output is held: QEMU is never blocked by the buffer.
        var status = Stopwatch.StartNew();
        await Qmp.QueryStatusAsync(CancellationToken.None);
        Assert.True(status.Elapsed < TimeSpan.FromSeconds(2), $"query-status took {status.Elapsed}");

        var (second, heldAtSecond) = await BarrierAsync(buffer);
        await Task.Delay(300);
        buffer.Release(first);
        await AssertQuietAsync("after the ack of the first barrier (its epoch was empty: it passed through)");

        var before = Observer.Count;
        buffer.Release(second);
        await Observer.WaitForCountAsync(before + (int)heldAtSecond, TimeSpan.FromSeconds(10), "the second epoch's packets after its ack");
        await AssertQuietAsync("after the second epoch was let out");
        Assert.Equal(before + heldAtSecond, Observer.Count);

        await buffer.ReleaseAllAndStopAsync(CancellationToken.None);
        await Observer.WaitForCountAsync(Observer.Count + 20, TimeSpan.FromSeconds(20), "pass-through after release-all");
        AssertNoDuplicatesOrGaps(Observer.Snapshot()[start..]);
    }

    [Fact]
    public async Task A_dropped_inject_connection_is_replaced_and_nothing_is_lost_or_repeated()
    {
        var buffer = await StartBufferAsync();
        var start = Observer.Count;
        await BarrierAsync(buffer);
        await Task.Delay(500);
        var broken = buffer.Attachments[0]!;
        broken.BreakInjectForTest();

        // The break is noticed on the next write: the release.
        await buffer.ReleaseAllAndStopAsync(CancellationToken.None);
        await Wait.UntilAsync(() => buffer.Repairs == 1, TimeSpan.FromSeconds(30), () => "the inject filter was not replaced");
        var replaced = buffer.Attachments[0]!;
        Assert.NotSame(broken, replaced);
        await Observer.WaitForCountAsync(Observer.Count + 50, TimeSpan.FromSeconds(20), "pass-through after the repair");

        var quiet = buffer.Attachments[1]!;
        var filters = await OurObjectsAsync();
        Assert.Equal(
            new[] { replaced.CaptureFilterId, replaced.InjectFilterId, replaced.CaptureChardevId, replaced.InjectChardevId, quiet.CaptureFilterId, quiet.InjectFilterId, quiet.CaptureChardevId, quiet.InjectChardevId }.Order(),
            filters);
        var received = Observer.Snapshot()[start..];
        AssertNoDuplicatesOrGaps(received);
    }

    [Fact]
    public async Task A_dropped_capture_connection_is_replaced_and_QEMU_drops_rather_than_leaks_meanwhile()
    {
        var buffer = await StartBufferAsync();
        var start = Observer.Count;
        await BarrierAsync(buffer);
        await Task.Delay(300);
        buffer.Attachments[0]!.BreakCaptureForTest();
        await Wait.UntilAsync(() => buffer.Repairs == 1, TimeSpan.FromSeconds(30), () => "the capture filter was not replaced");

        // Still holding after the repair: nothing may come out.
        await AssertQuietAsync("holding across a replaced capture connection");
        await buffer.ReleaseAllAndStopAsync(CancellationToken.None);
        await Observer.WaitForCountAsync(Observer.Count + 50, TimeSpan.FromSeconds(20), "pass-through after the repair");
        Assert.Empty(UdpSeqObserver.Duplicates(Observer.Snapshot()[start..]));
    }

    [Fact]
    public async Task A_crashed_mc_primary_lets_nothing_out_and_the_next_one_removes_its_filters()
    {
        var crashed = await StartBufferAsync(track: false);
        var start = Observer.Count;
        await BarrierAsync(crashed);
        var stale = await OurObjectsAsync();
        crashed.SimulateCrash();
        await AssertQuietAsync("after the buffer's connections closed", TimeSpan.FromSeconds(2));
        Assert.Contains("filter redirector send failed", _guest.Vm.Output, StringComparison.Ordinal);
        Assert.Equal(stale, await OurObjectsAsync());

        var next = await StartBufferAsync();
        var ours = await OurObjectsAsync();
        Assert.Equal(8, ours.Count);
        Assert.Empty(ours.Intersect(stale));
        await Observer.WaitForCountAsync(Observer.Count + 50, TimeSpan.FromSeconds(20), "pass-through with the new buffer");
        Assert.Empty(UdpSeqObserver.Duplicates(Observer.Snapshot()[start..]));
        Assert.True(next.Stats.ReleasedPackets >= 50);
    }

    [Fact]
    public async Task Detaching_writes_back_what_was_released_and_leaves_QEMU_networking_as_before()
    {
        var before = await Qmp.HumanMonitorCommandAsync("info network", CancellationToken.None);
        var buffer = await StartBufferAsync(track: false);
        var start = Observer.Count;
        await BarrierAsync(buffer);
        await Task.Delay(500);
        await buffer.ReleaseAllAndStopAsync(CancellationToken.None);
        await buffer.DisposeAsync();

        Assert.Equal(before, await Qmp.HumanMonitorCommandAsync("info network", CancellationToken.None));
        Assert.Empty(await OurObjectsAsync());
        await Observer.WaitForCountAsync(Observer.Count + 50, TimeSpan.FromSeconds(20), "direct output after detaching");
        AssertNoDuplicatesOrGaps(Observer.Snapshot()[start..]);
    }

    [Fact]
    public async Task Disposing_while_holding_discards_the_unacked_packets_and_keeps_QEMU_from_sending()
    {
        var buffer = await StartBufferAsync(track: false);
        await BarrierAsync(buffer);
        await Task.Delay(300);
        Assert.True(buffer.Stats.HeldPackets > 0);
        var last = Observer.Last;
        await buffer.DisposeAsync();
        await AssertQuietAsync("after disposing while holding", TimeSpan.FromSeconds(2));
        Assert.Equal(last, Observer.Last);
        Assert.Equal(8, (await OurObjectsAsync()).Count);
    }

    private async Task<UserspaceOutputBuffer> StartBufferAsync(bool track = true)
    {
        var buffer = new UserspaceOutputBuffer(Qmp, new UserspaceOutputBufferOptions { RepairInterval = TimeSpan.FromMilliseconds(200) }, NullLogger<UserspaceOutputBuffer>.Instance);
        await buffer.StartAsync(CancellationToken.None);
        if (track)
        {
            _buffers.Add(buffer);
        }

        return buffer;
    }

    /// <summary>A barrier the way the engine makes one: with the guest stopped. Returns the epoch and what was held at the barrier.</summary>
    private async Task<(ulong Epoch, long Held)> BarrierAsync(UserspaceOutputBuffer buffer)
    {
        var test = await _guest.Vm.QmpAsync();
        await test.StopAsync(CancellationToken.None);
        var epoch = ++_epoch;
        buffer.Barrier(epoch);
        var held = buffer.Stats.HeldPackets;
        await test.ContAsync(CancellationToken.None);
        return (epoch, held);
    }

    /// <summary>No datagram arrives for <see cref="Quiet"/> (after a short grace for what was already on its way).</summary>
    private async Task AssertQuietAsync(string when, TimeSpan? quiet = null)
    {
        await Task.Delay(100);
        var count = Observer.Count;
        await Task.Delay(quiet ?? Quiet);
        Assert.True(Observer.Count == count, $"{Observer.Count - count} datagrams arrived {when}; the guest's output should be held.");
    }

    private async Task<List<string>> OurObjectsAsync()
    {
        var objects = (await Qmp.QomListAsync("/objects", CancellationToken.None))
            .Where(p => p.Name.StartsWith(RedirectorAttachment.IdPrefix, StringComparison.Ordinal))
            .Select(p => p.Name);
        var chardevs = (await Qmp.ExecuteAsync("query-chardev", null, CancellationToken.None)).EnumerateArray()
            .Select(c => c.GetProperty("label").GetString()!)
            .Where(l => l.StartsWith(RedirectorAttachment.IdPrefix, StringComparison.Ordinal));
        return [.. objects.Concat(chardevs).Order()];
    }

    private static void AssertNoDuplicatesOrGaps(IReadOnlyList<(long Seq, long Timestamp)> received)
    {
        Assert.True(UdpSeqObserver.Duplicates(received).Count == 0, $"duplicates: {UdpSeqObserver.Describe(received)}");
        Assert.True(UdpSeqObserver.Gaps(received).Count == 0, $"gaps: {UdpSeqObserver.Describe(received)}");
        for (var i = 1; i < received.Count; i++)
        {
            Assert.True(received[i].Seq > received[i - 1].Seq, $"out of order: {UdpSeqObserver.Describe(received)}");
        }
    }
}
