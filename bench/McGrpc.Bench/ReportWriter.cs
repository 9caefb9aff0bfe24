using System.Globalization;
using System.Text;
using McGrpc.Protos.Control;

namespace McGrpc.Bench;

/// <summary>
/// report.md from one run's <see cref="ReportData"/>: every number in it comes
/// from that data, every ratio divides two numbers of that run.
/// </summary>
internal static class ReportWriter
{
    public static string Write(ReportData report, IReadOnlyDictionary<string, string?> figures)
    {
        var text = new StringBuilder();
        Header(text, report);
        if (report.Settings.RunRate)
        {
            WorkRateSection(text, report, figures);
            PauseSection(text, report, figures);
            BytesSection(text, report);
        }

        if (report.Settings.RunFailover)
        {
            FailoverSection(text, report, figures);
        }

        if (report.Settings.RunRate)
        {
            LatencySection(text, report, figures);
        }

        if (report.Problems.Count > 0)
        {
            text.AppendLine("## Problems during the run");
            text.AppendLine();
            foreach (var problem in report.Problems)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"- {problem}");
            }

            text.AppendLine();
        }

        return text.ToString();
    }

    private static void Header(StringBuilder text, ReportData report)
    {
        var m = report.Machine;
        var s = report.Settings;
        text.AppendLine("# McGrpc benchmark: what protection costs the guest");
        text.AppendLine();
        text.AppendLine(Inv($"Measured on {m.Started:yyyy-MM-dd HH:mm} UTC by `{s.CommandLine}` in {report.WallTime.TotalMinutes:F1} minutes. Every number below was measured in this run; every ratio divides two numbers of this run. How to read them: [bench/README.md](../README.md)."));
        text.AppendLine();
        text.AppendLine("| machine | |");
        text.AppendLine("|---|---|");
        text.AppendLine(Inv($"| CPU | {m.CpuModel}, {m.Cores} cores |"));
        text.AppendLine(Inv($"| kernel | {m.Kernel} |"));
        text.AppendLine(Inv($"| QEMU | {m.QemuVersion} |"));
        text.AppendLine(Inv($"| accelerator | {report.Accelerator} |"));
        text.AppendLine(Inv($"| .NET | {m.DotnetVersion} |"));
        text.AppendLine(Inv($"| replication link | {report.Replication}, loopback TCP (both daemons and both QEMUs on this machine) |"));
        text.AppendLine(Inv($"| load average (1/5/15 min) at start, at end | {m.LoadAtStart}; {report.LoadAtEnd} |"));
        text.AppendLine();
        text.AppendLine("A load average above the core count means other work shared the cores with the guest and the daemons: compare cells of this run with each other, not with another machine's report.");
        text.AppendLine();
    }

    private static void WorkRateSection(StringBuilder text, ReportData report, IReadOnlyDictionary<string, string?> figures)
    {
        var s = report.Settings;
        text.AppendLine("## Guest work rate, unprotected vs protected");
        text.AppendLine();
        text.AppendLine(Inv($"Guest: {report.RateGuest}. Tracker: {string.Join(", ", report.Series.Select(x => x.Tracker).Where(t => t is not null).Distinct())}. Each cell waits {s.SettleSeconds} s, then counts the guest's `WORKRATE` lines for {s.CellSeconds} s (longer, up to 3x, until the guest printed 6 lines; the window column gives host seconds and guest seconds counted). The baselines are the same guest without daemons, measured before and after each series; a ratio divides by the mean of the two baselines around its series. mc-backup runs with `--failover-policy manual` here: a cost measurement must not end in a failover; everything else is the daemons' defaults."));
        text.AppendLine();
        text.AppendLine("| cell | window s (guest s) | work rate, wall clock (it/s) | **ratio** | work rate, guest clock (it/s) | ratio, guest clock | checkpoints/s | interval p50 (ms) | pause p50 (ms) | paused share | RTT p50 (ms) |");
        text.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
        RateCell? last = null;
        foreach (var series in report.Series)
        {
            if (series.Before is not null && !ReferenceEquals(series.Before, last))
            {
                text.AppendLine(BaselineRow(series.Before));
            }

            if (series.Unavailable is not null)
            {
                // mc-primary's own words decide which: an option this build refuses, or a pair that failed for another reason.
                var verdict = series.Unavailable.Contains("not available", StringComparison.OrdinalIgnoreCase) ? "not available in this build" : "could not be protected";
                text.AppendLine(Inv($"| {series.Title} | {verdict}: {Escape(series.Unavailable)} | | | | | | | | | |"));
                continue;
            }

            foreach (var cell in series.Cells)
            {
                var r = cell.Rate;
                text.AppendLine(Inv(
                    $"| {Label(cell)} | {Window(cell)} | {F(r?.WallClock, 0)} | **{F(r?.WallClock / series.BaselineWallClock, 2)}** | {F(r?.GuestClock, 0)} | {F(r?.GuestClock / series.BaselineGuestClock, 2)} | {F(cell.CheckpointsTaken / cell.WindowSeconds, 1)} | {F(Stats.P50(cell.Of(e => e.EpochIntervalMs)), 1)} | {F(Stats.P50(cell.Of(e => e.DowntimeMs)), 1)} | {Percent(cell.PausedShare)} | {F(cell.Latency?.P50, 1)} |"));
            }

            if (series.After is not null)
            {
                text.AppendLine(BaselineRow(series.After));
                last = series.After;
            }
        }

        text.AppendLine();
        foreach (var series in report.Series.Where(x => x.Unavailable is null))
        {
            text.AppendLine(Inv($"- {series.Title}: baselines {F(series.Before?.Rate?.WallClock, 0)} and {F(series.After?.Rate?.WallClock, 0)} it/s (drift after/before {F(series.Drift, 2)})."));
        }

        text.AppendLine();
        Figure(text, figures, "workrate", "Work rate ratio against the delay");
    }

    private static string BaselineRow(RateCell cell)
        => Inv($"| {cell.Label} | {Window(cell)} | {F(cell.Rate?.WallClock, 0)} | | {F(cell.Rate?.GuestClock, 0)} | | 0 | | | 0% | {F(cell.Latency?.P50, 1)} |");

    /// <summary>A cell whose pair lost protection during the window is flagged wherever it appears.</summary>
    private static string Label(RateCell cell) => cell.Disturbed is null ? cell.Label : $"{cell.Label} (lost protection: see problems)";

    private static string Window(RateCell cell) => Inv($"{cell.WindowSeconds:F0} ({cell.Rate?.PerSecond.Count ?? 0})");

    private static void PauseSection(StringBuilder text, ReportData report, IReadOnlyDictionary<string, string?> figures)
    {
        text.AppendLine("## Pause per checkpoint and its parts");
        text.AppendLine();
        text.AppendLine("Per epoch, from mc-primary's WatchStatus during each work-rate window (\"sampled\" of \"taken\": epochs the stream delivered of those the primary took). Parts are p50s, so they need not add up to the pause p50; \"rest\" is pause minus the other parts, per epoch. Percentiles are nearest-rank: with fewer than 100 epochs, p99 is the max.");
        text.AppendLine();
        text.AppendLine("| cell | epochs sampled/taken | pause p50 | pause p99 | pause max | stop | harvest | copy | device state | cont | rest | pause p50 / floor p50 |");
        text.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        var floor = report.Floor.Select(f => f.DowntimeMs).ToList();
        var floorP50 = Stats.P50(floor);
        foreach (var cell in report.Series.SelectMany(x => x.Cells))
        {
            var pause = cell.Of(e => e.DowntimeMs);
            var parts = string.Join(" | ", PauseBreakdown.Parts.Select(p => F(Stats.P50(cell.Of(e => p.Of(e))), 2)));
            text.AppendLine(Inv($"| {Label(cell)} | {cell.Epochs.Count}/{cell.CheckpointsTaken} | {F(Stats.P50(pause), 2)} | {F(Stats.P99(pause), 2)} | {F(Max(pause), 2)} | {parts} | {F(Stats.P50(pause) / floorP50, 1)}x |"));
        }

        text.AppendLine();
        text.AppendLine(Inv($"The floor: QEMU alone migrating the device state of the same guest (x-ignore-shared, to a socket the bench drains, no daemon), {report.Floor.Count} times, unprotected, before the first series. QEMU's `downtime` is whole milliseconds."));
        text.AppendLine();
        text.AppendLine("| floor | p50 | p99 | max |");
        text.AppendLine("|---|---|---|---|");
        FloorRow(text, "QEMU downtime (ms)", floor);
        FloorRow(text, "QEMU total-time (ms)", report.Floor.Select(f => f.TotalTimeMs).ToList());
        FloorRow(text, "bench: migrate command to cont done (ms)", report.Floor.Select(f => f.RoundTripMs).ToList());
        FloorRow(text, "device-state stream (KiB)", report.Floor.Select(f => f.StreamBytes / 1024.0).ToList());
        text.AppendLine();
        Figure(text, figures, "pause-cdf", "Pause distribution");
        Figure(text, figures, "pause-parts", "Pause parts");
    }

    private static void FloorRow(StringBuilder text, string name, List<double> values)
        => text.AppendLine(Inv($"| {name} | {F(Stats.P50(values), 1)} | {F(Stats.P99(values), 1)} | {F(Max(values), 1)} |"));

    private static void BytesSection(StringBuilder text, ReportData report)
    {
        text.AppendLine("## Bytes per checkpoint");
        text.AppendLine();
        text.AppendLine("Raw: dirty pages x 4 KiB before compression. Sent: replication frames on the wire (compressed pages, device state, commit). Means per sampled epoch.");
        text.AppendLine();
        text.AppendLine("| cell | dirty pages p50 | raw KiB | sent KiB | of which device state KiB | sent / raw | ack latency p50 (ms) |");
        text.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var cell in report.Series.SelectMany(x => x.Cells))
        {
            var raw = Stats.Mean(cell.Of(e => e.RawBytes)) / 1024;
            var sent = Stats.Mean(cell.Of(e => e.SentBytes)) / 1024;
            text.AppendLine(Inv(
                $"| {Label(cell)} | {F(Stats.P50(cell.Of(e => e.DirtyPages)), 0)} | {F(raw, 0)} | {F(sent, 0)} | {F(Stats.Mean(cell.Of(e => e.DeviceStateBytes)) / 1024, 0)} | {F(sent / raw, 3)} | {F(Stats.P50(cell.Of(AckLatency)), 1)} |"));
        }

        text.AppendLine();
    }

    private static double AckLatency(CheckpointStats s) => s.AckLatencyMs;

    private static void FailoverSection(StringBuilder text, ReportData report, IReadOnlyDictionary<string, string?> figures)
    {
        var runs = report.Failovers;
        text.AppendLine("## Failover");
        text.AppendLine();
        text.AppendLine(Inv($"Guest: {report.FailoverGuest}. Each kill: a fresh backup protects the guest, a second of checkpoints, then kill -9 of the primary QEMU and mc-primary; the backup VM that took over is the next kill's primary (one boot for all kills)."));
        text.AppendLine();
        if (runs.Count == 0)
        {
            text.AppendLine("No failover was measured (see the problems below).");
            text.AppendLine();
            return;
        }

        text.AppendLine("| | detection (ms) | restore (ms) | total, mc-backup (ms) | kill to running, bench (ms) |");
        text.AppendLine("|---|---|---|---|---|");
        SummaryRow(text, "p50", Stats.P50, runs);
        SummaryRow(text, "max", v => v.Count == 0 ? double.NaN : v.Max(), runs);
        SummaryRow(text, "min", v => v.Count == 0 ? double.NaN : v.Min(), runs);
        text.AppendLine();
        text.AppendLine("<details><summary>Each kill</summary>");
        text.AppendLine();
        text.AppendLine("| kill | resumed epoch | detection (ms) | restore (ms) | total (ms) | kill to running (ms) |");
        text.AppendLine("|---|---|---|---|---|---|");
        foreach (var run in runs)
        {
            text.AppendLine(Inv($"| {run.Index} | {run.Epoch} | {F(run.DetectionMs, 1)} | {F(run.RestoreMs, 1)} | {F(run.TotalMs, 1)} | {F(run.KillToRunningMs, 1)} |"));
        }

        text.AppendLine();
        text.AppendLine("</details>");
        text.AppendLine();
        Figure(text, figures, "failover", "Failover per kill");
    }

    private static void SummaryRow(StringBuilder text, string name, Func<List<double>, double> of, List<FailoverRun> runs)
        => text.AppendLine(Inv(
            $"| {name} of {runs.Count} | {F(of(runs.Select(r => r.DetectionMs).ToList()), 1)} | {F(of(runs.Select(r => r.RestoreMs).ToList()), 1)} | {F(of(runs.Select(r => r.TotalMs).ToList()), 1)} | {F(of(runs.Select(r => r.KillToRunningMs).ToList()), 1)} |"));

    private static void LatencySection(StringBuilder text, ReportData report, IReadOnlyDictionary<string, string?> figures)
    {
        text.AppendLine("## Network round trip to the guest");
        text.AppendLine();
        var cells = report.Series.SelectMany(x => new[] { x.Before }.Concat(x.Cells).Append(x.After)).OfType<RateCell>().Distinct().Where(c => c.Latency is not null).ToList();
        if (cells.Count == 0)
        {
            text.AppendLine(Inv($"Not measured in this run: {report.LatencyUnavailable ?? "no cell produced round trips"}."));
            text.AppendLine();
            return;
        }

        text.AppendLine(Inv($"Round trips to the guest's echo port (tcpserve) through the user-networking port forward on 127.0.0.1, right after each work-rate window with the same pair and delay, while `workrate` keeps running in the guest: {LatencyHook.Method(report.Settings.LatencyCount)}."));
        text.AppendLine();
        text.AppendLine("| cell | round trips | p50 (ms) | p99 (ms) | max (ms) |");
        text.AppendLine("|---|---|---|---|---|");
        foreach (var cell in cells)
        {
            var l = cell.Latency!;
            text.AppendLine(Inv($"| {Label(cell)} | {l.RttMs.Count} | {F(l.P50, 2)} | {F(l.P99, 2)} | {F(l.Max, 2)} |"));
        }

        text.AppendLine();
        Figure(text, figures, "latency", "Round trip against the delay");
    }

    private static void Figure(StringBuilder text, IReadOnlyDictionary<string, string?> figures, string key, string title)
    {
        if (figures.TryGetValue(key, out var file) && file is not null)
        {
            text.AppendLine(Inv($"![{title}]({file})"));
            text.AppendLine();
        }
    }

    private static double Max(List<double> values) => values.Count == 0 ? double.NaN : values.Max();

    private static string F(double? value, int digits)
        => value is not { } v || double.IsNaN(v) || double.IsInfinity(v) ? "n/a" : v.ToString($"F{digits}", CultureInfo.InvariantCulture);

    private static string Percent(double value) => double.IsNaN(value) ? "n/a" : value.ToString("P1", CultureInfo.InvariantCulture);

    private static string Escape(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).ReplaceLineEndings(" ");

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
