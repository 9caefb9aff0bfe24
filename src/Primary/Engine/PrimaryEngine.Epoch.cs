using System.Diagnostics;
using Google.Protobuf;
using McGrpc.Primary.Checkpoint;
using McGrpc.Primary.Replication;
using McGrpc.Primary.Tracking;
using McGrpc.Protos.Replication;
using McGrpc.Shared;
using McGrpc.Shared.Frames;
using McGrpc.Shared.Stats;

namespace McGrpc.Primary.Engine;

internal sealed partial class PrimaryEngine
{
    /// <summary>Bounds stop..cont so a hung QEMU cannot keep the guest paused for the default command timeout.</summary>
    private static readonly TimeSpan PauseBudget = TimeSpan.FromSeconds(10);

    private PageChunkEncoder? _encoder;
    private PageStaging? _staging;

    /// <summary>
    /// One checkpoint: stop, harvest, device state, cont (the pause), then
    /// encode and queue the frames while the guest runs. Returns false when the
    /// VM was not running (nothing to checkpoint).
    /// </summary>
    private async Task<bool> RunEpochAsync(ReplicationLink link, EpochAccumulator epoch, CancellationToken cancellationToken)
    {
        var qmp = _qmp!;
        var tracker = _tracker!;
        _encoder ??= new PageChunkEncoder(_ram!.PageSize);
        var status = await qmp.QueryStatusAsync(cancellationToken).ConfigureAwait(false);
        if (!status.Running)
        {
            // Paused by someone else (operator, I/O error): nothing runs, nothing to save,
            // and our "cont" would resume a VM that someone meant to keep paused.
            PrimaryLog.SkippedNotRunning(_logger, status.Status);
            await Task.Delay(_delayMs, cancellationToken).ConfigureAwait(false);
            return false;
        }

        var previousStop = _lastStopTimestamp;
        var stopUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var t0 = Stopwatch.GetTimestamp();
        // From here to cont the guest is paused: no caller cancellation, only a budget.
        using var pause = new CancellationTokenSource(PauseBudget);
        await qmp.StopAsync(pause.Token).ConfigureAwait(false);
        var t1 = Stopwatch.GetTimestamp();
        long t2, t3, t4, t5, t6;
        DeviceStateBlob blob;
        byte[]? ramDigest = null;
        var resumed = false;
        try
        {
            // QEMU serialises devices on its migration thread while we harvest RAM.
            var capture = _deviceState!.CaptureAsync(pause.Token);
            _runs.Clear();
            tracker.Harvest(_runs);
            t2 = Stopwatch.GetTimestamp();
            if (!tracker.CopySourceStableUntilHarvest)
            {
                _staging ??= new PageStaging(_ram!.Size, _ram.PageSize);
                _staging.CopyIn(_runs, tracker.CopySource);
            }

            t3 = Stopwatch.GetTimestamp();
            if (_options.DigestMode)
            {
                ramDigest = RamDigest.Compute(_ram!.Memory, _ram.Size);
            }

            t4 = Stopwatch.GetTimestamp();
            blob = await capture.ConfigureAwait(false);
            t5 = Stopwatch.GetTimestamp();
            lock (_lock)
            {
                _output?.Barrier(epoch.Epoch);
                _nextEpoch = epoch.Epoch + 1;
                _lastStopTimestamp = t0;
            }

            await qmp.ContAsync(pause.Token).ConfigureAwait(false);
            resumed = true;
            t6 = Stopwatch.GetTimestamp();
        }
        finally
        {
            if (!resumed)
            {
                await ResumeAfterFailedEpochAsync(epoch.Epoch).ConfigureAwait(false);
            }
        }

        var record = new EpochRecord
        {
            Epoch = epoch.Epoch,
            Full = epoch.Full,
            StoppedAt = t0,
            IntervalMs = previousStop == 0 ? 0 : Ms(previousStop, t0),
            StopMs = Ms(t0, t1),
            HarvestMs = Ms(t1, t2),
            CopyMs = tracker.CopySourceStableUntilHarvest ? 0 : Ms(t2, t3),
            DigestMs = Ms(t3, t4),
            DeviceStateMs = blob.CaptureMs,
            ContMs = Ms(t5, t6),
            PauseMs = Ms(t0, t6),
            DirtyPages = _runs.PageCount,
            DeviceStateBytes = blob.Length,
        };

        var frames = new EpochFrames(epoch.Epoch, epoch.Full);
        var encodeStart = Stopwatch.GetTimestamp();
        _encoder.Begin(frames, epoch.Digest);
        if (tracker.CopySourceStableUntilHarvest)
        {
            foreach (var range in _runs.Ranges)
            {
                _encoder.AddPages(range.FirstPage, range.PageCount, tracker.CopySource);
            }
        }
        else
        {
            _staging!.Encode(_runs, _encoder);
        }

        _encoder.Flush();
        epoch.Add(frames);
        AddDeviceState(frames, epoch.Epoch, blob);
        frames.AddCommit(epoch.BuildCommit(blob.Length, ramDigest, stopUnixMs));
        record.EncodeMs = Ms(encodeStart, Stopwatch.GetTimestamp());
        record.RawBytes = frames.RawBytes;
        record.WireBytes = frames.WireBytes;

        lock (_lock)
        {
            _window.Add(new EpochWindow.Entry(record, epoch.Full ? null : frames));
        }

        _stats.Epoch(record);
        PrimaryLog.EpochDone(_logger, record.Epoch, record.PauseMs, record.HarvestMs, record.DeviceStateMs, record.DirtyPages, record.WireBytes);
        await link.EnqueueAsync(new OutboundBatch(frames, DisposeAfterSend: epoch.Full, Sent: ms => record.TransmitMs = ms), cancellationToken).ConfigureAwait(false);
        Changed?.Invoke();
        return true;
    }

