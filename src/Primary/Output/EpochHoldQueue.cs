namespace McGrpc.Primary.Output;

/// <summary>
/// The output-commit rule of the userspace buffer, with no I/O: packets
/// arrive in order, a barrier closes an epoch, the ack of epoch N lets out
/// every packet that arrived before barrier N, in arrival order. Before the
/// first barrier and after <see cref="ReleaseAll"/> packets pass straight
/// through, so a release and a pass-through can never reorder packets.
/// <para>
/// Memory is bounded: packets held plus packets let out but not yet written
/// back to QEMU may take at most the configured bytes (counting the rented
/// arrays, not just the data). A packet that does not fit is dropped and
/// counted. That is the only choice that neither stalls QEMU (whose writes to
/// its chardev block its main loop) nor lets unacked output out: the guest
/// sees loss, TCP retransmits after the ack, UDP loses it as on any network.
/// </para>
/// Thread-safe; every call is short and never blocks (the release sink is
/// called under the lock and must only queue).
/// </summary>
internal sealed class EpochHoldQueue
{
    private readonly Lock _lock = new();
    private readonly Queue<OutputPacket> _held = new();
    private readonly Queue<(ulong Epoch, long End)> _barriers = new();
    private readonly Action<OutputPacket> _release;
    private readonly long _maxBytes;
    private bool _holding;
    private ulong? _lastBarrier;
    private long _enqueued;
    private long _dequeued;
    private long _heldBytes;
    private long _heldFootprint;
    private long _inFlightFootprint;
    private long _releasedPackets;
    private long _releasedBytes;
    private long _droppedPackets;
    private long _droppedBytes;

    /// <param name="maxBytes">Bound on held plus in-flight memory.</param>
    /// <param name="release">
    /// Takes a packet that may leave now (ownership included). Called under
    /// the queue's lock, in order; must not block. The taker calls
    /// <see cref="Delivered"/> or <see cref="Lost"/> when done with it.
    /// </param>
    public EpochHoldQueue(long maxBytes, Action<OutputPacket> release)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, RedirectorFrames.MaxPacketBytes);
        _maxBytes = maxBytes;
        _release = release;
    }

    /// <summary>Whether packets are held (a barrier came since creation or the last release-all).</summary>
    public bool Holding
    {
        get
        {
            lock (_lock)
            {
                return _holding;
            }
        }
    }

    public OutputBufferStats Stats
    {
        get
        {
            lock (_lock)
            {
                return new OutputBufferStats(_held.Count, _heldBytes, _releasedPackets, _releasedBytes, _droppedPackets);
            }
        }
    }

    /// <summary>Packets and bytes dropped at the memory bound (or lost on a broken connection) since creation.</summary>
    public (long Packets, long Bytes) Dropped
    {
        get
        {
            lock (_lock)
            {
                return (_droppedPackets, _droppedBytes);
            }
        }
    }

    /// <summary>Held plus in-flight memory now, in bytes of rented arrays.</summary>
    public long Footprint
    {
        get
        {
            lock (_lock)
            {
                return _heldFootprint + _inFlightFootprint;
            }
        }
    }

    /// <summary>A packet from the guest. Takes ownership; a dropped packet's buffer is returned here.</summary>
    public OutputAddResult Add(OutputPacket packet)
    {
        lock (_lock)
        {
            if (_heldFootprint + _inFlightFootprint + packet.Footprint > _maxBytes)
            {
                _droppedPackets++;
                _droppedBytes += packet.Length;
                packet.Return();
                return OutputAddResult.Dropped;
            }

            if (!_holding)
            {
                LetOut(packet);
                return OutputAddResult.PassedThrough;
            }

            _held.Enqueue(packet);
            _enqueued++;
            _heldBytes += packet.Length;
            _heldFootprint += packet.Footprint;
            return OutputAddResult.Held;
        }
    }

    /// <summary>
    /// Closes epoch <paramref name="epoch"/>: every packet added so far goes
    /// out with its ack (or an earlier one's). The first barrier starts holding.
    /// </summary>
    public void Barrier(ulong epoch)
    {
        lock (_lock)
        {
            if (_lastBarrier is { } last && epoch <= last)
            {
                throw new ArgumentOutOfRangeException(nameof(epoch), epoch, $"Barriers must increase; the last one was {last}.");
            }

            _lastBarrier = epoch;
            if (!_holding)
            {
                // Everything before this barrier already passed through: the epoch it closes is empty.
                _holding = true;
                return;
            }

            _barriers.Enqueue((epoch, _enqueued));
        }
    }

    /// <summary>The ack of <paramref name="epoch"/>: lets out everything added before its barrier. Returns how many packets.</summary>
    public int Release(ulong epoch)
    {
        lock (_lock)
        {
            long end = -1;
            while (_barriers.TryPeek(out var barrier) && barrier.Epoch <= epoch)
            {
                end = _barriers.Dequeue().End;
            }

            var released = 0;
            while (_dequeued < end)
            {
                LetOut(Dequeue());
                released++;
            }

            return released;
        }
    }

    /// <summary>Lets out everything held and passes packets through until the next barrier. Returns how many packets were held.</summary>
    public int ReleaseAll()
    {
        lock (_lock)
        {
            var released = _held.Count;
            while (_held.Count > 0)
            {
                LetOut(Dequeue());
            }

            _barriers.Clear();
            _holding = false;
            _lastBarrier = null;
            return released;
        }
    }

    /// <summary>
    /// Empties the queue without letting anything out (the buffer is being
    /// abandoned while holding: what it holds was never acked). Returns the
    /// number of packets discarded.
    /// </summary>
    public int DiscardHeld()
    {
        lock (_lock)
        {
            var discarded = _held.Count;
            while (_held.Count > 0)
            {
                var packet = Dequeue();
                _droppedPackets++;
                _droppedBytes += packet.Length;
                packet.Return();
            }

            _barriers.Clear();
            return discarded;
        }
    }

    /// <summary>A packet let out earlier was written back to QEMU; its memory is free again.</summary>
    public void Delivered(OutputPacket packet)
    {
        lock (_lock)
        {
            _inFlightFootprint -= packet.Footprint;
            _releasedPackets++;
            _releasedBytes += packet.Length;
        }

        packet.Return();
    }

    /// <summary>A packet let out earlier could not be written back (its connection broke); counted as dropped.</summary>
    public void Lost(OutputPacket packet)
    {
        lock (_lock)
        {
            _inFlightFootprint -= packet.Footprint;
            _droppedPackets++;
            _droppedBytes += packet.Length;
        }

        packet.Return();
    }

    private OutputPacket Dequeue()
    {
        var packet = _held.Dequeue();
        _dequeued++;
        _heldBytes -= packet.Length;
        _heldFootprint -= packet.Footprint;
        return packet;
    }

    private void LetOut(OutputPacket packet)
    {
        _inFlightFootprint += packet.Footprint;
        _release(packet);
    }
}
