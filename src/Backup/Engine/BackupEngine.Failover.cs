using System.Diagnostics;
using McGrpc.Backup.Failover;
using McGrpc.Shared;

namespace McGrpc.Backup.Engine;

internal sealed partial class BackupEngine
{
    private long _declaredDeadAt;
    private double _detectionMs;
    private FailoverTiming? _failoverTiming;
    private ulong _failoverEpoch;

    /// <summary>
    /// Liveness watch, independent of any one stream: the primary is dead when
    /// nothing arrived for the heartbeat timeout, or when a lost stream was not
    /// resumed within the grace time.
    /// </summary>
    private async Task WatchPrimaryAsync(CancellationToken stoppingToken)
    {
        var period = TimeSpan.FromMilliseconds(Math.Clamp(_options.HeartbeatTimeoutMs / 10, 5, 100));
        using var timer = new PeriodicTimer(period);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            string? reason = null;
            ReplicationSession? stale = null;
            lock (_lock)
            {
                if (!_primaryWatched || _state is not (BackupState.Protected or BackupState.Syncing) || _applying)
                {
                    continue;
                }

                var now = Stopwatch.GetTimestamp();
                var silentMs = Ms(Interlocked.Read(ref _lastFrameAt), now);
                if (_session is null && _streamLostAt != 0)
                {
                    // Within the grace after a lost stream only the grace counts.
                    if (Ms(_streamLostAt, now) >= _options.StreamLossGraceMs)
                    {
                        reason = $"replication stream lost and not resumed within {_options.StreamLossGraceMs} ms";
                    }
                }
                else if (silentMs > _options.HeartbeatTimeoutMs)
                {
                    reason = $"no frame from the primary for {silentMs:F0} ms (heartbeat timeout {_options.HeartbeatTimeoutMs} ms)";
                    stale = _session;
                }
            }

            if (reason is not null)
            {
                stale?.Abort(reason);
                DeclarePrimaryDead(reason);
            }
        }
    }

    /// <summary>The primary is gone: fail over under the auto policy, or wait for the operator.</summary>
    private void DeclarePrimaryDead(string reason)
    {
        bool auto;
        lock (_lock)
        {
            if (!_primaryWatched || _state is BackupState.FailingOver or BackupState.FailedOver or BackupState.Failed)
            {
                return;
            }

            _primaryWatched = false;
            _declaredDeadAt = Stopwatch.GetTimestamp();
            _detectionMs = Ms(Interlocked.Read(ref _lastFrameAt), _declaredDeadAt);
            auto = _policy == "auto";
            if (!_hasCheckpoint)
            {
                _stateReason = string.Empty;
            }
        }

        if (!_hasCheckpoint)
        {
            BackupLog.NothingToResume(_logger, reason);
            SetState(BackupState.Waiting, $"primary lost ({reason}) before the first checkpoint was applied: nothing to resume, QEMU stays paused");
            return;
        }

        BackupLog.PrimaryDead(_logger, reason, _detectionMs, _lastApplied, auto ? "auto" : "manual");
        SetState(BackupState.PrimaryLost, auto
            ? $"primary declared dead ({reason}); failing over"
            : $"primary declared dead ({reason}); manual policy: call Failover to resume from epoch {_lastApplied}");
        if (auto)
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    await FailoverAsync(force: true, requestedByOperator: false, CancellationToken.None).ConfigureAwait(false);
                }
                catch (FailoverException e)
                {
                    BackupLog.FailoverFailed(_logger, e.Message, e);
                }
            });
        }
    }

    /// <summary>Resumes the VM here from the last applied checkpoint.</summary>
    public async Task FailoverAsync(bool force, bool requestedByOperator, CancellationToken cancellationToken)
    {
        ReplicationSession? session;
        long started;
        lock (_lock)
        {
            if (_state is BackupState.FailingOver or BackupState.FailedOver)
            {
                throw new FailoverException($"Already {(_state == BackupState.FailedOver ? "failed over" : "failing over")}.");
            }

            if (_state is BackupState.Failed or BackupState.Starting)
            {
                throw new FailoverException($"The backup cannot fail over: {_stateReason}.");
            }

            if (!_hasCheckpoint)
            {
                throw new FailoverException(_state == BackupState.Syncing
                    ? "No checkpoint to resume: the initial copy is still being received. The VM stays paused."
                    : "No checkpoint to resume: no full copy of this VM was ever applied here. The VM stays paused.");
            }

            if (requestedByOperator && !force && _session is not null)
            {
                throw new FailoverException($"The primary is replicating (epoch {_lastApplied} applied); failing over now would run the VM twice. Use force only if the primary is known to be dead.");
            }

            if (requestedByOperator && !force && _goodbyeReason is not null)
            {
                throw new FailoverException($"The primary ended protection on purpose ({_goodbyeReason}) and its VM may still run. Use force to resume this copy anyway.");
            }

            session = _session;
            _session = null;
            _primaryWatched = false;
            started = Stopwatch.GetTimestamp();
            if (_declaredDeadAt == 0 || requestedByOperator)
            {
                _declaredDeadAt = started;
                _detectionMs = requestedByOperator ? 0 : _detectionMs;
            }
        }

        SetState(BackupState.FailingOver, requestedByOperator ? "failover requested by the operator" : "primary declared dead");
        if (session is not null)
        {
            session.Abort("this backup is taking over the VM", forFailover: true);
            await session.Finished.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        }

        byte[] deviceState;
        ulong epoch;
        lock (_checkpointLock)
        {
            deviceState = _checkpointDeviceState;
            epoch = _lastApplied;
        }

        try
        {
            var restoreStarted = Stopwatch.GetTimestamp();
            var socket = _options.IncomingSocket ?? Path.Combine(Path.GetTempPath(), $"mcgrpc-{Environment.ProcessId}-incoming.sock");
            await FailoverRunner.RestoreAsync(_qmp!, deviceState, socket, cancellationToken).ConfigureAwait(false);
            var running = Stopwatch.GetTimestamp();
            var timing = new FailoverTiming(_detectionMs, Ms(restoreStarted, running), _detectionMs + Ms(_declaredDeadAt, running));
            lock (_lock)
            {
                _failoverTiming = timing;
                _failoverEpoch = epoch;
            }

            _stats.FailedOver(timing);
            BackupLog.FailedOver(_logger, epoch, timing.DetectionMs, timing.RestoreMs, timing.TotalMs);
            SetState(BackupState.FailedOver, $"the VM runs here from checkpoint {epoch} (detection {timing.DetectionMs:F0} ms, restore {timing.RestoreMs:F0} ms)");
        }
        catch (Exception e) when (e is McGrpcException or IOException or OperationCanceledException or System.Net.Sockets.SocketException or TimeoutException)
        {
            SetState(BackupState.Failed, $"failover from checkpoint {epoch} failed: {e.Message}");
            throw new FailoverException($"Failover from checkpoint {epoch} failed: {e.Message}", precondition: false, e);
        }
    }
}
