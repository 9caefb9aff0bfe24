using System.Runtime.ExceptionServices;
using System.Text.Json;
using System.Threading.Channels;

namespace McGrpc.Shared.Qmp;

internal sealed partial class QmpClient
{
    /// <summary>
    /// Starts receiving events that pass <paramref name="filter"/> (all events when null).
    /// </summary>
    /// <remarks>
    /// Delivery starts as soon as this returns, so subscribe before issuing the command that
    /// triggers the event: QEMU often sends the event before the command's reply (STOP before
    /// the reply to <c>stop</c>). The filter runs on the receive loop and must be quick; if it
    /// throws, only this subscription ends.
    /// </remarks>
    /// <exception cref="QmpConnectionException">The connection has ended.</exception>
    public QmpEventSubscription Subscribe(Func<QmpEvent, bool>? filter = null)
    {
        var subscription = new QmpEventSubscription(this, filter, _options.EventBufferCapacity, _logger);
        lock (_gate)
        {
            if (_abortReason is not null)
            {
                throw new QmpConnectionException(_abortReason.Message, _abortReason);
            }

            // Copy-on-write: the receive loop reads the array without taking the lock.
            _subscriptions = [.. _subscriptions, subscription];
        }

        return subscription;
    }

    /// <summary>
    /// Waits for the next event named <paramref name="name"/> that satisfies
    /// <paramref name="predicate"/>.
    /// </summary>
    /// <remarks>
    /// Subscribes before it returns, so this pattern cannot miss the event:
    /// <code>
    /// var stopped = client.WaitForEventAsync("STOP", null, timeout, cancellationToken);
    /// await client.StopAsync(cancellationToken);
    /// await stopped;
    /// </code>
    /// Events that arrived before the call are not seen.
    /// </remarks>
    /// <exception cref="QmpTimeoutException">No such event within <paramref name="timeout"/>.</exception>
    /// <exception cref="QmpConnectionException">The connection ended first.</exception>
    public Task<QmpEvent> WaitForEventAsync(string name, Func<QmpEvent, bool>? predicate, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        QmpClientOptions.CheckTimeout(timeout, nameof(timeout));
        QmpEventSubscription subscription;
        try
        {
            subscription = Subscribe(e => e.Name == name && (predicate is null || predicate(e)));
        }
        catch (QmpConnectionException e)
        {
            return Task.FromException<QmpEvent>(e);
        }

        return WaitAsync(subscription, name, timeout, cancellationToken);

        static async Task<QmpEvent> WaitAsync(QmpEventSubscription subscription, string name, TimeSpan timeout, CancellationToken cancellationToken)
        {
            using (subscription)
            {
                using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeoutSource.CancelAfter(timeout);
                try
                {
                    return await subscription.Reader.ReadAsync(timeoutSource.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw QmpTimeoutException.ForEvent(name, timeout);
                }
                catch (ChannelClosedException e) when (e.InnerException is not null)
                {
                    ExceptionDispatchInfo.Throw(e.InnerException);
                    throw;
                }
            }
        }
    }

    internal void Unsubscribe(QmpEventSubscription subscription)
    {
        lock (_gate)
        {
            var index = Array.IndexOf(_subscriptions, subscription);
            if (index >= 0)
            {
                _subscriptions = [.. _subscriptions[..index], .. _subscriptions[(index + 1)..]];
            }
        }
    }

    private void DispatchEvent(JsonElement root, JsonElement nameElement)
    {
        var name = nameElement.GetString() ?? "";
        QmpLog.EventReceived(_logger, name);
        var subscriptions = Volatile.Read(ref _subscriptions);
        if (subscriptions.Length == 0)
        {
            return;
        }

        var qmpEvent = new QmpEvent(
            name,
            root.TryGetProperty("data"u8, out var data) ? data.Clone() : null,
            ParseTimestamp(root));
        foreach (var subscription in subscriptions)
        {
            if (!subscription.Offer(qmpEvent))
            {
                Unsubscribe(subscription);
            }
        }
    }

    private static DateTimeOffset ParseTimestamp(JsonElement root)
    {
        if (root.TryGetProperty("timestamp"u8, out var timestamp)
            && timestamp.TryGetProperty("seconds"u8, out var seconds) && seconds.TryGetInt64(out var wholeSeconds)
            && timestamp.TryGetProperty("microseconds"u8, out var microseconds) && microseconds.TryGetInt64(out var fraction)
            && wholeSeconds >= 0)
        {
            return DateTimeOffset.FromUnixTimeSeconds(wholeSeconds).AddTicks(fraction * TimeSpan.TicksPerMicrosecond);
        }

        // Not something QEMU 7.2 sends; keep the event rather than fail the connection over it.
        return DateTimeOffset.UtcNow;
    }
}
