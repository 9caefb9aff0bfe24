using Grpc.Net.Client;
using McGrpc.Primary.Output;
using McGrpc.Primary.Replication;
using McGrpc.Primary.Tracking;
using McGrpc.Protos.Replication;
using McGrpc.Shared;
using McGrpc.Shared.Frames;
using McGrpc.Shared.Hosting;

namespace McGrpc.Primary.Engine;

internal sealed partial class PrimaryEngine
{
    private readonly EpochWindow _window = new();
    private readonly DirtyPageRuns _runs = new();
    private IDirtyTracker? _tracker;
    private string _trackerReason = string.Empty;
    private IOutputBuffer? _output;
    private ReplicationLink? _link;
    private ulong _nextEpoch;
    private long _lastStopTimestamp;
    private long _degradedSince;
    private CancellationTokenSource? _degradedTimer;

    /// <summary>One protection session: from Migrate until Cancel, a fatal error or shutdown.</summary>
    private async Task RunProtectionAsync(ProtectRequest request, CancellationToken stoppingToken)
    {
        using var protection = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, request.Cancellation.Token);
        var target = request.Target;
        var cancellation = protection.Token;
        using var channel = CreateChannel(target);
        var client = new Protos.Replication.Replication.ReplicationClient(channel);
        string? goodbye = "protection cancelled by the operator";
        lock (_lock)
        {
            // Each Migrate is a session of its own: the backup must not take
            // a Migrate after a Cancel for the continuation of the old stream.
            _sessionId = Guid.NewGuid().ToString("N");
        }

