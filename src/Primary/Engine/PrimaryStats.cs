using McGrpc.Protos.Control;
using McGrpc.Shared.Stats;
using Prometheus;

namespace McGrpc.Primary.Engine;

/// <summary>
/// Per-checkpoint statistics for status and for the Prometheus endpoint, fed
/// by the engine. Thread-safe: written by the epoch loop and the ack path,
/// read by control calls.
/// </summary>
internal sealed class PrimaryStats
{
    private static readonly double[] PauseBuckets = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2];

    private readonly Counter _checkpoints = Metrics.CreateCounter("mcgrpc_primary_checkpoints_total", "Checkpoints taken (epochs committed).");
    private readonly Counter _acked = Metrics.CreateCounter("mcgrpc_primary_checkpoints_acked_total", "Checkpoints acked by the backup.");
    private readonly Counter _dirtyPages = Metrics.CreateCounter("mcgrpc_primary_dirty_pages_total", "Dirty guest pages sent.");
    private readonly Counter _rawBytes = Metrics.CreateCounter("mcgrpc_primary_raw_bytes_total", "Dirty page bytes before compression.");
    private readonly Counter _sentBytes = Metrics.CreateCounter("mcgrpc_primary_sent_bytes_total", "Bytes of replication frames sent (pages, device state, commits).");
    private readonly Counter _deviceStateBytes = Metrics.CreateCounter("mcgrpc_primary_device_state_bytes_total", "Device-state bytes sent.");
    private readonly Histogram _pause = Metrics.CreateHistogram("mcgrpc_primary_pause_seconds", "Guest pause per checkpoint (stop..cont).", new HistogramConfiguration { Buckets = PauseBuckets });
    private readonly Histogram _ackLatency = Metrics.CreateHistogram("mcgrpc_primary_ack_latency_seconds", "Stop to ack of a checkpoint.", new HistogramConfiguration { Buckets = PauseBuckets });
    private readonly Gauge _harvest = Metrics.CreateGauge("mcgrpc_primary_last_harvest_seconds", "Dirty-set harvest of the last checkpoint.");
    private readonly Gauge _deviceState = Metrics.CreateGauge("mcgrpc_primary_last_device_state_seconds", "Device-state capture of the last checkpoint.");
    private readonly Gauge _stateGauge = Metrics.CreateGauge("mcgrpc_primary_state", "1 for the current state.", new GaugeConfiguration { LabelNames = ["state"] });
    private readonly RollingPercentiles _pauseMs = new();
    private readonly RollingPercentiles _ackMs = new();
    private readonly Lock _lock = new();
    private EpochRecord? _last;
    private EpochRecord? _lastAcked;
    private ulong _count;
    private ulong _totalSent;
    private ulong _totalRaw;
    private SyncProgressTracker? _sync;

    public void Epoch(EpochRecord record)
    {
        lock (_lock)
        {
            _last = record;
            _count++;
            _totalSent += (ulong)record.WireBytes;
            _totalRaw += (ulong)record.RawBytes;
        }

        _pauseMs.Add(record.PauseMs);
        _checkpoints.Inc();
        _dirtyPages.Inc(record.DirtyPages);
        _rawBytes.Inc(record.RawBytes);
        _sentBytes.Inc(record.WireBytes);
        _deviceStateBytes.Inc(record.DeviceStateBytes);
        _pause.Observe(record.PauseMs / 1000);
        _harvest.Set(record.HarvestMs / 1000);
        _deviceState.Set(record.DeviceStateMs / 1000);
    }

    public void Acked(EpochRecord record)
    {
        lock (_lock)
        {
            _lastAcked = record;
        }

        _ackMs.Add(record.AckLatencyMs);
        _ackLatency.Observe(record.AckLatencyMs / 1000);
        _acked.Inc();
    }

    public void SetState(PrimaryState state)
    {
        foreach (var value in Enum.GetValues<PrimaryState>())
        {
            _stateGauge.WithLabels(value.ToString().ToLowerInvariant()).Set(value == state ? 1 : 0);
        }
    }

    public void SetSync(SyncProgressTracker sync)
    {
        lock (_lock)
        {
            _sync = sync;
        }
    }

    public SyncProgress? SyncProgress()
    {
        SyncProgressTracker? sync;
        lock (_lock)
        {
            sync = _sync;
        }

        if (sync is null)
        {
            return null;
        }

        var s = sync.Snapshot();
        return new SyncProgress
        {
            BytesCopied = (ulong)s.BytesCopied,
            RamSize = (ulong)s.RamSize,
            Round = (uint)s.Round,
            RateMbps = s.RateMbps,
            EtaSeconds = s.EtaSeconds,
            RemainingDirtyPages = (ulong)s.RemainingDirtyPages,
        };
    }

    public CheckpointStats ToProto()
    {
        EpochRecord? last;
        EpochRecord? acked;
        ulong count, sent, raw;
        lock (_lock)
        {
            (last, acked, count, sent, raw) = (_last, _lastAcked, _count, _totalSent, _totalRaw);
        }

        var stats = new CheckpointStats
        {
            Checkpoints = count,
            TotalSentBytes = sent,
            TotalRawBytes = raw,
            PauseMs = ToProto(_pauseMs),
            AckLatencyMsPercentiles = ToProto(_ackMs),
        };
        if (last is not null)
        {
            stats.DowntimeMs = last.PauseMs;
            stats.DirtyLogMs = last.HarvestMs;
            stats.RamCopyMs = last.CopyMs;
            stats.CopyThroughputMbps = last.CopyMs > 0 ? last.DirtyPages * 4096.0 / (last.CopyMs * 1000) : 0;
            stats.DeviceStateMs = last.DeviceStateMs;
            stats.DirtyPages = (ulong)last.DirtyPages;
            stats.RawBytes = (ulong)last.RawBytes;
            stats.SentBytes = (ulong)last.WireBytes;
            stats.DeviceStateBytes = (ulong)last.DeviceStateBytes;
            stats.EpochIntervalMs = last.IntervalMs;
        }

        if (acked is not null)
        {
            stats.TransmitMs = acked.TransmitMs;
            stats.ThroughputMbps = acked.TransmitMs > 0 ? acked.WireBytes / (acked.TransmitMs * 1000) : 0;
            stats.AckLatencyMs = acked.AckLatencyMs;
        }

        return stats;
    }

    private static Percentiles ToProto(RollingPercentiles source)
    {
        var (p50, p99, max, _) = source.Snapshot();
        return new Percentiles { P50 = p50, P99 = p99, Max = max };
    }
}
