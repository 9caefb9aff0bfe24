using ScottPlot;

namespace McGrpc.Bench;

/// <summary>
/// The report's PNG figures, drawn from the run's own numbers. A figure
/// whose numbers were not measured is not drawn (the report says why), nor
/// is a cell whose pair lost protection during its window (the tables flag it).
/// Each method returns the file name it wrote, or null.
/// </summary>
internal static class ReportPlots
{
    private const int Width = 900;
    private const int Height = 520;

    private static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    /// <summary>Protected / unprotected work rate against the delay, per buffering mode, wall clock and guest clock.</summary>
    public static string? WorkRate(ReportData report, string folder)
    {
        var series = report.Series.Where(s => s.Cells.Count > 0).ToList();
        if (series.Count == 0)
        {
            return null;
        }

        var plot = NewPlot("Guest work rate, protected / unprotected (same guest, same run)", "checkpoint delay (ms)", "work rate ratio");
        var color = 0;
        foreach (var s in series)
        {
            var cells = s.Cells.Where(c => c.Rate is not null && c.Disturbed is null).ToList();
            var xs = cells.Select(c => (double)c.DelayMs!.Value).ToArray();
            var wall = plot.Add.Scatter(xs, cells.Select(c => c.Rate!.WallClock / s.BaselineWallClock).ToArray(), Palette.GetColor(color));
            wall.LegendText = $"{s.Buffering}: wall clock (what users get)";
            wall.LineWidth = 2;
            wall.MarkerSize = 8;
            var guest = plot.Add.Scatter(xs, cells.Select(c => c.Rate!.GuestClock / s.BaselineGuestClock).ToArray(), Palette.GetColor(color));
            guest.LegendText = $"{s.Buffering}: guest clock (pauses not counted)";
            guest.LinePattern = LinePattern.Dashed;
            guest.MarkerSize = 6;
            color++;
        }

        var one = plot.Add.HorizontalLine(1.0, 1, Colors.Gray, LinePattern.Dotted);
        one.LegendText = "unprotected";
        plot.Axes.SetLimitsY(0, 1.15);
        SetDelayTicks(plot, report.Settings.Delays);
        plot.ShowLegend(Alignment.LowerRight);
        return Save(plot, folder, "workrate.png");
    }

    /// <summary>Cumulative distribution of the pause per checkpoint at each delay, and QEMU's own device-state downtime.</summary>
    public static string? PauseCdf(ReportData report, string folder)
    {
        var cells = report.Series.SelectMany(s => s.Cells).Where(c => c.Epochs.Count > 0 && c.Disturbed is null).ToList();
        if (cells.Count == 0 && report.Floor.Count == 0)
        {
            return null;
        }

        var plot = NewPlot("Guest pause per checkpoint (cumulative distribution)", "pause (ms)", "fraction of checkpoints at or below");
        var delays = report.Settings.Delays.ToList();
        var modes = report.Series.Select(s => s.Buffering).ToList();
        foreach (var cell in cells)
        {
            // One colour per delay, one line pattern per buffering mode.
            var series = report.Series.First(s => s.Cells.Contains(cell));
            var pattern = modes.IndexOf(series.Buffering) == 0 ? LinePattern.Solid : LinePattern.Dashed;
            AddCdf(plot, cell.Of(e => e.DowntimeMs), cell.Label, Palette.GetColor(delays.IndexOf(cell.DelayMs!.Value)), pattern);
        }

        if (report.Floor.Count > 0)
        {
            AddCdf(plot, report.Floor.Select(f => f.DowntimeMs).ToList(), "floor: QEMU downtime, device state only", Colors.Black, LinePattern.Dotted);
        }

        plot.Axes.SetLimitsY(0, 1.02);
        // A few long stalls would squeeze every curve against the axis: cut at the largest p95 (the tables give p99 and max).
        var p95 = cells.Select(c => Stats.Percentile(c.Of(e => e.DowntimeMs), 0.95)).Concat(report.Floor.Select(f => f.DowntimeMs)).DefaultIfEmpty(1).Max();
        plot.Axes.SetLimitsX(0, Math.Max(1, p95 * 1.1));
        plot.XLabel("pause (ms), axis cut at the largest p95");
        plot.ShowLegend(Alignment.LowerRight);
        return Save(plot, folder, "pause-cdf.png");
    }

