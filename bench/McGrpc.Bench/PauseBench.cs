using System.Globalization;
using System.Text;
using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Bench;

/// <summary>
/// Pause per checkpoint and its parts, per tracker, guest size and workload,
/// side by side in one run: each guest boots once and is protected by each
/// tracker in turn, with the same delay.
/// </summary>
internal static class PauseBench
{
    public static async Task<int> RunAsync(string[] argv)
    {
        var args = new BenchArgs(argv);
        if (args.Help)
        {
            Console.WriteLine("""
                mc-bench pause [--sizes 256,512,2048] [--workloads idle,memverify] [--trackers uffd-wp,compare]
                               [--epochs 60] [--delay 100] [--extra-primary-args "..."]
                Sizes in MiB. 'idle' runs no workload; 'memverify' rewrites pages of 16 MiB non-stop.
                """);
            return 0;
        }

        var sizes = args.List("sizes", "256,512,2048").Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var workloads = args.List("workloads", "idle,memverify");
        var trackers = args.List("trackers", "uffd-wp,compare");
        var epochs = args.Int("epochs", 60);
        var delay = args.Int("delay", 100);
        var extra = args.String("extra-primary-args", string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries);

        Console.WriteLine($"# mc-bench pause: {epochs} epochs per cell, delay {delay} ms, TCG, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        var rows = new List<Row>();
        foreach (var size in sizes)
        {
            foreach (var workload in workloads)
            {
                await using var guest = await TestVm.StartAsync(new TestVmOptions { Name = "benchvm", MemoryMiB = size, Run = workload == "idle" ? string.Empty : workload });
                await guest.WaitForSerialAsync(l => l.Contains("GUEST READY", StringComparison.Ordinal), TimeSpan.FromMinutes(3), "GUEST READY");
                foreach (var tracker in trackers)
                {
                    Console.Error.WriteLine($"[pause] {size} MiB, {workload}, {tracker}...");
                    await using var pair = await BenchPair.StartAsync(guest, ["--tracker", tracker, "--delay", delay.ToString(CultureInfo.InvariantCulture), .. extra], []);
                    // Let the first epochs after the full copy pass: they carry its tail.
                    await Task.Delay(1000);
                    var samples = await pair.CollectEpochsAsync(epochs, TimeSpan.FromMinutes(5));
                    rows.Add(Row.From(size, workload, tracker, samples));
                    Console.Error.WriteLine($"[pause]   {rows[^1].Format()}");
                }
            }
        }

        Console.WriteLine(Table(rows));
        Console.WriteLine(Findings(rows));
        return 0;
    }

    private static string Table(List<Row> rows)
    {
        var text = new StringBuilder();
        text.AppendLine("| guest | workload | tracker | epochs | pause p50 | pause p99 | pause max | harvest p50 | harvest p99 | copy p50 | device state p50 | dirty pages/epoch | raw KiB/epoch | sent KiB/epoch | sent/raw |");
        text.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var row in rows)
        {
            text.AppendLine(row.Format());
        }

        return text.ToString();
    }

    private static string Findings(List<Row> rows)
    {
        var text = new StringBuilder();
        foreach (var tracker in rows.Select(r => r.Tracker).Distinct())
        {
            var idle = rows.Where(r => r.Tracker == tracker && r.Workload == "idle").OrderBy(r => r.SizeMiB).ToList();
            if (idle.Count >= 2)
            {
                var small = idle[0];
                var large = idle[^1];
                text.AppendLine(CultureInfo.InvariantCulture, $"{tracker}: idle harvest p50 {large.SizeMiB} MiB / {small.SizeMiB} MiB = {large.HarvestP50:F3} / {small.HarvestP50:F3} ms = {large.HarvestP50 / small.HarvestP50:F2}x");
            }
        }

        return text.ToString();
    }

    private sealed record Row(int SizeMiB, string Workload, string Tracker, int Epochs, double PauseP50, double PauseP99, double PauseMax, double HarvestP50, double HarvestP99, double CopyP50, double DeviceStateP50, double DirtyPages, double RawKiB, double SentKiB)
    {
        public static Row From(int size, string workload, string tracker, List<PrimaryStatus> samples)
        {
            var stats = samples.Select(s => s.Stats).ToList();
            List<double> Of(Func<CheckpointStats, double> f) => stats.Select(f).ToList();
            var pause = Of(s => s.DowntimeMs);
            var raw = Stats.Mean(Of(s => s.RawBytes)) / 1024;
            var sent = Stats.Mean(Of(s => s.SentBytes)) / 1024;
            return new Row(size, workload, tracker, samples.Count, Stats.P50(pause), Stats.P99(pause), pause.Count == 0 ? double.NaN : pause.Max(),
                Stats.P50(Of(s => s.DirtyLogMs)), Stats.P99(Of(s => s.DirtyLogMs)), Stats.P50(Of(s => s.RamCopyMs)), Stats.P50(Of(s => s.DeviceStateMs)),
                Stats.Mean(Of(s => s.DirtyPages)), raw, sent);
        }

        public string Format() => string.Create(
            CultureInfo.InvariantCulture,
            $"| {SizeMiB} MiB | {Workload} | {Tracker} | {Epochs} | {PauseP50:F2} ms | {PauseP99:F2} ms | {PauseMax:F2} ms | {HarvestP50:F3} ms | {HarvestP99:F3} ms | {CopyP50:F2} ms | {DeviceStateP50:F2} ms | {DirtyPages:F0} | {RawKiB:F0} | {SentKiB:F0} | {(RawKiB > 0 ? SentKiB / RawKiB : double.NaN):F2} |");
    }
}
