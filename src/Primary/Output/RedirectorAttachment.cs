using System.Net.Sockets;
using System.Text.Json.Nodes;
using McGrpc.Shared;
using McGrpc.Shared.Qmp;
using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Output;

/// <summary>
/// One generation of the two filter-redirectors on a netdev, with their
/// chardevs, sockets and threads:
/// <list type="bullet">
/// <item>inject: <c>indev</c> = a socket chardev on a socket pair; what this
/// process writes there, QEMU sends on from the filter towards the netdev
/// (queue=rx: from the guest to the network).</item>
/// <item>capture: <c>outdev</c> = another socket pair; QEMU writes every packet
/// the guest sends there instead of to the netdev.</item>
/// </list>
/// The inject filter is added first. Packets towards the network pass the
/// filters from the last added to the first (net/filter.c netfilter_next:
/// queue=rx walks the list in reverse), so capture sees the guest's packets
/// first, and what inject sends on passes only the filters added before it,
/// never the capture filter: added the other way round, every injected packet
/// would be captured again, for ever.
/// <para>
/// The fds travel with getfd, and the chardevs are clients on them
/// (<c>addr: {type: fd}</c>): there is no listening socket anybody else could
/// connect to, and when this process dies QEMU sees both connections close.
/// A closed outdev makes QEMU drop each guest packet (<c>filter_send</c> fails
/// with EIO, the filter still returns the packet as consumed): nothing leaks.
/// A closed indev makes QEMU stop reading it for good (the 7.2 handler for
/// CHR_EVENT_CLOSED unregisters itself), so a broken attachment is never
/// reconnected, only replaced.
/// </para>
/// </summary>
internal sealed class RedirectorAttachment
{
    private const int ReadBufferBytes = 256 * 1024;
    private const int WriteBatchBytes = 256 * 1024;

    private static int _generation;

    private readonly RedirectorPort _port;
    private readonly EpochHoldQueue _queue;
    private readonly bool _vnetHeader;
    private readonly Action<OutputAddResult> _captured;
    private readonly Action<RedirectorAttachment, string, Exception?> _broken;
    private readonly Socket _capture;
    private readonly Socket _inject;
    private readonly CancellationTokenSource _stopWriter = new();
    private readonly TaskCompletionSource _readerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _retiring;
    private volatile bool _writing;
    private bool _writerStarted;

    private RedirectorAttachment(
        RedirectorPort port, string prefix, Socket capture, Socket inject, EpochHoldQueue queue, bool vnetHeader,
        Action<OutputAddResult> captured, Action<RedirectorAttachment, string, Exception?> broken)
    {
        _port = port;
        _capture = capture;
        _inject = inject;
        _queue = queue;
        _vnetHeader = vnetHeader;
        _captured = captured;
        _broken = broken;
        InjectFilterId = $"{prefix}-inject";
        CaptureFilterId = $"{prefix}-capture";
        InjectChardevId = $"{prefix}-in";
        CaptureChardevId = $"{prefix}-out";
    }

    /// <summary>Every QEMU object and chardev id this process creates starts with this.</summary>
    public const string IdPrefix = "mcgrpc-";

    public string InjectFilterId { get; }

    public string CaptureFilterId { get; }

    public string InjectChardevId { get; }

    public string CaptureChardevId { get; }

    public RedirectorPort Port => _port;