    /// <summary>Mean pause per checkpoint split into its parts, one stacked bar per cell.</summary>
    public static string? PauseParts(ReportData report, string folder)
    {
        var cells = report.Series.SelectMany(s => s.Cells).Where(c => c.Epochs.Count > 0 && c.Disturbed is null).ToList();
        if (cells.Count == 0)
        {
            return null;
        }

        var plot = NewPlot("Where the pause goes (mean per checkpoint)", string.Empty, "ms");
        var parts = PauseBreakdown.Parts;
        var bars = new List<Bar>();
        for (var i = 0; i < cells.Count; i++)
        {
            double bottom = 0;
            for (var p = 0; p < parts.Count; p++)
            {
                var value = Stats.Mean(cells[i].Epochs.Select(parts[p].Of).ToList());
                bars.Add(new Bar { Position = i, ValueBase = bottom, Value = bottom + value, FillColor = Palette.GetColor(p), LineWidth = 0 });
                bottom += value;
            }
        }

        var labels = cells.Select(c => c.Label.Replace(", ", "\n", StringComparison.Ordinal)).ToList();
        if (report.Floor.Count > 0)
        {
            // The floor as one more bar: QEMU's whole stop..device state..cont, with no daemon.
            bars.Add(new Bar { Position = cells.Count, ValueBase = 0, Value = Stats.Mean(report.Floor.Select(f => f.DowntimeMs).ToList()), FillColor = Colors.Gray, LineWidth = 0 });
            labels.Add("floor\n(QEMU downtime)");
        }

        plot.Add.Bars(bars);
        for (var p = 0; p < parts.Count; p++)
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = parts[p].Name, FillColor = Palette.GetColor(p) });
        }

        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, labels.Count).Select(i => (double)i).ToArray(), [.. labels]);
        plot.Axes.Margins(bottom: 0);
        plot.ShowLegend(Alignment.UpperRight);
        return Save(plot, folder, "pause-parts.png");
    }

    /// <summary>Round trip to the guest's echo port against the delay, with the unprotected round trip as a line.</summary>
    public static string? Latency(ReportData report, string folder)
    {
        var series = report.Series.Where(s => s.Cells.Any(c => c.Latency is not null)).ToList();
        if (series.Count == 0)
        {
            return null;
        }

        // Log scale: an unprotected round trip of a few ms and a buffered one of hundreds belong on one picture.
        var plot = NewPlot("Network round trip to the guest (echo)", "checkpoint delay (ms)", "round trip (ms, log scale)");
        var plotted = new List<double>();
        var color = 0;
        foreach (var s in series)
        {
            var cells = s.Cells.Where(c => c.Latency is not null && c.Disturbed is null).ToList();
            var xs = cells.Select(c => (double)c.DelayMs!.Value).ToArray();
            var p50s = cells.Select(c => c.Latency!.P50).ToArray();
            var p99s = cells.Select(c => c.Latency!.P99).ToArray();
            plotted.AddRange(p50s.Concat(p99s));
            var p50 = plot.Add.Scatter(xs, p50s.Select(Log).ToArray(), Palette.GetColor(color));
            p50.LegendText = $"{s.Buffering}: p50";
            p50.LineWidth = 2;
            var p99 = plot.Add.Scatter(xs, p99s.Select(Log).ToArray(), Palette.GetColor(color));
            p99.LegendText = $"{s.Buffering}: p99";
            p99.LinePattern = LinePattern.Dashed;
            color++;
        }

        var baseline = report.Series.SelectMany(s => new[] { s.Before, s.After }).Where(c => c?.Latency is not null).Select(c => c!.Latency!.P50).ToList();
        if (baseline.Count > 0)
        {
            plotted.Add(Stats.Mean(baseline));
            var line = plot.Add.HorizontalLine(Log(Stats.Mean(baseline)), 1, Colors.Gray, LinePattern.Dotted);
            line.LegendText = "unprotected p50";
        }

        // Ticks at 1, 2, 5 x 10^n around the plotted range.
        var low = Math.Floor(Log(plotted.Min()));
        var high = Math.Ceiling(Log(plotted.Max()));
        var ticks = Enumerable.Range((int)low, (int)(high - low) + 1)
            .SelectMany(n => new[] { 1.0, 2.0, 5.0 }.Select(m => m * Math.Pow(10, n)))
            .Where(t => Log(t) <= high)
            .ToArray();
        plot.Axes.Left.SetTicks(ticks.Select(Log).ToArray(), ticks.Select(t => t.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.SetLimitsY(low, high);
        SetDelayTicks(plot, report.Settings.Delays);
        plot.ShowLegend(Edge.Right);
        return Save(plot, folder, "latency.png");
    }

    private static double Log(double ms) => Math.Log10(Math.Max(ms, 0.01));

    /// <summary>Each failover: detection and restore (mc-backup's numbers) stacked, and the bench's kill-to-running.</summary>
    public static string? Failover(ReportData report, string folder)
    {
        if (report.Failovers.Count == 0)
        {
            return null;
        }

        var plot = NewPlot("Failover after kill -9 of the primary host", "kill", "ms");
        var bars = new List<Bar>();
        foreach (var run in report.Failovers)
        {
            bars.Add(new Bar { Position = run.Index, ValueBase = 0, Value = run.DetectionMs, FillColor = Palette.GetColor(0), LineWidth = 0 });
            bars.Add(new Bar { Position = run.Index, ValueBase = run.DetectionMs, Value = run.DetectionMs + run.RestoreMs, FillColor = Palette.GetColor(1), LineWidth = 0 });
        }

        plot.Add.Bars(bars);
        var running = plot.Add.ScatterPoints(report.Failovers.Select(r => (double)r.Index).ToArray(), report.Failovers.Select(r => r.KillToRunningMs).ToArray(), Colors.Black);
        running.MarkerSize = 9;
        running.MarkerShape = MarkerShape.FilledDiamond;
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "detection (last frame to declared dead)", FillColor = Palette.GetColor(0) });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "restore (migrate-incoming to running)", FillColor = Palette.GetColor(1) });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "kill to first serial output on the backup", MarkerShape = MarkerShape.FilledDiamond, MarkerFillColor = Colors.Black, MarkerSize = 9, LineWidth = 0 });
        plot.Axes.Bottom.SetTicks(report.Failovers.Select(r => (double)r.Index).ToArray(), report.Failovers.Select(r => r.Index.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        var top = report.Failovers.Max(r => Math.Max(r.DetectionMs + r.RestoreMs, r.KillToRunningMs));

        // Headroom above the tallest bar for the legend.
        plot.Axes.SetLimitsY(0, top * 1.45);
        plot.ShowLegend(Alignment.UpperRight);
        return Save(plot, folder, "failover.png");
    }

    private static Plot NewPlot(string title, string x, string y)
    {
        var plot = new Plot();
        plot.Font.Set("DejaVu Sans");
        plot.Title(title);
        plot.XLabel(x);
        plot.YLabel(y);
        return plot;
    }

    private static void AddCdf(Plot plot, List<double> values, string label, Color color, LinePattern pattern)
    {
        var sorted = values.Order().ToArray();
        var fractions = sorted.Select((_, i) => (i + 1) / (double)sorted.Length).ToArray();
        var line = plot.Add.Scatter(sorted, fractions, color);
        line.ConnectStyle = ConnectStyle.StepHorizontal;
        line.MarkerSize = 0;
        line.LineWidth = 2;
        line.LinePattern = pattern;
        line.LegendText = $"{label} (n={sorted.Length})";
    }

    private static void SetDelayTicks(Plot plot, IReadOnlyList<int> delays)
    {
        plot.Axes.Bottom.SetTicks(delays.Select(d => (double)d).ToArray(), delays.Select(d => d.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.SetLimitsX(0, delays.Max() * 1.1);
    }

    private static string Save(Plot plot, string folder, string name)
    {
        plot.SavePng(Path.Combine(folder, name), Width, Height);
        return name;
    }
}