        try
        {
            _tracker = SelectTracker();
            _output = await CreateOutputBufferAsync(cancellation).ConfigureAwait(false);
            SetState(PrimaryState.Connecting, $"connecting to {target}");
            await ReplicateAsync(client, cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (cancellation.IsCancellationRequested
                                  && e is OperationCanceledException or ReplicationLinkException { BackupFailedOver: false } or Grpc.Core.RpcException or IOException or HttpRequestException)
        {
            // A link failure that races with Cancel (a connect refused just then) is the cancel, not a fault.
            if (_guestShutdown)
            {
                goodbye = "the guest powered off";
            }
            else if (stoppingToken.IsCancellationRequested || _qemuGone)
            {
                // The daemon is stopping (host shutdown) or QEMU died: the
                // backup must take over, so no goodbye.
                goodbye = null;
            }
        }
        catch (ReplicationLinkException e) when (e.BackupFailedOver)
        {
            goodbye = null;
            await FenceAsync(e.Message).ConfigureAwait(false);
        }
        catch (DirtyTrackerUnavailableException e)
        {
            // A forced tracker that cannot work: nothing was sent, the VM runs as before.
            goodbye = null;
            SetState(PrimaryState.Idle, e.Message);
            PrimaryLog.ProtectionFailed(_logger, e.Message, e);
        }
        catch (McGrpcException e)
        {
            goodbye = null;
            SetState(PrimaryState.Failed, e.Message);
            PrimaryLog.ProtectionFailed(_logger, e.Message, e);
        }
        finally
        {
            await EndProtectionAsync(goodbye).ConfigureAwait(false);
            lock (_lock)
            {
                _protection = null;
            }

            request.Cancellation.Dispose();

            if (State is not (PrimaryState.Failed or PrimaryState.Fenced))
            {
                SetState(PrimaryState.Idle, goodbye ?? "protection ended");
            }
        }
    }

    /// <summary>The best dirty tracker that works for this VM here (or the forced one), with the reasons for the others.</summary>
    private IDirtyTracker SelectTracker()
    {
        var ram = _ram!;
        var target = new DirtyTrackerTarget(ram.Location.QemuPid, ram.Location.QemuAddress, ram.Size, ram.PageSize, ram.Memory, _vm.DiscardsRam);
        var selection = DirtyTrackerSelector.Select(DirtyTrackerSelector.ParseMode(_options.Tracker), target, _loggerFactory.CreateLogger("McGrpc.Primary.Tracking"));
        var rejected = string.Join("; ", selection.Rejected.Select(r => $"{r.Tracker}: {r.Reason}"));
        lock (_lock)
        {
            _trackerReason = rejected.Length == 0 ? $"{_options.Tracker} option" : $"{_options.Tracker} option; not chosen: {rejected}";
        }

        PrimaryLog.TrackerChosen(_logger, selection.Tracker.Name, _trackerReason);
        return selection.Tracker;
    }

    /// <summary>Connect, resume or copy everything, run epochs; on link loss go degraded and try again.</summary>
    private async Task ReplicateAsync(Protos.Replication.Replication.ReplicationClient client, CancellationToken cancellation)
    {
        var everConnected = false;
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            ReplicationLink link;
            try
            {
                link = await ReplicationLink.OpenAsync(client, BuildHello(), OnAck, TimeSpan.FromMilliseconds(_options.HeartbeatIntervalMs), _options.Faults, _logger, cancellation).ConfigureAwait(false);
            }
            catch (Exception e) when (IsLinkFailure(e, cancellation))
            {
                if (e is ReplicationLinkException { BackupFailedOver: true })
                {
                    throw;
                }

                PrimaryLog.ConnectFailed(_logger, e.Message);
                if (!everConnected)
                {
                    SetState(PrimaryState.Connecting, $"cannot reach the backup: {e.Message}");
                }

                await Task.Delay(_options.ReconnectIntervalMs, cancellation).ConfigureAwait(false);
                continue;
            }

            everConnected = true;
            lock (_lock)
            {
                _link = link;
            }

            try
            {
                await ResumeOrSyncAsync(link, cancellation).ConfigureAwait(false);
                await EpochLoopAsync(link, cancellation).ConfigureAwait(false);
            }
            catch (Exception e) when (IsLinkFailure(e, cancellation))
            {
                if (e is ReplicationLinkException { BackupFailedOver: true })
                {
                    throw;
                }

                EnterDegraded(e.Message);
                if (ReplicationLink.CutDone && _options.Faults.ReconnectDelayAfterCutMs > 0)
                {
                    await Task.Delay(_options.Faults.ReconnectDelayAfterCutMs, cancellation).ConfigureAwait(false);
                }
                else
                {
                    await Task.Delay(Math.Min(_options.ReconnectIntervalMs, 100), cancellation).ConfigureAwait(false);
                }
            }
            finally
            {
                // On Cancel the link stays for EndProtectionAsync, which says goodbye
                // on it first: disposing it here would reset the stream, and the
                // backup would take that for a dead primary and fail over.
                if (!cancellation.IsCancellationRequested)
                {
                    lock (_lock)
                    {
                        _link = null;
                    }

                    await link.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    private bool IsLinkFailure(Exception e, CancellationToken cancellation)
        => !cancellation.IsCancellationRequested
           && e is ReplicationLinkException or Grpc.Core.RpcException or IOException or HttpRequestException or OperationCanceledException or InvalidOperationException;

    private Hello BuildHello() => new()
    {
        ProtocolVersion = FrameLimits.ProtocolVersion,
        VmId = _vm.VmId,
        RamSize = (ulong)_ram!.Size,
        PageSize = (uint)_ram.PageSize,
        SessionId = _sessionId,
        DigestMode = _options.DigestMode,
    };

    /// <summary>Continues after the backup's last applied epoch when the window allows it; otherwise copies everything again.</summary>
    private async Task ResumeOrSyncAsync(ReplicationLink link, CancellationToken cancellation)
    {
        var reply = link.Reply;
        bool resume;
        List<EpochWindow.Entry> resend = [];
        lock (_lock)
        {
            resume = reply.Resumable && _window.CanResumeAfter(reply.LastAppliedEpoch, _nextEpoch);
            if (resume)
            {
                AckLocked(reply.LastAppliedEpoch, fromResume: true);
                resend = [.. _window.Entries];
            }
            else
            {
                _window.Reset();
            }
        }

        if (!resume)
        {
            if (reply.Resumable)
            {
                // The backup expects this session's next epoch, but what it
                // lacks is no longer held here: start over as a new session,
                // which the backup answers by expecting a full copy. Said
                // with a goodbye: a reset stream would make a backup that
                // holds a checkpoint take over.
                lock (_lock)
                {
                    _sessionId = Guid.NewGuid().ToString("N");
                }

                await link.CloseAsync("restarting as a new session: the primary no longer holds the epochs after the backup's checkpoint", cancellation).ConfigureAwait(false);
                throw new ReplicationLinkException($"The backup is at epoch {reply.LastAppliedEpoch}, which cannot be continued from here; reconnecting as a new session for a full copy.");
            }

            if (reply.HasCheckpoint)
            {
                PrimaryLog.ResyncOverCheckpoint(_logger, reply.LastAppliedEpoch);
            }

            await LeaveDegradedForFullCopyAsync(cancellation).ConfigureAwait(false);

            // Over a checkpoint the backup could resume from, the full copy
            // skips a number: the backup takes last + 1 as the next
            // incremental epoch and only a number beyond it as a full copy.
            var epoch = Math.Max(_nextEpoch, reply.HasCheckpoint ? reply.LastAppliedEpoch + (reply.Resumable ? 2UL : 1UL) : 0);
            await FullSyncAsync(link, epoch, cancellation).ConfigureAwait(false);
            return;
        }

        foreach (var entry in resend)
        {
            entry.QueuedAt = System.Diagnostics.Stopwatch.GetTimestamp();
            await link.EnqueueAsync(new OutboundBatch(entry.Frames!, DisposeAfterSend: false), cancellation).ConfigureAwait(false);
        }

        LeaveDegraded(resend.Count, reply.LastAppliedEpoch);
    }

    private async Task EpochLoopAsync(ReplicationLink link, CancellationToken cancellation)
    {
        while (true)
        {
            await WaitForNextStopAsync(link.Completion, cancellation).ConfigureAwait(false);

            while (true)
            {
                cancellation.ThrowIfCancellationRequested();
                if (link.Completion.IsCompleted)
                {
                    await link.Completion.ConfigureAwait(false);
                    throw new ReplicationLinkException("The replication stream ended.");
                }

                Task changed;
                lock (_lock)
                {
                    CheckAckTimeoutLocked(link);
                    if (_window.Count < _options.MaxEpochsInFlight)
                    {
                        break;
                    }

                    changed = _window.Changed;
                }

                await Task.WhenAny(changed, link.Completion, Task.Delay(_options.AckTimeoutMs / 4, cancellation)).ConfigureAwait(false);
            }

            await RunEpochAsync(link, new EpochAccumulator(_nextEpoch, full: false), cancellation).ConfigureAwait(false);
        }
    }

    private void CheckAckTimeoutLocked(ReplicationLink link)
    {
        // The end of a full copy may wait for the backup to finish writing all
        // of RAM: give it ten times longer (and at least 30 s).
        var timeout = _window.Oldest is { Record.Full: true } ? Math.Max(_options.AckTimeoutMs * 10, 30_000) : _options.AckTimeoutMs;
        if (_window.Oldest is { } oldest && Ms(oldest.QueuedAt, System.Diagnostics.Stopwatch.GetTimestamp()) > timeout)
        {
            link.Abort(new ReplicationLinkException($"No ack for epoch {oldest.Record.Epoch} within {timeout} ms."));
        }
    }

    /// <summary>Called by the link's receive task for every ack.</summary>
    private void OnAck(Ack ack)
    {
        lock (_lock)
        {
            if (_window.HasAcked && ack.Epoch <= _window.LastAcked)
            {
                return;
            }

            if (ack.Epoch >= _nextEpoch)
            {
                _link?.Abort(new ReplicationLinkException($"The backup acked epoch {ack.Epoch}, which was never committed."));
                return;
            }

            AckLocked(ack.Epoch, fromResume: false);
            if (_options.DigestMode && !ack.RamDigestVerified)
            {
                PrimaryLog.DigestNotVerified(_logger, ack.Epoch);
            }
        }

        Changed?.Invoke();
    }

    private void AckLocked(ulong epoch, bool fromResume)
    {
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        foreach (var entry in _window.AckThrough(epoch))
        {
            if (!fromResume)
            {
                entry.Record.AckLatencyMs = Ms(entry.Record.StoppedAt, now);
                _stats.Acked(entry.Record);
            }

            if (entry.Record.Full)
            {
                PrimaryLog.FullCopyAcked(_logger, entry.Record.Epoch);
            }
        }

        _output?.Release(epoch);
        if (_window.Complete && _state is PrimaryState.Syncing)
        {
            // State changes outside the lock would reorder with the next epoch's; set directly.
            _state = PrimaryState.Protected;
            _stateReason = $"backup holds checkpoint {epoch}";
            _stateSinceUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            _stats.SetState(_state);
            PrimaryLog.StateChanged(_logger, PrimaryState.Syncing, PrimaryState.Protected, _stateReason);
        }
    }

    private void EnterDegraded(string reason)
    {
        CancellationTokenSource timer;
        lock (_lock)
        {
            if (_state is PrimaryState.Degraded or PrimaryState.Unprotected)
            {
                return;
            }

            _degradedSince = System.Diagnostics.Stopwatch.GetTimestamp();
            _degradedTimer?.Dispose();
            _degradedTimer = timer = new CancellationTokenSource();
        }

        SetState(PrimaryState.Degraded, $"backup lost ({reason}); holding output for up to {_options.UnprotectedTimeoutMs} ms while reconnecting");
        _ = Task.Delay(_options.UnprotectedTimeoutMs, timer.Token).ContinueWith(
            async t =>
            {
                if (t.IsCanceled)
                {
                    return;
                }

                if (State is not PrimaryState.Degraded)
                {
                    return;
                }

                PrimaryLog.RunningUnprotected(_logger, _options.UnprotectedTimeoutMs);
                if (_output is not null)
                {
                    await _output.ReleaseAllAndStopAsync(CancellationToken.None).ConfigureAwait(false);
                }

                SetState(PrimaryState.Unprotected, $"backup unreachable for {_options.UnprotectedTimeoutMs} ms: output released, running UNPROTECTED (split-brain risk if only the link failed)");
            },
            TaskScheduler.Default);
    }

    private void LeaveDegraded(int resent, ulong lastApplied)
    {
        bool wasUnprotected;
        lock (_lock)
        {
            _degradedTimer?.Cancel();
            wasUnprotected = _state is PrimaryState.Unprotected;
        }

        if (_state is PrimaryState.Degraded or PrimaryState.Unprotected)
        {
            PrimaryLog.Resumed(_logger, lastApplied, resent, Ms(_degradedSince, System.Diagnostics.Stopwatch.GetTimestamp()));
        }

        if (wasUnprotected && _output is not null && !_netDisable)
        {
            _ = _output.StartAsync(CancellationToken.None);
        }

        SetState(PrimaryState.Protected, $"resumed after epoch {lastApplied}");
    }

    /// <summary>
    /// A reconnect that cannot resume copies everything again. Until that copy
    /// is acked no backup can take over, so holding output protects nobody:
    /// let it out and pass traffic through until the copy's own barrier, as
    /// during the first copy.
    /// </summary>
    private async Task LeaveDegradedForFullCopyAsync(CancellationToken cancellation)
    {
        bool wasDegraded;
        lock (_lock)
        {
            _degradedTimer?.Cancel();
            wasDegraded = _state is PrimaryState.Degraded or PrimaryState.Unprotected;
        }

        if (wasDegraded && _output is not null)
        {
            await _output.ReleaseAllAndStopAsync(cancellation).ConfigureAwait(false);
        }
    }

    private async Task EndProtectionAsync(string? goodbye)
    {
        ReplicationLink? link;
        lock (_lock)
        {
            link = _link;
            _link = null;
            _degradedTimer?.Cancel();
        }

        if (link is not null)
        {
            if (goodbye is not null)
            {
                await link.CloseAsync(goodbye, CancellationToken.None).ConfigureAwait(false);
            }
            else
            {
                link.Abort(new ReplicationLinkException("protection ended"));
            }

            await link.DisposeAsync().ConfigureAwait(false);
        }

        if (_output is not null)
        {
            await _output.ReleaseAllAndStopAsync(CancellationToken.None).ConfigureAwait(false);
            await _output.DisposeAsync().ConfigureAwait(false);
            _output = null;
        }

        lock (_lock)
        {
            _window.Reset();
        }

        _tracker?.Dispose();
        _tracker = null;
    }

    /// <summary>The backup runs the VM now: stop this copy so two VMs never run.</summary>
    private async Task FenceAsync(string reason)
    {
        PrimaryLog.Fenced(_logger, reason);
        try
        {
            await _qmp!.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (McGrpcException e)
        {
            PrimaryLog.FenceStopFailed(_logger, e.Message);
        }

        SetState(PrimaryState.Fenced, $"the backup has taken over the VM; this copy was stopped ({reason})");
    }

    private GrpcChannel CreateChannel(ReplicationTarget target) => ReplicationChannel.Create(target, _tls, _logger);
}