    /// <summary>
    /// Adds the chardevs and filters (inject, then capture, both at the tail
    /// of the netdev's filter list) and starts reading. The writer starts
    /// with <see cref="StartWriter"/>, once no older capture filter is left
    /// that injected packets would run into. Removes what it added if any
    /// step fails.
    /// </summary>
    public static async Task<RedirectorAttachment> CreateAsync(
        QmpClient qmp, RedirectorPort port, UserspaceOutputBufferOptions options, EpochHoldQueue queue,
        Action<OutputAddResult> captured, Action<RedirectorAttachment, string, Exception?> broken, ILogger logger, CancellationToken cancellationToken)
    {
        var prefix = $"{IdPrefix}{Environment.ProcessId}-{Interlocked.Increment(ref _generation)}";
        var (injectOurs, injectTheirs) = UnixSocketPair.Create();
        Socket? captureOurs = null, captureTheirs = null;
        RedirectorAttachment? attachment = null;
        var undo = new Stack<(string Command, string Id)>();
        try
        {
            (captureOurs, captureTheirs) = UnixSocketPair.Create();
            UnixSocketPair.RaiseSendBuffer(injectOurs, options.SocketBufferBytes);
            var granted = UnixSocketPair.RaiseSendBuffer(captureTheirs, options.SocketBufferBytes);
            UserspaceOutputLog.SocketBuffer(logger, port.Netdev.Id, granted);

            attachment = new RedirectorAttachment(port, prefix, captureOurs, injectOurs, queue, options.VnetHeaderSupport, captured, broken);
            await AddChardevAsync(qmp, attachment.InjectChardevId, injectTheirs, cancellationToken).ConfigureAwait(false);
            undo.Push(("chardev-remove", attachment.InjectChardevId));
            await AddChardevAsync(qmp, attachment.CaptureChardevId, captureTheirs, cancellationToken).ConfigureAwait(false);
            undo.Push(("chardev-remove", attachment.CaptureChardevId));

            await AddFilterAsync(qmp, attachment.InjectFilterId, port.Netdev, "indev", attachment.InjectChardevId, options.VnetHeaderSupport, cancellationToken).ConfigureAwait(false);
            undo.Push(("object-del", attachment.InjectFilterId));

            // QEMU writes to the capture connection the moment the filter exists, and
            // blocks its main loop while nobody reads: the reader runs first.
            attachment.StartReader();
            await AddFilterAsync(qmp, attachment.CaptureFilterId, port.Netdev, "outdev", attachment.CaptureChardevId, options.VnetHeaderSupport, cancellationToken).ConfigureAwait(false);
            return attachment;
        }
        catch
        {
            attachment?.Abandon();
            while (undo.TryPop(out var step))
            {
                await TryRemoveAsync(qmp, step.Command, step.Id, logger).ConfigureAwait(false);
            }

            injectOurs.Dispose();
            captureOurs?.Dispose();
            throw;
        }
        finally
        {
            // QEMU holds its own duplicates now (or nothing, on failure).
            injectTheirs.Dispose();
            captureTheirs?.Dispose();
        }
    }

    /// <summary>Starts writing released packets back to QEMU.</summary>
    public void StartWriter()
    {
        if (_writerStarted)
        {
            return;
        }

        _writerStarted = true;
        var thread = new Thread(WriteLoop) { IsBackground = true, Name = $"output inject {_port.Netdev.Id}" };
        thread.UnsafeStart();
    }

    /// <summary>
    /// Clean removal, leaving QEMU's networking as before: the capture filter
    /// first (the guest's packets go straight to the netdev from then on),
    /// then, once every packet captured before that was read and every packet
    /// released was written back, the inject filter; then the chardevs.
    /// </summary>
    public async Task RemoveAsync(QmpClient qmp, TimeSpan drainTimeout, ILogger logger)
    {
        _retiring = true;
        await TryRemoveAsync(qmp, "object-del", CaptureFilterId, logger).ConfigureAwait(false);

        // QEMU closes its end when the chardev goes: the reader sees the rest, then EOF.
        await TryRemoveAsync(qmp, "chardev-remove", CaptureChardevId, logger).ConfigureAwait(false);
        await Task.WhenAny(_readerDone.Task, Task.Delay(drainTimeout)).ConfigureAwait(false);
        var deadline = DateTime.UtcNow + drainTimeout;
        while (_writerStarted && (_port.Pending > 0 || _writing) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10).ConfigureAwait(false);
        }

        if (_port.Pending > 0)
        {
            UserspaceOutputLog.DrainTimedOut(logger, _port.Netdev.Id, _port.Pending, drainTimeout);
        }

