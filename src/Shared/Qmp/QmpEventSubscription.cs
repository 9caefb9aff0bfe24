using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace McGrpc.Shared.Qmp;

/// <summary>
/// A stream of QMP events from <see cref="QmpClient.Subscribe"/>. Events arrive in QEMU's order,
/// starting with the first one the client receives after <see cref="QmpClient.Subscribe"/>
/// returned. The reader completes when the subscription is disposed, and fails with
/// <see cref="QmpConnectionException"/> when the connection ends.
/// </summary>
internal sealed class QmpEventSubscription : IDisposable
{
    private readonly QmpClient _owner;
    private readonly Func<QmpEvent, bool>? _filter;
    private readonly Channel<QmpEvent> _channel;
    private readonly ILogger _logger;
    private readonly int _capacity;
    private long _droppedCount;

    internal QmpEventSubscription(QmpClient owner, Func<QmpEvent, bool>? filter, int capacity, ILogger logger)
    {
        _owner = owner;
        _filter = filter;
        _logger = logger;
        _capacity = capacity;
        // DropOldest makes TryWrite always succeed, so a slow reader never stalls the receive loop.
        _channel = Channel.CreateBounded<QmpEvent>(
            new BoundedChannelOptions(capacity)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleWriter = true,
                AllowSynchronousContinuations = false,
            },
            OnDropped);
    }

    /// <summary>The events that passed the filter.</summary>
    public ChannelReader<QmpEvent> Reader => _channel.Reader;

    /// <summary>How many events were dropped because the reader fell behind.</summary>
    public long DroppedCount => Interlocked.Read(ref _droppedCount);

    /// <summary>Stops delivery; the reader completes after the events already buffered.</summary>
    public void Dispose()
    {
        _owner.Unsubscribe(this);
        _channel.Writer.TryComplete();
    }

    /// <summary>Called on the receive loop only. Returns false when the filter threw and the subscription ended.</summary>
    internal bool Offer(QmpEvent qmpEvent)
    {
        try
        {
            if (_filter is not null && !_filter(qmpEvent))
            {
                return true;
            }
        }
        catch (Exception e)
        {
            QmpLog.SubscriptionFilterFailed(_logger, e, qmpEvent.Name);
            _channel.Writer.TryComplete(e);
            return false;
        }

        _channel.Writer.TryWrite(qmpEvent);
        return true;
    }

    internal void Complete(Exception? error) => _channel.Writer.TryComplete(error);

    private void OnDropped(QmpEvent dropped)
    {
        var count = Interlocked.Increment(ref _droppedCount);
        QmpLog.EventDropped(_logger, _capacity, dropped.Name, count);
    }
}
