using McGrpc.Primary.Output;
using McGrpc.Shared.Native.Netlink;

namespace McGrpc.Tests.Output;

/// <summary>
/// <see cref="PlugEpochDriver"/> against a transcription of sch_plug
/// (<see cref="KernelPlugModel"/>): what this kernel cannot run, checked
/// against the kernel's own logic.
/// </summary>
public sealed class KernelPlugEpochDriverTests
{
    /// <summary>Label of a packet sent while nothing is held (before the first barrier, after release-all).</summary>
    private const long Free = 0;

    [Fact]
    public void Kernel_plug_forgets_an_unreleased_epoch_when_buffer_comes_twice()
    {
        // Why a naive "BUFFER per barrier, RELEASE_ONE per ack" is wrong.
        var plug = new KernelPlugModel();
        plug.Apply(PlugAction.ReleaseIndefinite);
        plug.Apply(PlugAction.Buffer); // barrier 1: hold from here
        Send(plug, 2, count: 5); // epoch 2
        plug.Apply(PlugAction.Buffer); // barrier 2: last = 5
        Send(plug, 3, count: 3); // epoch 3
        plug.Apply(PlugAction.Buffer); // barrier 3: last = 3, the 5 are forgotten
        plug.Apply(PlugAction.ReleaseOne); // ack 2
        plug.Apply(PlugAction.ReleaseOne); // ack 3
        plug.Drain();

        Assert.Equal([2, 2, 2], plug.Sent); // only three of epoch 2 left, epoch 3 is stuck
        Assert.Equal(5, plug.QueueLength);
    }

    [Fact]
    public void Kernel_plug_leaves_packets_queued_in_pass_through_uncounted_at_the_head()
    {
        // Why the first barrier checks for an empty queue.
        var plug = new KernelPlugModel();
        plug.Apply(PlugAction.ReleaseIndefinite);
        Send(plug, Free, count: 2); // queued, not yet dequeued
        plug.Apply(PlugAction.Buffer); // barrier 1
        Send(plug, 2, count: 4);
        plug.Apply(PlugAction.Buffer); // barrier 2
        plug.Apply(PlugAction.ReleaseOne); // ack 2
        plug.Drain();

        Assert.Equal([Free, Free, 2, 2], plug.Sent);
        Assert.Equal([2, 2], plug.Queued); // two of epoch 2 are now one release behind
    }

    [Fact]
    public void Barriers_and_acks_in_lock_step_send_one_buffer_and_one_release_each()
    {
        var sent = new List<PlugAction>();
        var driver = new PlugEpochDriver(sent.Add, () => 0);

        Assert.Equal(PlugBarrierOutcome.HoldingStarted, driver.Barrier(1));
        Assert.Null(driver.Release(1));
        Assert.Equal(PlugBarrierOutcome.EpochClosed, driver.Barrier(2));
        Assert.Equal(2UL, driver.Release(2));
        Assert.Equal(PlugBarrierOutcome.EpochClosed, driver.Barrier(3));
        Assert.Equal(3UL, driver.Release(3));

        Assert.Equal([PlugAction.Buffer, PlugAction.Buffer, PlugAction.ReleaseOne, PlugAction.Buffer, PlugAction.ReleaseOne], sent);
    }

    [Fact]
    public void A_barrier_while_an_epoch_awaits_its_ack_is_coalesced_into_the_next()
    {
        var sent = new List<PlugAction>();
        var driver = new PlugEpochDriver(sent.Add, () => 0);
        driver.Barrier(1);
        driver.Barrier(2);
        sent.Clear();

        Assert.Equal(PlugBarrierOutcome.Coalesced, driver.Barrier(3));
        Assert.Equal(2UL, driver.Release(2));
        Assert.Null(driver.Release(3)); // epoch 3's packets are mixed with later ones in "current"
        Assert.Equal(PlugBarrierOutcome.EpochClosed, driver.Barrier(4));
        Assert.Equal(4UL, driver.Release(4));

        Assert.Equal([PlugAction.ReleaseOne, PlugAction.Buffer, PlugAction.ReleaseOne], sent);
    }

    [Fact]
    public void First_barrier_lets_out_what_pass_through_left_queued_before_holding()
    {
        var plug = new KernelPlugModel();
        plug.Apply(PlugAction.ReleaseIndefinite);
        var driver = new PlugEpochDriver(
            action =>
            {
                plug.Apply(action);
                if (action == PlugAction.ReleaseIndefinite)
                {
                    plug.Drain(); // the kernel reschedules the queue on release
                }
            },
            () => (uint)plug.QueueLength);
        Send(plug, Free, count: 3); // queued while passing through, not yet dequeued

        Assert.Equal(PlugBarrierOutcome.HoldingStarted, driver.Barrier(1));
        Assert.Equal(0, plug.QueueLength);
        Send(plug, 2, count: 4);
        driver.Barrier(2);
        driver.Release(2);
        plug.Drain();

        Assert.Equal([Free, Free, Free, 2, 2, 2, 2], plug.Sent);
    }

