using System.Diagnostics;
using System.Globalization;
using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Bench;

/// <summary>
/// Kill after kill on one booted guest (the chain): protect it, kill -9 the
/// primary QEMU and mc-primary, time the backup taking over, and let the
/// backup VM, now running the guest, be the next primary with a fresh
/// incoming backup. The guest prints a counter line every 10 ms, so its first
/// line on the backup tells the bench when it runs again.
/// </summary>
internal static class FailoverPhase
{
    private const int CounterIntervalMs = 10;

    public static async Task RunAsync(ReportSettings settings, ReportData report, CancellationToken cancellationToken)
    {
        var options = new TestVmOptions
        {
            Name = "benchfailover",
            MemoryMiB = settings.MemoryMiB,
            Run = "counter",
            ExtraAppend = $"mc.counter.interval_ms={CounterIntervalMs} mc.loglevel=1",
        };
        report.FailoverGuest = string.Create(CultureInfo.InvariantCulture, $"{settings.MemoryMiB} MiB, 1 vCPU, no NIC; workload counter (a line every {CounterIntervalMs} ms); delay {settings.FailoverDelay} ms; mc-backup defaults (policy auto)");
        Progress.Say($"failover: booting the guest ({report.FailoverGuest})");
        var guest = await TestVm.StartAsync(options);
        try
        {
            await guest.WaitForSerialAsync(l => l.Contains("GUEST READY", StringComparison.Ordinal), TimeSpan.FromMinutes(5), "GUEST READY");
            // A few spare attempts: on a starved machine the backup can fail over before the kill (a missed heartbeat).
            for (var attempt = 1; report.Failovers.Count < settings.Kills && attempt <= settings.Kills + 3; attempt++)
            {
                var kill = report.Failovers.Count + 1;
                var (run, next) = await KillOnceAsync(kill, guest, settings.FailoverDelay, report, cancellationToken);
                if (run is not null)
                {
                    report.Failovers.Add(run);
                    Progress.Say(string.Create(
                        CultureInfo.InvariantCulture,
                        $"failover {kill}/{settings.Kills}: detection {run.DetectionMs:F0} ms, restore {run.RestoreMs:F0} ms, total {run.TotalMs:F0} ms, kill to running {run.KillToRunningMs:F0} ms"));
                }

                if (!ReferenceEquals(next, guest))
                {
                    await guest.DisposeAsync();
                    guest = next;
                }
            }
        }
        finally
        {
            await guest.DisposeAsync();
        }
    }

    /// <summary>One protected kill; null when the pair was not protected at the moment of the kill (then the next guest is whichever VM runs it).</summary>
    private static async Task<(FailoverRun? Run, TestVm Next)> KillOnceAsync(int index, TestVm guest, int delay, ReportData report, CancellationToken cancellationToken)
    {
        await using var pair = await BenchPair.StartAsync(guest, ["--delay", delay.ToString(CultureInfo.InvariantCulture)], []);
        await Wait.UntilAsync(
            async () => (await pair.BackupControl.QueryStatusAsync(new QueryStatusRequest(), cancellationToken: cancellationToken)).State == "protected",
            TimeSpan.FromSeconds(60),
            () => $"mc-backup never reported protected.\n{pair.BackupDaemon.Diagnostics()}",
            50);

        // Steady state: a second of checkpoints at the chosen delay.
        await Task.Delay(1000, cancellationToken);
        var backupSerial = new FileInfo(pair.Backup.SerialLog);
        double running;
        var before = await pair.BackupControl.QueryStatusAsync(new QueryStatusRequest(), cancellationToken: cancellationToken);
        if (before.State != "protected")
        {
            report.Problems.Add($"failover {index}: mc-backup was '{before.State}' ({before.StateReason}) before the kill; not counted, tried again.");
            if (before.State is "failed_over" or "failing_over")
            {
                // It took over by itself: that VM runs the guest now and carries the chain on.
                await Wait.UntilAsync(
                    async () => (await pair.BackupControl.QueryStatusAsync(new QueryStatusRequest(), cancellationToken: cancellationToken)).State == "failed_over",
                    TimeSpan.FromSeconds(30),
                    () => $"mc-backup never finished its own failover.\n{pair.BackupDaemon.Diagnostics()}");
                guest.Kill();
                return (null, pair.ReleaseBackup());
            }

            return (null, guest);
        }

        // kill -9 of the primary host: SIGKILL to mc-primary and its QEMU back to back, before
        // waiting for either. mc-primary first: given time, it notices QEMU's death and ends
        // protection with a goodbye, after which the backup (rightly) does not fail over.
        using (var daemonProcess = Process.GetProcessById(pair.PrimaryDaemon.Pid))
        using (var qemuProcess = Process.GetProcessById(guest.Pid))
        {
            var killedAt = Stopwatch.GetTimestamp();
            daemonProcess.Kill();
            qemuProcess.Kill();
            pair.PrimaryDaemon.Kill();
            guest.Kill();

            if (!await SerialOutputAsync(backupSerial, TimeSpan.FromSeconds(20)))
            {
                var stuck = await pair.BackupControl.QueryStatusAsync(new QueryStatusRequest(), cancellationToken: cancellationToken);
                report.Problems.Add($"failover {index}: no failover within 20 s of the kill (mc-backup: {stuck.State}: {stuck.StateReason}); not counted, resumed with a forced Failover to carry the chain on.");
                await pair.BackupControl.FailoverAsync(new FailoverRequest { Force = true }, cancellationToken: cancellationToken);
                if (!await SerialOutputAsync(backupSerial, TimeSpan.FromSeconds(20)))
                {
                    throw new TimeoutException($"The guest printed nothing on the backup after kill {index}, even after a forced failover.\n{pair.BackupDaemon.Diagnostics()}\n{pair.Backup.Diagnostics("backup")}");
                }

                return (null, pair.ReleaseBackup());
            }

            running = Stopwatch.GetElapsedTime(killedAt).TotalMilliseconds;
        }

        BackupStatus? status = null;
        await Wait.UntilAsync(
            async () => (status = await pair.BackupControl.QueryStatusAsync(new QueryStatusRequest(), cancellationToken: cancellationToken)).State == "failed_over",
            TimeSpan.FromSeconds(30),
            () => $"mc-backup never reported failed_over (last: {status?.State}: {status?.StateReason}).\n{pair.BackupDaemon.Diagnostics()}",
            20);
        var run = new FailoverRun(index, status!.FailoverEpoch, status.FailoverDetectionMs, status.FailoverRestoreMs, status.FailoverTotalMs, running);
        return (run, pair.ReleaseBackup());
    }

    /// <summary>Whether the backup guest's serial log gets its first byte within <paramref name="timeout"/> (polled every ms).</summary>
    private static async Task<bool> SerialOutputAsync(FileInfo serial, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            serial.Refresh();
            if (serial.Exists && serial.Length > 0)
            {
                return true;
            }

            await Task.Delay(1);
        }

        return false;
    }
}
