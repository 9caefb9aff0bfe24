using Grpc.Core;
using Grpc.Health.V1;
using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Control;

/// <summary>
/// Each control call's effect on a really protected guest, over a real
/// connection with the generated clients: status fields, WatchStatus, a delay
/// change in the epoch intervals, capability toggles, Cancel (the backup waits
/// and does not fail over), Migrate, and the metrics counters.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class ProtectedGuestControlTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);
    private readonly GuestChain _chain;

    public ProtectedGuestControlTests(GuestChain chain)
    {
        _chain = chain;
    }

    [Fact]
    public async Task Status_fills_every_field_while_protected()
    {
        await _chain.ProtectAsync();
        var primary = _chain.PrimaryControl;

        // Let a few epochs with dirty pages pass, then read both sides.
        var first = await primary.QueryStatusAsync(new QueryStatusRequest());
        PrimaryStatus status = first;
        await Wait.UntilAsync(
            async () =>
            {
                status = await primary.QueryStatusAsync(new QueryStatusRequest());
                return status.Stats.AckedCheckpoints >= first.Stats.AckedCheckpoints + 5 && status.Stats.DirtyPages > 0;
            },
            Generous,
            () => $"epochs did not go on: {status}\n{_chain.Diagnostics()}");

        Assert.Equal("protected", status.State);
        Assert.NotEmpty(status.StateReason);
        Assert.True(status.StateSinceUnixMs > 0);
        Assert.Equal(GuestChain.VmName, status.VmId);
        Assert.Equal($"tcp:127.0.0.1:{_chain.ReplicationPort}", status.Target);
        Assert.True(status.Epoch > 0 && status.LastAckedEpoch > 0 && status.LastAckedEpoch <= status.Epoch, $"epochs: {status}");
        Assert.True(status.EpochsInFlight <= 4);
        Assert.Equal(100u, status.DelayMs);
        Assert.NotEmpty(status.Tracker);
        Assert.NotEmpty(status.TrackerReason);
        Assert.Equal("none", status.OutputBuffer);
        Assert.Equal(["mc=True", "mc-net-disable=False", "mc-disk-disable=False"], status.Capabilities.Select(c => $"{c.Name}={c.Enabled}"));
        Assert.Equal(0ul, status.HeldOutputPackets);

        var s = status.Stats;
        Assert.True(s.Checkpoints > 0 && s.AckedCheckpoints > 0 && s.AckedCheckpoints <= s.Checkpoints, $"counts: {s}");
        Assert.True(s.DowntimeMs > 0, $"downtime: {s}");
        Assert.True(s.StopMs > 0 && s.ContMs > 0 && s.DirtyLogMs > 0 && s.DeviceStateMs > 0 && s.EncodeMs > 0, $"pause parts: {s}");
        Assert.True(s.DowntimeMs >= s.DirtyLogMs && s.DowntimeMs >= s.DeviceStateMs, $"parts longer than the pause: {s}");
        if (status.Tracker != "compare")
        {
            // The compare tracker's shadow is its copy; the others copy dirty pages while paused.
            Assert.True(s.RamCopyMs > 0 && s.CopyThroughputMbps > 0, $"ram copy: {s}");
        }

        Assert.True(s.TransmitMs > 0 && s.ThroughputMbps > 0, $"transmit: {s}");
        Assert.True(s.DirtyPages > 0 && s.RawBytes > 0 && s.SentBytes > 0 && s.DeviceStateBytes > 0, $"sizes: {s}");
        Assert.True(s.AckLatencyMs > 0, $"ack latency: {s}");
        Assert.True(s.PauseMs.P50 > 0 && s.PauseMs.P99 >= s.PauseMs.P50 && s.PauseMs.Max >= s.PauseMs.P99, $"pause percentiles: {s.PauseMs}");
        Assert.True(s.AckLatencyMsPercentiles.P50 > 0 && s.AckLatencyMsPercentiles.P99 >= s.AckLatencyMsPercentiles.P50, $"ack percentiles: {s.AckLatencyMsPercentiles}");
        Assert.True(s.TotalSentBytes >= s.SentBytes && s.TotalRawBytes >= s.RawBytes && s.TotalSentBytes > 0);
        Assert.True(s.EpochIntervalMs >= 99, $"interval: {s}");
        Assert.NotNull(status.Sync);
        Assert.True(status.Sync.RamSize == 256ul * 1024 * 1024 && status.Sync.BytesCopied >= status.Sync.RamSize, $"initial copy: {status.Sync}");

        var backup = await _chain.BackupControl.QueryStatusAsync(new QueryStatusRequest());
        Assert.Equal("protected", backup.State);
        Assert.NotEmpty(backup.StateReason);
        Assert.Equal(GuestChain.VmName, backup.VmId);
        Assert.Equal("auto", backup.FailoverPolicy);
        Assert.True(backup.LastAppliedEpoch > 0 && backup.EpochsApplied > 0, $"backup epochs: {backup}");
        Assert.True(backup.CanFailover, backup.CannotFailoverReason);
        Assert.Empty(backup.CannotFailoverReason);
        Assert.True(backup.LagMs > 0 && backup.LagMs < 20000, $"lag: {backup.LagMs}");
        Assert.True(backup.ApplyMs.P50 > 0 && backup.ApplyMs.P99 >= backup.ApplyMs.P50, $"apply: {backup.ApplyMs}");
        Assert.NotEmpty(backup.PrimarySession);
        Assert.True(backup.StateSinceUnixMs > 0);
        Assert.Equal(0ul, backup.FramesRejected);
        Assert.Equal(status.ReplicationTls, backup.ReplicationTls);
        Assert.NotNull(backup.Sync);
        Assert.Equal(256ul * 1024 * 1024, backup.Sync.RamSize);

        foreach (var port in new[] { _chain.PrimaryControlPort, _chain.BackupControlPort })
        {
            using var channel = ControlChannels.Tcp(port);
            var health = new Health.HealthClient(channel);
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest { Service = "mcgrpc.protection" })).Status);
        }
    }

    [Fact]
    public async Task WatchStatus_streams_epochs_now_and_config_changes_at_once()
    {
        await _chain.ProtectAsync();
        var primary = _chain.PrimaryControl;

        // No rate limit: a message per epoch (and per ack).
        using (var watch = primary.WatchStatus(new WatchStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(60)))
        {
            var epochs = new HashSet<ulong>();
            var started = DateTime.UtcNow;
            Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal("protected", watch.ResponseStream.Current.State);
            while (epochs.Count < 10)
            {
                Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));
                epochs.Add(watch.ResponseStream.Current.Epoch);
            }

            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(30), "ten epochs took more than 30 s at a 100 ms delay");
        }

        // Rate-limited to one epoch message per 10 s: a delay change still goes out at once.
        using (var watch = primary.WatchStatus(new WatchStatusRequest { MinIntervalMs = 10000 }, deadline: DateTime.UtcNow.AddSeconds(60)))
        {
            Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));
            var first = watch.ResponseStream.Current;
            await primary.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = 150 });
            using var soon = new CancellationTokenSource(TimeSpan.FromSeconds(8));
            Assert.True(await watch.ResponseStream.MoveNext(soon.Token));
            var changed = watch.ResponseStream.Current;
            Assert.Equal(150u, changed.DelayMs);
            Assert.True(changed.Epoch >= first.Epoch);

            // Epochs went on meanwhile, but were not streamed one by one.
            using var quiet = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            var extra = 0;
            try
            {
                while (await watch.ResponseStream.MoveNext(quiet.Token))
                {
                    extra++;
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
            {
            }

            Assert.True(extra <= 1, $"{extra} messages in 3 s with min_interval_ms 10000");
        }
    }

    [Fact]
    public async Task A_delay_change_shows_in_the_epoch_intervals_at_the_next_epoch()
    {
        await _chain.ProtectAsync();
        var primary = _chain.PrimaryControl;

        // A checkpoint already under way when the delay changes keeps the old interval: skip one.
        var status = await primary.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = 1000 });
        Assert.Equal(1000u, status.DelayMs);
        var slow = await IntervalsAsync(status.Stats.Checkpoints + 2, 3);
        Assert.All(slow, ms => Assert.True(ms >= 990, $"intervals at delay 1000: {string.Join(", ", slow)}"));

        // Lengthened during the wait for the next stop: that wait grows at once (no stop within 1000 ms)...
        status = await primary.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = 30000 });
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var waiting = await primary.QueryStatusAsync(new QueryStatusRequest());
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(waiting.Stats.Checkpoints, (await primary.QueryStatusAsync(new QueryStatusRequest())).Stats.Checkpoints);

        // ... and shortened during it, the next stop comes at once, not 30 s after the last one.
        var changedAt = DateTime.UtcNow;
        status = await primary.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = 100 });
        await Wait.UntilAsync(
            async () => (await primary.QueryStatusAsync(new QueryStatusRequest())).Stats.Checkpoints > waiting.Stats.Checkpoints,
            TimeSpan.FromSeconds(20),
            () => $"no checkpoint after lowering the delay.\n{_chain.Diagnostics()}");
        Assert.True(DateTime.UtcNow - changedAt < TimeSpan.FromSeconds(10), $"the next checkpoint came {(DateTime.UtcNow - changedAt).TotalSeconds:F1} s after lowering the delay from 30 s");

        var fast = await IntervalsAsync(status.Stats.Checkpoints + 2, 7);
        Assert.All(fast, ms => Assert.True(ms >= 99, $"intervals at delay 100: {string.Join(", ", fast)}"));
        var median = fast.Order().ElementAt(fast.Count / 2);
        Assert.True(median < 600, $"intervals at delay 100: {string.Join(", ", fast)}");
        Assert.Equal("protected", (await _chain.BackupControl.QueryStatusAsync(new QueryStatusRequest())).State);
    }

    [Fact]
    public async Task Capability_toggles_show_in_status_and_in_behaviour()
    {
        await _chain.ProtectAsync();
        var primary = _chain.PrimaryControl;

        var capabilities = await primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc-net-disable", Enabled = true });
        Assert.Contains(capabilities.Capabilities_, c => c.Name == "mc-net-disable" && c.Enabled);
        var status = await primary.QueryStatusAsync(new QueryStatusRequest());
        Assert.Equal("none (mc-net-disable)", status.OutputBuffer);
        Assert.Equal("protected", status.State);
        await EpochsGoOnAsync(status.Epoch);

        capabilities = await primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc-net-disable", Enabled = false });
        Assert.Contains(capabilities.Capabilities_, c => c.Name == "mc-net-disable" && !c.Enabled);
        status = await primary.QueryStatusAsync(new QueryStatusRequest());
        Assert.Equal("none", status.OutputBuffer);

        // mc cannot go off under a running protection; it stays on and epochs go on.
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc", Enabled = false }));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        status = await primary.QueryStatusAsync(new QueryStatusRequest());
        Assert.Contains(status.Capabilities, c => c.Name == "mc" && c.Enabled);
        Assert.Equal("protected", status.State);
        await EpochsGoOnAsync(status.Epoch);

        // No writable disk here: mc-disk-disable may change either way while protecting.
        await primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc-disk-disable", Enabled = true });
        Assert.Contains((await primary.GetCapabilitiesAsync(new GetCapabilitiesRequest())).Capabilities_, c => c.Name == "mc-disk-disable" && c.Enabled);
        await primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc-disk-disable", Enabled = false });
        Assert.Contains((await primary.GetCapabilitiesAsync(new GetCapabilitiesRequest())).Capabilities_, c => c.Name == "mc-disk-disable" && !c.Enabled);
    }

    [Fact]
    public async Task Cancel_ends_protection_the_backup_waits_and_Migrate_protects_again()
    {
        // The auto policy: a backup that took the goodbye for a death would fail over here.
        await _chain.ProtectAsync();
        var primary = _chain.PrimaryControl;
        using var watch = primary.WatchStatus(new WatchStatusRequest { MinIntervalMs = 60000 }, deadline: DateTime.UtcNow.AddSeconds(120));
        Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));

        var cancelled = await primary.CancelAsync(new CancelRequest());
        Assert.Equal("idle", cancelled.State);
        Assert.Equal("protection cancelled by the operator", cancelled.StateReason);
        Assert.Equal(0u, cancelled.EpochsInFlight);

        // The watcher hears of it at once, rate limit or not.
        using (var soon = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            while (watch.ResponseStream.Current.State != "idle")
            {
                Assert.True(await watch.ResponseStream.MoveNext(soon.Token));
            }
        }

        var backup = await _chain.BackupControl.QueryStatusAsync(new QueryStatusRequest());
        Assert.Equal("waiting", backup.State);
        Assert.Equal("the primary ended protection: protection cancelled by the operator", backup.StateReason);
        Assert.False(backup.CanFailover);

        // Well past the heartbeat timeout: still no failover, the backup QEMU still waits, the guest runs on at the primary.
        var counter = _chain.Primary.CounterValues()[^1];
        await Task.Delay(TimeSpan.FromSeconds(4));
        backup = await _chain.BackupControl.QueryStatusAsync(new QueryStatusRequest());
        Assert.Equal("waiting", backup.State);
        Assert.Equal(0ul, backup.FailoverEpoch);
        var backupQmp = await _chain.Backup!.QmpAsync();
        Assert.Equal("inmigrate", (await backupQmp.QueryStatusAsync(CancellationToken.None)).Status);
        Assert.True(_chain.Primary.CounterValues()[^1] > counter, "the guest stopped after Cancel");
        var idle = await primary.QueryStatusAsync(new QueryStatusRequest());
        Assert.Equal(cancelled.Epoch, idle.Epoch);

        var again = await Assert.ThrowsAsync<RpcException>(async () => await primary.CancelAsync(new CancelRequest()));
        Assert.Equal(StatusCode.FailedPrecondition, again.StatusCode);

        // Capability mc gates Migrate, as migrate_set_capability mc did.
        await primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc", Enabled = false });
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await primary.MigrateAsync(new MigrateRequest { Target = $"tcp:127.0.0.1:{_chain.ReplicationPort}" }));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Equal("idle", (await primary.QueryStatusAsync(new QueryStatusRequest())).State);

        await primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc", Enabled = true });
        var started = await primary.MigrateAsync(new MigrateRequest { Target = $"tcp:127.0.0.1:{_chain.ReplicationPort}" });
        Assert.Equal("connecting", started.State);
        await _chain.WaitProtectedAsync(TimeSpan.FromSeconds(120));
        var resumed = await _chain.BackupControl.QueryStatusAsync(new QueryStatusRequest());
        Assert.True(resumed.LastAppliedEpoch > backup.LastAppliedEpoch, $"the backup holds no newer checkpoint: {resumed}");
        Assert.True(resumed.CanFailover, resumed.CannotFailoverReason);
    }

    [Fact]
    public async Task Metrics_counters_grow_with_epochs()
    {
        var primaryMetrics = FreePort.Next();
        var backupMetrics = FreePort.Next();
        await _chain.ProtectAsync(["--metrics", $"127.0.0.1:{primaryMetrics}"], ["--metrics", $"127.0.0.1:{backupMetrics}"]);

        var p1 = await PrometheusScrape.GetAsync(primaryMetrics);
        var b1 = await PrometheusScrape.GetAsync(backupMetrics);
        var status = await _chain.PrimaryControl.QueryStatusAsync(new QueryStatusRequest());
        await Wait.UntilAsync(
            async () => (await _chain.PrimaryControl.QueryStatusAsync(new QueryStatusRequest())).LastAckedEpoch >= status.Epoch + 5,
            Generous,
            () => $"epochs did not go on.\n{_chain.Diagnostics()}");
        var p2 = await PrometheusScrape.GetAsync(primaryMetrics);
        var b2 = await PrometheusScrape.GetAsync(backupMetrics);

        Assert.Equal(1, p2["mcgrpc_primary_state{state=\"protected\"}"]);
        Assert.Equal(0.1, p2["mcgrpc_primary_delay_seconds"]);
        Assert.Equal(1, p2["mcgrpc_primary_capability_enabled{capability=\"mc\"}"]);
        Assert.Equal(0, p2["mcgrpc_primary_output_held_packets"]); // this guest has no NIC
        foreach (var counter in new[]
        {
            "mcgrpc_primary_checkpoints_total", "mcgrpc_primary_checkpoints_acked_total", "mcgrpc_primary_sent_bytes_total",
            "mcgrpc_primary_device_state_bytes_total", "mcgrpc_primary_pause_seconds_count",
            "mcgrpc_primary_ack_latency_seconds_count", "mcgrpc_primary_dirty_log_seconds_count", "mcgrpc_primary_device_state_seconds_count",
            "mcgrpc_primary_transmit_seconds_count", "mcgrpc_primary_epoch_interval_seconds_count", "mcgrpc_primary_epoch", "mcgrpc_primary_last_acked_epoch",
        })
        {
            Assert.True(p2[counter] >= p1[counter] + 5, $"{counter}: {p1[counter]} -> {p2[counter]}");
        }

        foreach (var sum in new[] { "mcgrpc_primary_pause_seconds_sum", "mcgrpc_primary_ack_latency_seconds_sum", "mcgrpc_primary_transmit_seconds_sum", "mcgrpc_primary_transmitted_bytes_total" })
        {
            Assert.True(p2[sum] > p1[sum], $"{sum}: {p1[sum]} -> {p2[sum]}");
        }

        Assert.True(p2["mcgrpc_primary_sync_copied_bytes"] >= p2["mcgrpc_primary_sync_ram_bytes"]);
        Assert.Equal(1, b2["mcgrpc_backup_state{state=\"protected\"}"]);
        foreach (var counter in new[] { "mcgrpc_backup_epochs_applied_total", "mcgrpc_backup_apply_seconds_count", "mcgrpc_backup_last_applied_epoch" })
        {
            Assert.True(b2[counter] >= b1[counter] + 5, $"{counter}: {b1[counter]} -> {b2[counter]}");
        }

        Assert.True(b2["mcgrpc_backup_last_checkpoint_stop_timestamp_seconds"] > b1["mcgrpc_backup_last_checkpoint_stop_timestamp_seconds"]);
        Assert.True(b2["mcgrpc_backup_last_applied_epoch"] >= p1["mcgrpc_primary_last_acked_epoch"]);
    }

    /// <summary>
    /// stats.epoch_interval_ms of <paramref name="count"/> checkpoints numbered (by
    /// stats.checkpoints) from <paramref name="fromCheckpoint"/> on, as WatchStatus reports them.
    /// WatchStatus coalesces: under load a checkpoint may be missed, so any <paramref name="count"/> of them count.
    /// </summary>
    private async Task<List<double>> IntervalsAsync(ulong fromCheckpoint, int count)
    {
        using var watch = _chain.PrimaryControl.WatchStatus(new WatchStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(90));
        var seen = new SortedDictionary<ulong, double>();
        while (seen.Count < count)
        {
            Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None), "WatchStatus ended");
            var stats = watch.ResponseStream.Current.Stats;
            if (stats.Checkpoints >= fromCheckpoint)
            {
                seen[stats.Checkpoints] = stats.EpochIntervalMs;
            }
        }

        return [.. seen.Values];
    }

    private async Task EpochsGoOnAsync(ulong after)
        => await Wait.UntilAsync(
            async () => (await _chain.PrimaryControl.QueryStatusAsync(new QueryStatusRequest())).LastAckedEpoch > after + 2,
            Generous,
            () => $"epochs stopped.\n{_chain.Diagnostics()}");
}

