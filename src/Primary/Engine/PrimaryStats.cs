using McGrpc.Protos.Control;
using McGrpc.Shared.Stats;
using Microsoft.Extensions.Options;
using Prometheus;

namespace McGrpc.Primary.Engine;

/// <summary>
/// Per-checkpoint statistics for status and for the Prometheus endpoint, fed
/// by the engine. Thread-safe: written by the epoch loop and the ack path,
/// read by control calls and scrapes. Status shows the last epoch and rolling
/// percentiles; Prometheus gets counters and histograms of the same numbers
/// (rates and quantiles are computed by the scraper).
/// </summary>
internal sealed class PrimaryStats
{
    /// <summary>Guest pages are 4 KiB on every machine McGrpc protects (x86_64).</summary>
    private const long PageSize = 4096;

    private static readonly double[] PauseBuckets = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2];
    private static readonly double[] IntervalBuckets = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60];

    private readonly Counter _checkpoints = Metrics.CreateCounter("mcgrpc_primary_checkpoints_total", "Checkpoints taken (epochs committed).");
    private readonly Counter _acked = Metrics.CreateCounter("mcgrpc_primary_checkpoints_acked_total", "Checkpoints acked by the backup.");
    private readonly Counter _dirtyPages = Metrics.CreateCounter("mcgrpc_primary_dirty_pages_total", "Dirty guest pages sent.");
    private readonly Counter _rawBytes = Metrics.CreateCounter("mcgrpc_primary_raw_bytes_total", "Dirty page bytes before compression.");
    private readonly Counter _sentBytes = Metrics.CreateCounter("mcgrpc_primary_sent_bytes_total", "Bytes of replication frames sent (pages, device state, commits).");
    private readonly Counter _deviceStateBytes = Metrics.CreateCounter("mcgrpc_primary_device_state_bytes_total", "Device-state bytes sent.");
    private readonly Counter _ramCopyBytes = Metrics.CreateCounter("mcgrpc_primary_ram_copy_bytes_total", "Dirty page bytes copied into staging while the guest was stopped.");
    private readonly Counter _transmittedBytes = Metrics.CreateCounter("mcgrpc_primary_transmitted_bytes_total", "Bytes of acked checkpoints, counted with their transmit time (throughput = this rate / mcgrpc_primary_transmit_seconds_sum rate).");
    private readonly Histogram _pause = Metrics.CreateHistogram("mcgrpc_primary_pause_seconds", "Guest pause per checkpoint (stop..cont): the downtime the guest feels.", new HistogramConfiguration { Buckets = PauseBuckets });
    private readonly Histogram _ackLatency = Metrics.CreateHistogram("mcgrpc_primary_ack_latency_seconds", "Stop to ack of a checkpoint.", new HistogramConfiguration { Buckets = PauseBuckets });
    private readonly Histogram _dirtyLog = Metrics.CreateHistogram("mcgrpc_primary_dirty_log_seconds", "Dirty-set harvest (tracker scan) per checkpoint, inside the pause.", new HistogramConfiguration { Buckets = PauseBuckets });
    private readonly Histogram _ramCopy = Metrics.CreateHistogram("mcgrpc_primary_ram_copy_seconds", "Copy of dirty pages into staging per checkpoint, inside the pause.", new HistogramConfiguration { Buckets = PauseBuckets });
    private readonly Histogram _deviceState = Metrics.CreateHistogram("mcgrpc_primary_device_state_seconds", "Device-state capture per checkpoint, inside the pause.", new HistogramConfiguration { Buckets = PauseBuckets });
    private readonly Histogram _transmit = Metrics.CreateHistogram("mcgrpc_primary_transmit_seconds", "Time to write a checkpoint's frames to the replication stream.", new HistogramConfiguration { Buckets = PauseBuckets });
    private readonly Histogram _interval = Metrics.CreateHistogram("mcgrpc_primary_epoch_interval_seconds", "Actual time from one stop to the next (the checkpoint delay plus any wait for acks).", new HistogramConfiguration { Buckets = IntervalBuckets });
    private readonly Gauge _epoch = Metrics.CreateGauge("mcgrpc_primary_epoch", "Last committed epoch.");
    private readonly Gauge _lastAckedEpoch = Metrics.CreateGauge("mcgrpc_primary_last_acked_epoch", "Last epoch the backup acked; mcgrpc_primary_epoch minus this is what is in flight.");
    private readonly Gauge _delay = Metrics.CreateGauge("mcgrpc_primary_delay_seconds", "Configured checkpoint delay.");
    private readonly Gauge _capability = Metrics.CreateGauge("mcgrpc_primary_capability_enabled", "1 when the capability is on.", new GaugeConfiguration { LabelNames = ["capability"] });
    private readonly Gauge _stateGauge = Metrics.CreateGauge("mcgrpc_primary_state", "1 for the current state.", new GaugeConfiguration { LabelNames = ["state"] });
    private readonly Gauge _syncCopied = Metrics.CreateGauge("mcgrpc_primary_sync_copied_bytes", "Initial copy: bytes of guest RAM sent so far (pre-copy rounds included).");
    private readonly Gauge _syncRam = Metrics.CreateGauge("mcgrpc_primary_sync_ram_bytes", "Initial copy: guest RAM size.");
    private readonly Gauge _outputHeldPackets = Metrics.CreateGauge("mcgrpc_primary_output_held_packets", "Guest network packets held until the checkpoint that covers them is acked.");
    private readonly Gauge _outputHeldBytes = Metrics.CreateGauge("mcgrpc_primary_output_held_bytes", "Bytes of held guest network packets.");
    private readonly Gauge _outputReleasedPackets = Metrics.CreateGauge("mcgrpc_primary_output_released_packets", "Guest packets let out by the output buffer since protection started (restarts at 0 with each Migrate).");
    private readonly Gauge _outputDroppedPackets = Metrics.CreateGauge("mcgrpc_primary_output_dropped_packets", "Guest packets dropped at the output buffer's memory bound since protection started; never let out early.");
    private readonly RollingPercentiles _pauseMs = new();
    private readonly RollingPercentiles _ackMs = new();
    private readonly Lock _lock = new();
    private EpochRecord? _last;
    private EpochRecord? _lastAcked;
    private ulong _count;
    private ulong _ackedCount;
    private ulong _totalSent;
    private ulong _totalRaw;
    private SyncProgressTracker? _sync;

    public PrimaryStats(IOptions<PrimaryOptions> options)
    {
        var o = options.Value;
        SetDelay(o.DelayMs);
        SetCapability(PrimaryEngine.CapabilityMc, o.Target is not null);
        SetCapability(PrimaryEngine.CapabilityNetDisable, o.NetDisable);
        SetCapability(PrimaryEngine.CapabilityDiskDisable, o.DiskDisable);
        SetState(PrimaryState.Starting);

        // Progress of a long initial copy changes continuously; sample it when scraped.
        Metrics.DefaultRegistry.AddBeforeCollectCallback(SampleSync);
    }

    public void Epoch(EpochRecord record)
    {
        lock (_lock)
        {
            _last = record;
            _count++;
            _totalSent += (ulong)record.WireBytes;
            _totalRaw += (ulong)record.RawBytes;
        }

        _epoch.Set(record.Epoch);

        _pauseMs.Add(record.PauseMs);
        _checkpoints.Inc();
        _dirtyPages.Inc(record.DirtyPages);
        _rawBytes.Inc(record.RawBytes);
        _sentBytes.Inc(record.WireBytes);
        _deviceStateBytes.Inc(record.DeviceStateBytes);
        _pause.Observe(record.PauseMs / 1000);
        _dirtyLog.Observe(record.HarvestMs / 1000);
        _deviceState.Observe(record.DeviceStateMs / 1000);
        if (CopiedWhilePaused(record))
        {
            _ramCopy.Observe(record.CopyMs / 1000);
            _ramCopyBytes.Inc(record.DirtyPages * PageSize);
        }

        if (record.IntervalMs > 0)
        {
            _interval.Observe(record.IntervalMs / 1000);
        }
    }

    public void Acked(EpochRecord record)
    {
        lock (_lock)
        {
            _lastAcked = record;
            _ackedCount++;
        }

        _lastAckedEpoch.Set(record.Epoch);

        _ackMs.Add(record.AckLatencyMs);
        _ackLatency.Observe(record.AckLatencyMs / 1000);
        _acked.Inc();
        if (record.TransmitMs > 0)
        {
            _transmit.Observe(record.TransmitMs / 1000);
            _transmittedBytes.Inc(record.WireBytes);
        }
    }

    public void SetState(PrimaryState state)
    {
        foreach (var value in Enum.GetValues<PrimaryState>())
        {
            _stateGauge.WithLabels(value.ToString().ToLowerInvariant()).Set(value == state ? 1 : 0);
        }
    }

    public void SetDelay(int delayMs) => _delay.Set(delayMs / 1000.0);

    /// <summary>Where scrapes read the output buffer's numbers from (set by the engine).</summary>
    public void ObserveOutput(Func<Output.OutputBufferStats?> source)
        => Metrics.DefaultRegistry.AddBeforeCollectCallback(() =>
        {
            var stats = source() ?? default;
            _outputHeldPackets.Set(stats.HeldPackets);
            _outputHeldBytes.Set(stats.HeldBytes);
            _outputReleasedPackets.Set(stats.ReleasedPackets);
            _outputDroppedPackets.Set(stats.DroppedPackets);
        });

    public void SetCapability(string name, bool enabled) => _capability.WithLabels(name).Set(enabled ? 1 : 0);

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
        ulong count, ackedCount, sent, raw;
        lock (_lock)
        {
            (last, acked, count, ackedCount, sent, raw) = (_last, _lastAcked, _count, _ackedCount, _totalSent, _totalRaw);
        }

        var stats = new CheckpointStats
        {
            Checkpoints = count,
            AckedCheckpoints = ackedCount,
            TotalSentBytes = sent,
            TotalRawBytes = raw,
            PauseMs = ToProto(_pauseMs),
            AckLatencyMsPercentiles = ToProto(_ackMs),
        };
        if (last is not null)
        {
            stats.DowntimeMs = last.PauseMs;
            stats.StopMs = last.StopMs;
            stats.DirtyLogMs = last.HarvestMs;
            stats.RamCopyMs = last.CopyMs;
            stats.CopyThroughputMbps = CopiedWhilePaused(last) ? last.DirtyPages * PageSize / (last.CopyMs * 1000) : 0;
            stats.DeviceStateMs = last.DeviceStateMs;
            stats.ContMs = last.ContMs;
            stats.EncodeMs = last.EncodeMs;
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

    /// <summary>
    /// Trackers whose copy source stays stable until the next harvest (the
    /// compare tracker's shadow) copy nothing inside the pause: no copy
    /// throughput to speak of then.
    /// </summary>
    private static bool CopiedWhilePaused(EpochRecord record) => record.DirtyPages > 0 && record.CopyMs > 0;

    private void SampleSync()
    {
        if (SyncProgress() is { } sync)
        {
            _syncCopied.Set(sync.BytesCopied);
            _syncRam.Set(sync.RamSize);
        }
    }

    private static Percentiles ToProto(RollingPercentiles source)
    {
        var (p50, p99, max, _) = source.Snapshot();
        return new Percentiles { P50 = p50, P99 = p99, Max = max };
    }
}
