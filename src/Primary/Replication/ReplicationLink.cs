using System.Diagnostics;
using System.Threading.Channels;
using Grpc.Core;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;
using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Replication;

/// <summary>
/// One replication stream to the backup. A single task writes (draining a
/// bounded channel of batches, with heartbeats when idle), a single task
/// reads acks; any failure goes through <see cref="Abort"/>, which ends both
/// and faults <see cref="Completion"/>.
/// </summary>
internal sealed class ReplicationLink : IAsyncDisposable
{
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(10);

    private readonly AsyncDuplexStreamingCall<PrimaryFrame, BackupFrame> _call;
    private readonly Channel<OutboundBatch> _outbound = Channel.CreateBounded<OutboundBatch>(new BoundedChannelOptions(32) { SingleReader = true });
    private readonly CancellationTokenSource _cancellation = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<Ack> _onAck;
    private readonly TimeSpan _heartbeatInterval;
    private readonly PrimaryFaultOptions _faults;
    private readonly ILogger _logger;
    private Task _sendLoop = Task.CompletedTask;
    private Task _receiveLoop = Task.CompletedTask;
    private ulong _lastCommitted;
    private bool _closing;

    private ReplicationLink(AsyncDuplexStreamingCall<PrimaryFrame, BackupFrame> call, Action<Ack> onAck, TimeSpan heartbeatInterval, PrimaryFaultOptions faults, ILogger logger)
    {
        _call = call;
        _onAck = onAck;
        _heartbeatInterval = heartbeatInterval;
        _faults = faults;
        _logger = logger;
    }

    public HelloReply Reply { get; private set; } = new();

    /// <summary>Completes when the link ends: faulted with the reason unless closed on purpose.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Whether the fault-injection cut already happened in this process.</summary>
    public static bool CutDone { get; private set; }

    /// <summary>Opens the stream, sends Hello and waits for the backup's HelloReply.</summary>
    public static async Task<ReplicationLink> OpenAsync(
        Protos.Replication.Replication.ReplicationClient client,
        Hello hello,
        Action<Ack> onAck,
        TimeSpan heartbeatInterval,
        PrimaryFaultOptions faults,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        var call = client.Replicate(cancellationToken: CancellationToken.None);
        var link = new ReplicationLink(call, onAck, heartbeatInterval, faults, logger);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(HelloTimeout);
            await call.RequestStream.WriteAsync(new PrimaryFrame { Hello = hello }, timeout.Token).ConfigureAwait(false);
            if (!await call.ResponseStream.MoveNext(timeout.Token).ConfigureAwait(false))
            {
                throw new ReplicationLinkException("The backup closed the stream without answering Hello.");
            }

            if (call.ResponseStream.Current.BodyCase != BackupFrame.BodyOneofCase.HelloReply)
            {
                throw new ReplicationLinkException($"The backup answered Hello with {call.ResponseStream.Current.BodyCase} instead of HelloReply.");
            }

            link.Reply = call.ResponseStream.Current.HelloReply;
        }
        catch (RpcException e)
        {
            await link.DisposeAsync().ConfigureAwait(false);
            throw Translate(e);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            await link.DisposeAsync().ConfigureAwait(false);
            throw new ReplicationLinkException($"The backup did not answer Hello within {HelloTimeout.TotalSeconds} s.", e);
        }
        catch
        {
            await link.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        link._sendLoop = Task.Run(link.SendLoopAsync, CancellationToken.None);
        link._receiveLoop = Task.Run(link.ReceiveLoopAsync, CancellationToken.None);
        return link;
    }

    /// <summary>Queues a batch; waits while the link's queue is full. Throws once the link has failed.</summary>
    public async ValueTask EnqueueAsync(OutboundBatch batch, CancellationToken cancellationToken)
    {
        try
        {
            await _outbound.Writer.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            await Completion.ConfigureAwait(false);
            throw new ReplicationLinkException("The replication stream is closed.");
        }
    }