    /// <summary>Whatever went wrong inside the pause, the guest must run again.</summary>
    private async Task ResumeAfterFailedEpochAsync(ulong epoch)
    {
        PrimaryLog.EpochFailedResuming(_logger, epoch);
        using var budget = new CancellationTokenSource(PauseBudget);
        try
        {
            var status = await _qmp!.QueryStatusAsync(budget.Token).ConfigureAwait(false);
            if (status.Status is "finish-migrate" or "paused" or "postmigrate")
            {
                if (status.Status == "finish-migrate")
                {
                    await _qmp.ExecuteAsync("migrate_cancel", null, budget.Token).ConfigureAwait(false);
                }

                await _qmp.ContAsync(budget.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is McGrpcException or OperationCanceledException)
        {
            PrimaryLog.ResumeFailed(_logger, epoch, e.Message);
        }
    }

    private static void AddDeviceState(EpochFrames frames, ulong epoch, DeviceStateBlob blob)
    {
        frames.Own(blob.Buffer);
        frames.DeviceStateBytes = blob.Length;
        for (var offset = 0; offset < blob.Length; offset += FrameLimits.DeviceStateChunkBytes)
        {
            var length = Math.Min(FrameLimits.DeviceStateChunkBytes, blob.Length - offset);
            frames.Add(new PrimaryFrame
            {
                DeviceState = new DeviceStateChunk
                {
                    Epoch = epoch,
                    Offset = (ulong)offset,
                    Data = UnsafeByteOperations.UnsafeWrap(blob.Data.Slice(offset, length)),
                },
            });
        }
    }

    /// <summary>
    /// The initial full copy: all RAM while the guest runs, pre-copy rounds of
    /// what it wrote meanwhile until that is small, then a normal stop that
    /// completes the full epoch. The backup writes a full epoch straight into
    /// RAM (it has nothing to protect yet), so its batches are not kept for resending.
    /// </summary>
    private async Task FullSyncAsync(ReplicationLink link, ulong epochNumber, CancellationToken cancellationToken)
    {
        var tracker = _tracker!;
        var ram = _ram!;
        _encoder ??= new PageChunkEncoder(ram.PageSize);
        var epoch = new EpochAccumulator(epochNumber, full: true);
        var progress = new SyncProgressTracker(ram.Size, ram.PageSize);
        _stats.SetSync(progress);
        SetState(PrimaryState.Syncing, $"initial copy of {ram.Size / (1024 * 1024)} MiB (epoch {epochNumber})");
        if (_output is not null && !_netDisable)
        {
            await _output.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        tracker.Start();
        var batch = StartBatch(epoch);
        const long SlicePages = 4096;
        for (long page = 0; page < ram.PageCount; page += SlicePages)
        {
            var count = Math.Min(SlicePages, ram.PageCount - page);
            _encoder.AddPages(page, count, tracker.CopySource);
            progress.Copied(count);
            if (batch.Frames.Count >= 8)
            {
                batch = await SendBatchAsync(link, epoch, batch, cancellationToken).ConfigureAwait(false);
                LogProgress(progress);
            }
        }

        await SendBatchAsync(link, epoch, batch, cancellationToken).ConfigureAwait(false);
        var previous = long.MaxValue;
        for (var round = 1; round <= _options.PrecopyMaxRounds; round++)
        {
            _runs.Clear();
            if (tracker.HarvestExactWhileRunning)
            {
                tracker.Harvest(_runs);
            }
            else
            {
                await HarvestInBriefStopAsync(tracker, epoch.Epoch, cancellationToken).ConfigureAwait(false);
            }

            progress.NextRound(round, _runs.PageCount);
            batch = StartBatch(epoch);
            for (var i = 0; i < _runs.RangeCount; i++)
            {
                var range = _runs.Ranges[i];
                _encoder.AddPages(range.FirstPage, range.PageCount, tracker.CopySource);
                if (batch.Frames.Count >= 8)
                {
                    batch = await SendBatchAsync(link, epoch, batch, cancellationToken).ConfigureAwait(false);
                }
            }

            await SendBatchAsync(link, epoch, batch, cancellationToken).ConfigureAwait(false);
            progress.Copied(_runs.PageCount);
            LogProgress(progress);
            // Stop when what is left fits in one pause, or when rounds stop shrinking it.
            if (_runs.PageCount <= _options.PrecopyStopPages || (round >= 3 && _runs.PageCount >= previous))
            {
                break;
            }

            previous = _runs.PageCount;
        }

        while (!await RunEpochAsync(link, epoch, cancellationToken).ConfigureAwait(false))
        {
        }

        progress.Finished();
        PrimaryLog.FullCopySent(_logger, epochNumber, epoch.PageCount, epoch.WireBytes, progress.ElapsedSeconds);
    }

    /// <summary>
    /// A pre-copy harvest for trackers that are exact only while the guest is
    /// stopped: stop, harvest (well under a millisecond for uffd-wp), cont. The
    /// reported pages are read afterwards from live RAM; writes after the
    /// harvest are caught by the next one.
    /// </summary>
    private async Task HarvestInBriefStopAsync(IDirtyTracker tracker, ulong epoch, CancellationToken cancellationToken)
    {
        var qmp = _qmp!;
        if (!(await qmp.QueryStatusAsync(cancellationToken).ConfigureAwait(false)).Running)
        {
            // Paused by someone else: nothing is being written; harvest as is.
            tracker.Harvest(_runs);
            return;
        }

        // The same pause rules as an epoch: a budget, and a failed harvest still resumes the guest.
        using var pause = new CancellationTokenSource(PauseBudget);
        await qmp.StopAsync(pause.Token).ConfigureAwait(false);
        var resumed = false;
        try
        {
            tracker.Harvest(_runs);
            await qmp.ContAsync(pause.Token).ConfigureAwait(false);
            resumed = true;
        }
        finally
        {
            if (!resumed)
            {
                await ResumeAfterFailedEpochAsync(epoch).ConfigureAwait(false);
            }
        }
    }

    private EpochFrames StartBatch(EpochAccumulator epoch)
    {
        var batch = new EpochFrames(epoch.Epoch, full: true);
        _encoder!.Begin(batch, epoch.Digest);
        return batch;
    }

    private async Task<EpochFrames> SendBatchAsync(ReplicationLink link, EpochAccumulator epoch, EpochFrames batch, CancellationToken cancellationToken)
    {
        _encoder!.Flush();
        epoch.Add(batch);
        if (batch.Frames.Count == 0)
        {
            batch.Dispose();
        }
        else
        {
            await link.EnqueueAsync(new OutboundBatch(batch, DisposeAfterSend: true), cancellationToken).ConfigureAwait(false);
        }

        return StartBatch(epoch);
    }

    private void LogProgress(SyncProgressTracker progress)
    {
        if (progress.ShouldLog())
        {
            var p = progress.Snapshot();
            PrimaryLog.SyncProgress(_logger, p.BytesCopied / (1024 * 1024), p.RamSize / (1024 * 1024), p.Round, p.RateMbps, p.EtaSeconds);
            Changed?.Invoke();
        }
    }
}