        await StopWriterAsync().ConfigureAwait(false);
        await FinishInjectAsync(drainTimeout).ConfigureAwait(false);
        await TryRemoveAsync(qmp, "object-del", InjectFilterId, logger).ConfigureAwait(false);
        await TryRemoveAsync(qmp, "chardev-remove", InjectChardevId, logger).ConfigureAwait(false);
        CloseSockets();
    }

    /// <summary>
    /// Replaced by a newer attachment (whose capture filter already sees the
    /// guest's packets): stops the writer, putting back what it did not
    /// write, and removes this generation's objects.
    /// </summary>
    public async Task RetireAsync(QmpClient qmp, ILogger logger)
    {
        _retiring = true;
        await StopWriterAsync().ConfigureAwait(false);
        await FinishInjectAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        await TryRemoveAsync(qmp, "object-del", CaptureFilterId, logger).ConfigureAwait(false);
        await TryRemoveAsync(qmp, "object-del", InjectFilterId, logger).ConfigureAwait(false);
        await TryRemoveAsync(qmp, "chardev-remove", CaptureChardevId, logger).ConfigureAwait(false);
        await TryRemoveAsync(qmp, "chardev-remove", InjectChardevId, logger).ConfigureAwait(false);
        CloseSockets();
    }

    /// <summary>
    /// Closes this process's ends without telling QEMU, as if the process had
    /// died: QEMU keeps the filters and drops every guest packet from now on.
    /// </summary>
    public void Abandon()
    {
        _retiring = true;
        _stopWriter.Cancel();
        CloseSockets();
    }

    /// <summary>Test seam: the inject connection drops, as a broken socket would.</summary>
    internal void BreakInjectForTest() => _inject.Shutdown(SocketShutdown.Both);

    /// <summary>Test seam: the capture connection drops.</summary>
    internal void BreakCaptureForTest() => _capture.Shutdown(SocketShutdown.Both);

    /// <summary>Removes a QEMU object or chardev, logging instead of failing: cleanup must go on.</summary>
    public static async Task TryRemoveAsync(QmpClient qmp, string command, string id, ILogger logger)
    {
        try
        {
            await qmp.ExecuteAsync(command, new Dictionary<string, string> { ["id"] = id }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (QmpCommandException exception) when (exception.ErrorClass is "DeviceNotFound" || exception.Description.Contains("not found", StringComparison.OrdinalIgnoreCase))
        {
            // Gone already.
        }
        catch (McGrpcException exception)
        {
            UserspaceOutputLog.RemoveFailed(logger, $"{id} ({command})", exception);
        }
    }

    private static async Task AddChardevAsync(QmpClient qmp, string id, Socket theirs, CancellationToken cancellationToken)
    {
        await qmp.GetfdAsync(id, theirs.SafeHandle, cancellationToken).ConfigureAwait(false);
        try
        {
            var backend = new JsonObject
            {
                ["type"] = "socket",
                ["data"] = new JsonObject
                {
                    ["addr"] = new JsonObject { ["type"] = "fd", ["data"] = new JsonObject { ["str"] = id } },
                    ["server"] = false,
                },
            };
            await qmp.ChardevAddAsync(id, backend, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            try
            {
                await qmp.ClosefdAsync(id, CancellationToken.None).ConfigureAwait(false);
            }
            catch (McGrpcException)
            {
                // Consumed or gone: nothing to close.
            }

            throw;
        }
    }

    private static async Task AddFilterAsync(QmpClient qmp, string id, QemuNetdev netdev, string role, string chardev, bool vnetHeader, CancellationToken cancellationToken)
    {
        try
        {
            await qmp.ObjectAddAsync(
                new JsonObject
                {
                    ["qom-type"] = "filter-redirector",
                    ["id"] = id,
                    ["netdev"] = netdev.Id,
                    ["queue"] = "rx",
                    [role] = chardev,
                    ["vnet_hdr_support"] = vnetHeader,
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (QmpCommandException exception) when (exception.Description.Contains("Vhost", StringComparison.OrdinalIgnoreCase))
        {
            throw new UserspaceOutputBufferException(
                $"QEMU cannot filter netdev '{netdev.Id}' ({netdev.Type}, NIC {netdev.Nic}): it uses vhost-net, whose packets bypass QEMU. "
                + "Start that netdev with vhost=off, or use the kernel output buffer (--output-buffer kernel), which works with vhost-net.",
                exception);
        }
        catch (QmpCommandException exception) when (exception.Description.Contains("multiqueue", StringComparison.OrdinalIgnoreCase))
        {
            throw new UserspaceOutputBufferException(
                $"QEMU cannot filter netdev '{netdev.Id}' ({netdev.Type}, NIC {netdev.Nic}): net filters do not support multiqueue netdevs. "
                + "Use queues=1, or the kernel output buffer (--output-buffer kernel).",
                exception);
        }
    }

    private void StartReader()
    {
        var thread = new Thread(ReadLoop) { IsBackground = true, Name = $"output capture {_port.Netdev.Id}" };
        thread.UnsafeStart();
    }

    /// <summary>
    /// Never stops reading while the connection lives: QEMU writes captured
    /// packets with a blocking write-all from the thread that holds its big
    /// lock, so a reader that pauses freezes the guest and QMP with it.
    /// </summary>
    private void ReadLoop()
    {
        var decoder = new RedirectorFrameDecoder(_vnetHeader, _port.Index);
        var buffer = new byte[ReadBufferBytes];
        Exception? failure = null;
        try
        {
            while (true)
            {
                var read = _capture.Receive(buffer);
                if (read == 0)
                {
                    break;
                }

                decoder.Feed(buffer.AsSpan(0, read), OnCaptured);
            }
        }
        catch (Exception exception) when (exception is SocketException or ObjectDisposedException or RedirectorFrameException)
        {
            failure = exception;
        }
        finally
        {
            decoder.Reset();
            _readerDone.TrySetResult();
        }

        if (!_retiring)
        {
            _broken(this, "capture", failure);
        }
    }

    private void OnCaptured(OutputPacket packet) => _captured(_queue.Add(packet));

    private void WriteLoop()
    {
        var batch = new List<OutputPacket>();
        var send = new byte[WriteBatchBytes + RedirectorFrames.FrameLength(RedirectorFrames.MaxPacketBytes, vnetHeader: true)];
        var ends = new List<int>();
        try
        {
            while (true)
            {
                _port.WaitReady(_stopWriter.Token);
                _writing = true;
                _port.TakeBatch(batch, WriteBatchBytes);
                if (batch.Count == 0)
                {
                    _writing = false;
                    continue;
                }

                var length = 0;
                ends.Clear();
                foreach (var packet in batch)
                {
                    length += RedirectorFrames.Write(send.AsSpan(length), packet.Data, packet.VnetHeaderLength, _vnetHeader);
                    ends.Add(length);
                }

                var sent = 0;
                try
                {
                    while (sent < length)
                    {
                        sent += _inject.Send(send, sent, length - sent, SocketFlags.None);
                    }
                }
                catch (Exception exception) when (exception is SocketException or ObjectDisposedException)
                {
                    // Whole frames before the failure reached the socket; QEMU may or may not
                    // have read them, but they can never be read twice. A partial frame is
                    // never completed, so from it on everything goes out again, on a new connection.
                    var whole = ends.FindLastIndex(end => end <= sent) + 1;
                    for (var i = 0; i < whole; i++)
                    {
                        _queue.Delivered(batch[i]);
                    }

                    _port.PutBack(batch.Skip(whole));
                    batch.Clear();
                    _writing = false;
                    if (!_retiring)
                    {
                        _broken(this, "inject", exception);
                    }

                    return;
                }

                foreach (var packet in batch)
                {
                    _queue.Delivered(packet);
                }

                batch.Clear();
                _writing = false;
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped: whatever was taken is written; the rest waits in the port.
        }
        finally
        {
            _writing = false;
            _writerDone.TrySetResult();
        }
    }

    /// <summary>
    /// Makes sure QEMU has read everything written to the inject connection:
    /// written is not injected until QEMU's main loop reads it, and removing
    /// the filter first would drop what is still in the socket. Closing the
    /// sending side makes QEMU read up to the end, see EOF and close its end,
    /// which this side sees as EOF in turn.
    /// </summary>
    private async Task FinishInjectAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            _inject.Shutdown(SocketShutdown.Send);
            var scratch = new byte[64];
            while (await _inject.ReceiveAsync(scratch, SocketFlags.None, deadline.Token).ConfigureAwait(false) > 0)
            {
                // QEMU never writes to an indev; nothing to keep.
            }
        }
        catch (Exception exception) when (exception is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // Broken or closed already, or QEMU did not finish in time: nothing more to wait for.
        }
    }

    private async Task StopWriterAsync()
    {
        _stopWriter.Cancel();
        if (!_writerStarted)
        {
            return;
        }

        // A writer blocked in send (QEMU not reading) only ends when its socket closes.
        if (await Task.WhenAny(_writerDone.Task, Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false) != _writerDone.Task)
        {
            _inject.Dispose();
            await _writerDone.Task.ConfigureAwait(false);
        }
    }

    private void CloseSockets()
    {
        foreach (var socket in new[] { _capture, _inject })
        {
            try
            {
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception exception) when (exception is SocketException or ObjectDisposedException)
            {
            }

            socket.Dispose();
        }
    }
}
