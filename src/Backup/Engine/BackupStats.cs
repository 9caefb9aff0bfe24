using McGrpc.Protos.Control;
using McGrpc.Shared.Hosting;
using McGrpc.Shared.Stats;
using Microsoft.Extensions.Options;
using Prometheus;

namespace McGrpc.Backup.Engine;

/// <summary>Backup statistics for status and the Prometheus endpoint. Thread-safe.</summary>
internal sealed class BackupStats
{
    private readonly Counter _applied = Metrics.CreateCounter("mcgrpc_backup_epochs_applied_total", "Epochs verified and applied.");
    private readonly Counter _discarded = Metrics.CreateCounter("mcgrpc_backup_epochs_discarded_total", "Partial epochs discarded (stream lost or rejected mid-epoch).");
    private readonly Counter _rejected = Metrics.CreateCounter("mcgrpc_backup_frames_rejected_total", "Streams closed because a frame or Hello broke the rules.");
    private readonly Counter _pages = Metrics.CreateCounter("mcgrpc_backup_pages_applied_total", "Guest pages received in applied epochs.");
    private readonly Counter _digestMismatches = Metrics.CreateCounter("mcgrpc_backup_digest_mismatches_total", "Digest mode: applied RAM differed from the primary's.");
    private readonly Histogram _apply = Metrics.CreateHistogram("mcgrpc_backup_apply_seconds", "Commit received to RAM applied.", new HistogramConfiguration { Buckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1] });
    private readonly Gauge _lastApplied = Metrics.CreateGauge("mcgrpc_backup_last_applied_epoch", "Last applied epoch.");
    private readonly Gauge _failoverSeconds = Metrics.CreateGauge("mcgrpc_backup_failover_seconds", "Last failover: last primary frame to running guest.");
    private readonly Gauge _stateGauge = Metrics.CreateGauge("mcgrpc_backup_state", "1 for the current state.", new GaugeConfiguration { LabelNames = ["state"] });
    private readonly Gauge _policyGauge = Metrics.CreateGauge("mcgrpc_backup_failover_policy", "1 for the failover policy in force.", new GaugeConfiguration { LabelNames = ["policy"] });
    private readonly Gauge _checkpointStop = Metrics.CreateGauge("mcgrpc_backup_last_checkpoint_stop_timestamp_seconds", "When the primary stopped the guest for the last applied checkpoint (Unix time; lag = time() - this).");
    private readonly Counter _failovers = Metrics.CreateCounter("mcgrpc_backup_failovers_total", "Failovers completed (the VM runs here).");
    private readonly Gauge _syncCopied = Metrics.CreateGauge("mcgrpc_backup_sync_received_bytes", "Initial copy: bytes of guest RAM received so far.");
    private readonly Gauge _syncRam = Metrics.CreateGauge("mcgrpc_backup_sync_ram_bytes", "Initial copy: guest RAM size.");
    private readonly RollingPercentiles _applyMs = new();
    private readonly Lock _lock = new();
    private ulong _appliedCount;
    private ulong _discardedCount;
    private ulong _rejectedCount;
    private string _lastRejection = string.Empty;
    private ulong _digestChecks;
    private ulong _digestMismatchCount;
    private readonly bool _replicationTls;
    private SyncProgressTracker? _sync;

    public BackupStats(IOptions<BackupOptions> options, TlsSettings tls)
    {
        _replicationTls = tls.ReplicationTls;
        SetPolicy(options.Value.FailoverPolicy);
        SetState(BackupState.Starting);

        // Progress of a long initial copy changes continuously; sample it when scraped.
        Metrics.DefaultRegistry.AddBeforeCollectCallback(SampleSync);
    }

    public void Applied(Protos.Replication.Commit commit, double applyMs, bool digestChecked, bool digestOk)
    {
        lock (_lock)
        {
            _appliedCount++;
            if (digestChecked)
            {
                _digestChecks++;
                if (!digestOk)
                {
                    _digestMismatchCount++;
                }
            }
        }

        _applyMs.Add(applyMs);
        _applied.Inc();
        _pages.Inc(commit.PageCount);
        _apply.Observe(applyMs / 1000);
        _lastApplied.Set(commit.Epoch);
        if (commit.StoppedAtUnixMs > 0)
        {
            _checkpointStop.Set(commit.StoppedAtUnixMs / 1000.0);
        }

        if (digestChecked && !digestOk)
        {
            _digestMismatches.Inc();
        }
    }

    public void Discarded()
    {
        lock (_lock)
        {
            _discardedCount++;
        }

        _discarded.Inc();
    }

    public void Rejected(string reason)
    {
        lock (_lock)
        {
            _rejectedCount++;
            _lastRejection = reason;
        }

        _rejected.Inc();
    }

    public void FailedOver(FailoverTiming timing)
    {
        _failoverSeconds.Set(timing.TotalMs / 1000);
        _failovers.Inc();
    }

    public void SetPolicy(string policy)
    {
        foreach (var value in new[] { "auto", "manual" })
        {
            _policyGauge.WithLabels(value).Set(value == policy ? 1 : 0);
        }
    }

    public void SetSync(SyncProgressTracker sync)
    {
        lock (_lock)
        {
            _sync = sync;
        }
    }

    public void SetState(BackupState state)
    {
        foreach (var value in Enum.GetValues<BackupState>())
        {
            _stateGauge.WithLabels(BackupEngine.StateName(value)).Set(value == state ? 1 : 0);
        }
    }

    public void Fill(BackupStatus status)
    {
        SyncProgressTracker? sync;
        lock (_lock)
        {
            status.EpochsApplied = _appliedCount;
            status.EpochsDiscarded = _discardedCount;
            status.FramesRejected = _rejectedCount;
            status.LastRejection = _lastRejection;
            status.DigestChecks = _digestChecks;
            status.DigestMismatches = _digestMismatchCount;
            status.ReplicationTls = _replicationTls;
            sync = _sync;
        }

        var (p50, p99, max, _) = _applyMs.Snapshot();
        status.ApplyMs = new Percentiles { P50 = p50, P99 = p99, Max = max };
        if (sync is not null)
        {
            var s = sync.Snapshot();
            status.Sync = new SyncProgress
            {
                BytesCopied = (ulong)s.BytesCopied,
                RamSize = (ulong)s.RamSize,
                Round = (uint)s.Round,
                RateMbps = s.RateMbps,
                EtaSeconds = s.EtaSeconds,
            };
        }
    }

    private void SampleSync()
    {
        SyncProgressTracker? sync;
        lock (_lock)
        {
            sync = _sync;
        }

        if (sync is not null)
        {
            var s = sync.Snapshot();
            _syncCopied.Set(s.BytesCopied);
            _syncRam.Set(s.RamSize);
        }
    }
}