    [Fact]
    public void First_barrier_gives_up_waiting_for_an_empty_queue_after_its_timeout()
    {
        var sent = new List<PlugAction>();
        var driver = new PlugEpochDriver(sent.Add, () => 1, TimeSpan.FromMilliseconds(20));

        Assert.Equal(PlugBarrierOutcome.HoldingStartedUnsettled, driver.Barrier(1));
        Assert.True(driver.Holding);
        Assert.Equal(PlugAction.Buffer, sent[^1]);
    }

    [Fact]
    public void Release_all_passes_through_and_the_next_barrier_holds_again()
    {
        var sent = new List<PlugAction>();
        var driver = new PlugEpochDriver(sent.Add, () => 0);
        Assert.False(driver.ReleaseAll()); // not holding yet: nothing to send
        driver.Barrier(5);
        driver.Barrier(6);

        Assert.True(driver.ReleaseAll());
        Assert.False(driver.Holding);
        Assert.Null(driver.PendingRelease);
        Assert.Equal(PlugBarrierOutcome.HoldingStarted, driver.Barrier(7));
        Assert.Equal([PlugAction.Buffer, PlugAction.Buffer, PlugAction.ReleaseIndefinite, PlugAction.Buffer], sent);
    }

    [Fact]
    public void Barriers_must_increase()
    {
        var driver = new PlugEpochDriver(_ => { }, () => 0);
        driver.Barrier(3);

        Assert.Throws<ArgumentOutOfRangeException>(() => driver.Barrier(3));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Random_schedules_never_release_early_and_strand_nothing(int seed)
    {
        var random = new Random(seed);
        var plug = new KernelPlugModel();
        plug.Apply(PlugAction.ReleaseIndefinite); // what StartAsync leaves behind
        var driver = new PlugEpochDriver(
            action =>
            {
                plug.Apply(action);
                if (action is PlugAction.ReleaseOne or PlugAction.ReleaseIndefinite && random.Next(2) == 0)
                {
                    plug.Drain();
                }
            },
            () =>
            {
                if (random.Next(2) == 0)
                {
                    plug.Drain();
                }

                return (uint)plug.QueueLength;
            },
            TimeSpan.FromSeconds(5));

        ulong lastBarrier = 0;
        ulong acked = 0;
        long releasedAllThrough = 0; // labels at or below this were let out by a release-all
        var holding = false;
        var checkedSent = 0;

        for (var step = 0; step < 3000; step++)
        {
            switch (random.Next(10))
            {
                case < 5: // the guest sends (between barriers); a packet of epoch n is labelled n
                    plug.Enqueue(holding ? (long)lastBarrier + 1 : Free);
                    break;
                case 5 or 6: // stop, barrier, resume; at most 3 epochs in flight
                    if (lastBarrier - acked < 3 || !holding)
                    {
                        lastBarrier++;
                        driver.Barrier(lastBarrier);
                        holding = true;
                    }

                    break;
                case 7 or 8 when holding && acked < lastBarrier: // an ack, sometimes for several epochs at once
                    acked = Math.Min(lastBarrier, acked + (ulong)random.Next(1, 3));
                    driver.Release(acked);
                    break;
                case 9:
                    plug.Drain(); // the kernel's dequeue runs whenever it likes
                    if (random.Next(200) == 0 && holding)
                    {
                        driver.ReleaseAll();
                        releasedAllThrough = (long)lastBarrier + 1;
                        holding = false;
                        acked = lastBarrier;
                    }

                    break;
            }

            for (; checkedSent < plug.Sent.Count; checkedSent++)
            {
                var sent = plug.Sent[checkedSent];
                if (sent != Free && sent > (long)acked && sent > releasedAllThrough)
                {
                    Assert.Fail($"step {step}: a packet of epoch {sent} left before its ack (acked {acked})");
                }
            }
        }

        // Quiesce: ack everything, then one more barrier and its ack.
        if (holding)
        {
            driver.Release(lastBarrier);
            driver.Barrier(lastBarrier + 1);
            driver.Release(lastBarrier + 1);
        }

        plug.Drain();
        Assert.Equal(0, plug.QueueLength);
    }

    private static void Send(KernelPlugModel plug, long label, int count)
    {
        for (var i = 0; i < count; i++)
        {
            plug.Enqueue(label);
        }
    }
}
