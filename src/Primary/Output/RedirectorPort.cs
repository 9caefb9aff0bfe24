namespace McGrpc.Primary.Output;

/// <summary>
/// One filtered netdev and its outbox: the packets released for it, in
/// order, waiting for the inject connection. The outbox outlives the filters
/// (<see cref="RedirectorAttachment"/>), so packets released while the
/// filters are being replaced wait here instead of being lost.
/// </summary>
internal sealed class RedirectorPort : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Queue<OutputPacket> _outbox = new();
    private readonly List<OutputPacket> _retry = [];
    private readonly ManualResetEventSlim _ready = new(false);

    public RedirectorPort(int index, QemuNetdev netdev)
    {
        Index = index;
        Netdev = netdev;
    }

    public int Index { get; }

    public QemuNetdev Netdev { get; }

    /// <summary>The filters in use now; replaced by a repair.</summary>
    public RedirectorAttachment? Current { get; set; }

    /// <summary>Packets waiting to be written back.</summary>
    public int Pending
    {
        get
        {
            lock (_lock)
            {
                return _outbox.Count + _retry.Count;
            }
        }
    }

    /// <summary>Queues a released packet; never blocks (called under the hold queue's lock).</summary>
    public void Enqueue(OutputPacket packet)
    {
        lock (_lock)
        {
            _outbox.Enqueue(packet);
        }

        _ready.Set();
    }

    /// <summary>Waits until something may be queued. Throws when <paramref name="cancellationToken"/> fires.</summary>
    public void WaitReady(CancellationToken cancellationToken) => _ready.Wait(cancellationToken);

    /// <summary>Moves up to about <paramref name="maxBytes"/> of packets, oldest first, into <paramref name="batch"/>.</summary>
    public void TakeBatch(List<OutputPacket> batch, int maxBytes)
    {
        lock (_lock)
        {
            // Reset under the lock, before taking: an Enqueue after this sets it again.
            _ready.Reset();
            var bytes = 0;
            var fromRetry = 0;
            while (fromRetry < _retry.Count && (batch.Count == 0 || bytes + _retry[fromRetry].Length <= maxBytes))
            {
                bytes += _retry[fromRetry].Length;
                batch.Add(_retry[fromRetry++]);
            }

            _retry.RemoveRange(0, fromRetry);
            while (_retry.Count == 0 && _outbox.TryPeek(out var next) && (batch.Count == 0 || bytes + next.Length <= maxBytes))
            {
                bytes += next.Length;
                batch.Add(_outbox.Dequeue());
            }

            if (_retry.Count > 0 || _outbox.Count > 0)
            {
                _ready.Set();
            }
        }
    }

    /// <summary>Puts packets that were taken but not written back at the head, in their order.</summary>
    public void PutBack(IEnumerable<OutputPacket> packets)
    {
        lock (_lock)
        {
            _retry.InsertRange(0, packets);
        }

        _ready.Set();
    }

    /// <summary>Takes everything still queued (the port is closing for good).</summary>
    public List<OutputPacket> TakeAll()
    {
        lock (_lock)
        {
            var all = new List<OutputPacket>(_retry.Count + _outbox.Count);
            all.AddRange(_retry);
            all.AddRange(_outbox);
            _retry.Clear();
            _outbox.Clear();
            return all;
        }
    }

    public void Dispose() => _ready.Dispose();
}
