using McGrpc.Primary.Output;

namespace McGrpc.Tests.Output;

/// <summary>The per-epoch holding rule of the userspace buffer, with no QEMU: what goes out when.</summary>
public sealed class UserspaceHoldQueueTests
{
    private const long Plenty = 64L * 1024 * 1024;
    private readonly List<int> _out = [];
    private readonly List<OutputPacket> _inFlight = [];

    [Fact]
    public void Output_passes_through_until_the_first_barrier()
    {
        var queue = Create(Plenty);
        Assert.Equal(OutputAddResult.PassedThrough, queue.Add(Packet(1)));
        Assert.Equal(OutputAddResult.PassedThrough, queue.Add(Packet(2)));
        Assert.Equal([1, 2], _out);
        Assert.False(queue.Holding);
    }

    [Fact]
    public void From_the_first_barrier_on_packets_wait_for_the_ack_of_the_epoch_they_were_sent_in()
    {
        var queue = Create(Plenty);
        queue.Barrier(0);
        queue.Add(Packet(1));
        queue.Add(Packet(2));
        queue.Barrier(1);
        queue.Add(Packet(3));
        queue.Barrier(2);
        queue.Add(Packet(4));
        Assert.Empty(_out);

        Assert.Equal(0, queue.Release(0)); // epoch 0 closed with nothing held (pass-through before it)
        Assert.Equal(2, queue.Release(1));
        Assert.Equal([1, 2], _out);
        Assert.Equal(1, queue.Release(2));
        Assert.Equal([1, 2, 3], _out);
        Assert.Equal(new OutputBufferStats(1, 100, 0, 0), queue.Stats);
    }

    [Fact]
    public void An_ack_lets_out_every_earlier_epoch_too_and_later_epochs_stay()
    {
        var queue = Create(Plenty);
        queue.Barrier(10);
        queue.Add(Packet(1));
        queue.Barrier(11);
        queue.Add(Packet(2));
        queue.Barrier(12);
        queue.Add(Packet(3));
        queue.Barrier(13);

        // Acks can skip epochs (a resume acks the backup's last applied one).
        Assert.Equal(2, queue.Release(12));
        Assert.Equal([1, 2], _out);
        Assert.Equal(0, queue.Release(12));
        Assert.Equal(1, queue.Release(20));
        Assert.Equal([1, 2, 3], _out);
    }

    [Fact]
    public void A_packet_added_after_a_barrier_is_never_released_by_that_barriers_ack()
    {
        var queue = Create(Plenty);
        queue.Barrier(1);
        queue.Add(Packet(1));
        queue.Barrier(2);
        queue.Add(Packet(2)); // sent after stop 2: belongs to epoch 3
        queue.Release(2);
        Assert.Equal([1], _out);
    }

    [Fact]
    public void Release_all_lets_everything_out_in_order_then_passes_through_until_the_next_barrier()
    {
        var queue = Create(Plenty);
        queue.Barrier(1);
        queue.Add(Packet(1));
        queue.Barrier(2);
        queue.Add(Packet(2));
        Assert.Equal(2, queue.ReleaseAll());
        queue.Add(Packet(3));
        Assert.Equal([1, 2, 3], _out);
        Assert.False(queue.Holding);

        // Epoch numbers may start over after a release-all; a late ack changes nothing.
        queue.Barrier(1);
        queue.Add(Packet(4));
        queue.Release(0);
        Assert.Equal([1, 2, 3], _out);
        queue.Barrier(2);
        queue.Release(2);
        Assert.Equal([1, 2, 3, 4], _out);
    }

    [Fact]
    public void Barriers_must_increase()
    {
        var queue = Create(Plenty);
        queue.Barrier(5);
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Barrier(5));
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Barrier(4));
    }

    [Fact]
    public void At_the_memory_bound_new_packets_are_dropped_and_counted_and_held_ones_are_kept()
    {
        // Each 1000-byte packet rents a 1024-byte array; the bound counts arrays.
        var queue = Create(RedirectorFrames.MaxPacketBytes + 2048);
        queue.Barrier(1);
        var results = Enumerable.Range(1, 80).Select(i => queue.Add(Packet(i, 1000))).ToList();
        var held = results.Count(r => r == OutputAddResult.Held);
        Assert.Equal((RedirectorFrames.MaxPacketBytes + 2048) / 1024, held);
        Assert.Equal(80 - held, results.Count(r => r == OutputAddResult.Dropped));
        Assert.Equal((80L - held, (80L - held) * 1000), queue.Dropped);

        queue.Barrier(2);
        queue.Release(2);
        Assert.Equal(Enumerable.Range(1, held), _out);
    }

    [Fact]
    public void Released_packets_count_against_the_bound_until_written_back()
    {
        var queue = Create(RedirectorFrames.MaxPacketBytes);
        var fits = RedirectorFrames.MaxPacketBytes / 1024;
        for (var i = 1; i <= fits; i++)
        {
            Assert.Equal(OutputAddResult.PassedThrough, queue.Add(Packet(i, 1000)));
        }

        Assert.Equal(OutputAddResult.Dropped, queue.Add(Packet(999, 1000)));
        queue.Delivered(_inFlight[0]);
        Assert.Equal(OutputAddResult.PassedThrough, queue.Add(Packet(1000, 1000)));
        Assert.Equal(1, queue.Stats.ReleasedPackets);
        Assert.Equal(1000, queue.Stats.ReleasedBytes);
    }

    [Fact]
    public void Packets_lost_on_a_broken_connection_free_memory_and_count_as_dropped()
    {
        var queue = Create(Plenty);
        queue.Add(Packet(1, 500));
        queue.Lost(_inFlight[0]);
        Assert.Equal((1L, 500L), queue.Dropped);
        Assert.Equal(0, queue.Footprint);
    }

    [Fact]
    public void Discarding_what_is_held_lets_nothing_out()
    {
        var queue = Create(Plenty);
        queue.Barrier(1);
        queue.Add(Packet(1));
        queue.Add(Packet(2));
        Assert.Equal(2, queue.DiscardHeld());
        queue.Barrier(2);
        queue.Release(2);
        Assert.Empty(_out);
        Assert.Equal(2, queue.Dropped.Packets);
    }

    [Fact]
    public async Task Concurrent_adds_barriers_and_acks_keep_order_and_lose_nothing()
    {
        var queue = Create(Plenty);
        const int Count = 20000;
        var adder = Task.Run(() =>
        {
            for (var i = 1; i <= Count; i++)
            {
                queue.Add(Packet(i, 64));
            }
        });
        ulong epoch = 0;
        while (!adder.IsCompleted)
        {
            queue.Barrier(++epoch);
            if (epoch > 2)
            {
                queue.Release(epoch - 2);
            }
        }

        await adder;
        queue.ReleaseAll();
        lock (_out)
        {
            Assert.Equal(Enumerable.Range(1, Count), _out);
        }
    }

    private EpochHoldQueue Create(long maxBytes) => new(maxBytes, packet =>
    {
        lock (_out)
        {
            _out.Add(packet.Buffer[0] | (packet.Buffer[1] << 8));
            _inFlight.Add(packet);
        }
    });

    private static OutputPacket Packet(int id, int length = 100)
    {
        var packet = OutputPacket.Rent(length, 0, 0);
        packet.Buffer[0] = (byte)id;
        packet.Buffer[1] = (byte)(id >> 8);
        return packet;
    }
}
