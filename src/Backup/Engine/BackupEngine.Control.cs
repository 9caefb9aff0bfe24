using McGrpc.Protos.Control;

namespace McGrpc.Backup.Engine;

internal sealed partial class BackupEngine
{
    public static string StateName(BackupState state) => state switch
    {
        BackupState.PrimaryLost => "primary_lost",
        BackupState.FailingOver => "failing_over",
        BackupState.FailedOver => "failed_over",
        _ => state.ToString().ToLowerInvariant(),
    };

    /// <summary>The policies SetFailoverPolicy accepts (exactly, like the --failover-policy option).</summary>
    public static bool IsFailoverPolicy(string? policy) => policy is "auto" or "manual";

    /// <summary>
    /// Switches between auto and manual at any time. Switching to auto while
    /// the primary is already declared dead fails over at once.
    /// </summary>
    public void SetFailoverPolicy(string policy)
    {
        if (!IsFailoverPolicy(policy))
        {
            throw new ArgumentException($"Unknown failover policy '{policy}'; use auto or manual.", nameof(policy));
        }

        bool failNow;
        string previous;
        lock (_lock)
        {
            previous = _policy;
            _policy = policy;
            // Switching to auto while the primary is already declared dead acts on it.
            failNow = policy == "auto" && previous != "auto" && _state == BackupState.PrimaryLost && _hasCheckpoint;
        }

        if (previous != policy)
        {
            BackupLog.PolicyChanged(_logger, policy);
            _stats.SetPolicy(policy);
            Changed?.Invoke();
        }

        if (failNow)
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

    public BackupStatus GetStatus()
    {
        var status = new BackupStatus();
        lock (_lock)
        {
            status.State = StateName(_state);
            status.StateReason = _stateReason;
            status.StateSinceUnixMs = _stateSinceUnixMs;
            status.VmId = _vm.VmId;
            status.FailoverPolicy = _policy;
            status.LastAppliedEpoch = _appliedAny ? _lastApplied : 0;
            status.PrimarySession = _checkpointSession;
            status.LastRamDigest = _lastRamDigest;
            (status.CanFailover, status.CannotFailoverReason) = _state switch
            {
                BackupState.FailingOver or BackupState.FailedOver => (false, "already failed over"),
                BackupState.Failed or BackupState.Starting => (false, _stateReason),
                _ when !_hasCheckpoint => (false, "no checkpoint applied yet: nothing to resume"),
                _ when _goodbyeReason is not null => (false, $"the primary ended protection on purpose ({_goodbyeReason}); only a forced failover is possible"),
                _ => (true, string.Empty),
            };
            if (_hasCheckpoint && _checkpointStoppedAtUnixMs > 0)
            {
                status.LagMs = Math.Max(0, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - _checkpointStoppedAtUnixMs);
            }

            if (_failoverTiming is { } timing)
            {
                status.FailoverDetectionMs = timing.DetectionMs;
                status.FailoverRestoreMs = timing.RestoreMs;
                status.FailoverTotalMs = timing.TotalMs;
                status.FailoverEpoch = _failoverEpoch;
            }
        }

        _stats.Fill(status);
        return status;
    }
}
