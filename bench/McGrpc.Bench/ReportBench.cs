namespace McGrpc.Bench;

/// <summary>
/// The report command: work rate, pause and its floor, bytes, round trips and
/// failover, measured side by side in one run on this machine, written as
/// report.md with PNG plots into the folder the command names.
/// </summary>
internal static class ReportBench
{
    public static async Task<int> RunAsync(string[] argv)
    {
        var args = new BenchArgs(argv);
        if (args.Help)
        {
            Console.WriteLine(ReportSettings.Usage);
            return 0;
        }

        var settings = ReportSettings.From(args, argv);
        Directory.CreateDirectory(settings.Out);
        DaemonSecurity.Plaintext = settings.Plaintext;
        var report = new ReportData { Settings = settings, Machine = await MachineInfo.CollectAsync(), Replication = DaemonSecurity.Describe() };
        Progress.Say($"report: {report.Machine.CpuModel}, {report.Machine.Cores} cores, load {report.Machine.LoadAtStart}; writing to {settings.Out}");
        using var cancellation = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancellation.Cancel();
        };

        if (settings.RunRate)
        {
            await RunPhaseAsync("work rate", report, () => RatePhase.RunAsync(settings, report, cancellation.Token));
        }

        if (settings.RunFailover)
        {
            await RunPhaseAsync("failover", report, () => FailoverPhase.RunAsync(settings, report, cancellation.Token));
        }

        report.WallTime = Progress.Elapsed;
        report.LoadAtEnd = MachineInfo.LoadAverage();
        var figures = new Dictionary<string, string?>
        {
            ["workrate"] = ReportPlots.WorkRate(report, settings.Out),
            ["pause-cdf"] = ReportPlots.PauseCdf(report, settings.Out),
            ["pause-parts"] = ReportPlots.PauseParts(report, settings.Out),
            ["latency"] = ReportPlots.Latency(report, settings.Out),
            ["failover"] = ReportPlots.Failover(report, settings.Out),
        };
        var path = Path.Combine(settings.Out, "report.md");
        await File.WriteAllTextAsync(path, ReportWriter.Write(report, figures));
        Progress.Say($"report: wrote {path} and {figures.Values.Count(f => f is not null)} plots in {report.WallTime.TotalMinutes:F1} minutes");
        return report.Problems.Count == 0 ? 0 : 1;
    }

    /// <summary>A phase that fails is written into the report as a problem; the other phases still run.</summary>
    private static async Task RunPhaseAsync(string name, ReportData report, Func<Task> phase)
    {
        try
        {
            await phase();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var first = e.Message.Split('\n')[0];
            report.Problems.Add($"{name} phase failed: {first}");
            Progress.Say($"{name} phase failed: {e}");
        }
    }
}