    /// <summary>Ends the stream on purpose; with a reason, the backup is told not to fail over.</summary>
    public async Task CloseAsync(string? goodbyeReason, CancellationToken cancellationToken)
    {
        _closing = true;
        _outbound.Writer.TryComplete();

        // A backup that stops reading must not hold the primary here forever.
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(CloseTimeout);
        try
        {
            await _sendLoop.WaitAsync(limit.Token).ConfigureAwait(false);
            if (goodbyeReason is not null)
            {
                await _call.RequestStream.WriteAsync(new PrimaryFrame { Goodbye = new Goodbye { Reason = goodbyeReason } }, limit.Token).ConfigureAwait(false);
            }

            await _call.RequestStream.CompleteAsync().WaitAsync(limit.Token).ConfigureAwait(false);
            await _receiveLoop.WaitAsync(TimeSpan.FromSeconds(5), limit.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RpcException or IOException or InvalidOperationException or TimeoutException)
        {
            PrimaryLog.LinkCloseFailed(_logger, e.Message);
        }
        catch (OperationCanceledException) when (limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            PrimaryLog.LinkCloseFailed(_logger, $"the backup did not take the close within {CloseTimeout.TotalSeconds:F0} s");
        }
        finally
        {
            _completion.TrySetResult();
        }
    }

    /// <summary>Fails the link: both loops end, queued batches are dropped from this link (the engine keeps its own copies).</summary>
    public void Abort(Exception reason)
    {
        if (_completion.TrySetException(reason))
        {
            _outbound.Writer.TryComplete();
            _cancellation.Cancel();
        }
    }

    public async ValueTask DisposeAsync()
    {
        Abort(new ReplicationLinkException("The replication link was disposed."));
        await Task.WhenAll(_sendLoop, _receiveLoop).ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
        while (_outbound.Reader.TryRead(out var batch))
        {
            if (batch.DisposeAfterSend)
            {
                batch.Frames.Dispose();
            }
        }

        _call.Dispose();
        _cancellation.Dispose();
        _ = Completion.Exception;
    }

    private async Task SendLoopAsync()
    {
        var token = _cancellation.Token;
        try
        {
            while (true)
            {
                if (!_outbound.Reader.TryRead(out var batch))
                {
                    var ready = _outbound.Reader.WaitToReadAsync(token).AsTask();
                    if (await Task.WhenAny(ready, Task.Delay(_heartbeatInterval, token)).ConfigureAwait(false) != ready)
                    {
                        await _call.RequestStream.WriteAsync(
                            new PrimaryFrame { Heartbeat = new Heartbeat { LastCommittedEpoch = _lastCommitted, SentAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() } },
                            token).ConfigureAwait(false);
                        continue;
                    }

                    if (!await ready.ConfigureAwait(false))
                    {
                        return;
                    }

                    continue;
                }

                try
                {
                    await SendBatchAsync(batch, token).ConfigureAwait(false);
                }
                finally
                {
                    if (batch.DisposeAfterSend)
                    {
                        batch.Frames.Dispose();
                    }
                }
            }
        }
        catch (Exception e) when (e is RpcException or IOException or OperationCanceledException or InvalidOperationException or ReplicationLinkException)
        {
            Abort(e is RpcException rpc ? Translate(rpc) : e is ReplicationLinkException ? e : new ReplicationLinkException($"Sending to the backup failed: {e.Message}", e));
        }
    }

    private async Task SendBatchAsync(OutboundBatch batch, CancellationToken token)
    {
        var started = Stopwatch.GetTimestamp();
        var frames = batch.Frames.Frames;
        var cutAt = !CutDone && _faults.CutStreamInEpoch != 0 && batch.Frames.Epoch == _faults.CutStreamInEpoch && !batch.Frames.Full
            ? frames.Count / 2
            : -1;
        for (var i = 0; i < frames.Count; i++)
        {
            if (i == cutAt)
            {
                CutDone = true;
                PrimaryLog.FaultStreamCut(_logger, batch.Frames.Epoch, i, frames.Count);
                throw new ReplicationLinkException($"Fault injection: stream cut after {i} of {frames.Count} frames of epoch {batch.Frames.Epoch}.");
            }

            var faultDelay = frames[i].BodyCase == PrimaryFrame.BodyOneofCase.Commit ? _faults.CommitDelayMs : _faults.FrameDelayMs;
            if (faultDelay > 0)
            {
                await Task.Delay(faultDelay, token).ConfigureAwait(false);
            }

            await _call.RequestStream.WriteAsync(frames[i], token).ConfigureAwait(false);
        }

        if (batch.Frames.Commit is not null)
        {
            _lastCommitted = batch.Frames.Epoch;
        }

        batch.Sent?.Invoke(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    private async Task ReceiveLoopAsync()
    {
        var token = _cancellation.Token;
        try
        {
            while (await _call.ResponseStream.MoveNext(token).ConfigureAwait(false))
            {
                var frame = _call.ResponseStream.Current;
                if (frame.BodyCase != BackupFrame.BodyOneofCase.Ack)
                {
                    throw new ReplicationLinkException($"The backup sent {frame.BodyCase} where only acks are expected.");
                }

                _onAck(frame.Ack);
            }

            if (!_closing)
            {
                Abort(new ReplicationLinkException("The backup ended the replication stream."));
            }
        }
        catch (Exception e) when (e is RpcException or IOException or OperationCanceledException or InvalidOperationException or ReplicationLinkException)
        {
            Abort(e is RpcException rpc ? Translate(rpc) : e is ReplicationLinkException ? e : new ReplicationLinkException($"Receiving from the backup failed: {e.Message}", e));
        }
    }

    /// <summary>
    /// A TLS failure surfaces as an opaque transport error; say where to look.
    /// With TLS 1.3 a client certificate the backup refused shows up here only
    /// as a connection closed during the HTTP/2 handshake.
    /// </summary>
    private static string TlsHint(RpcException e)
    {
        if (e.StatusCode is not (StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown))
        {
            return string.Empty;
        }

        var detail = e.Status.Detail;
        if (detail.Contains("SSL", StringComparison.Ordinal) || detail.Contains("certificate", StringComparison.OrdinalIgnoreCase))
        {
            return " (TLS: the backup's certificate was not accepted; see the warning that names why)";
        }

        return detail.Contains("HTTP/2 handshake", StringComparison.Ordinal)
            ? " (if the backup logged 'Refused a replication connection', it did not accept this daemon's certificate: check --tls-cert against the backup's --tls-ca)"
            : string.Empty;
    }

    private static ReplicationLinkException Translate(RpcException e)
    {
        var refused = e.StatusCode is StatusCode.FailedPrecondition or StatusCode.PermissionDenied or StatusCode.Unauthenticated;
        var failedOver = e.Trailers.GetValue(ReplicationMetadata.ReasonKey) == ReplicationMetadata.FailedOver;
        return new ReplicationLinkException(
            $"The backup {(refused ? "refused the session" : "stream failed")}: {e.StatusCode}: {e.Status.Detail}{TlsHint(e)}",
            e,
            refused,
            failedOver);
    }
}
