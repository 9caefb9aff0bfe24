using System.Globalization;
using System.Net;
using System.Text;
using Grpc.Core;
using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Bench;

/// <summary>
/// mc-bench latency: request/response round trips to the guest's echo port,
/// unprotected and protected at each delay, with and without output
/// buffering, side by side in one run on one guest, with the epoch numbers
/// that explain the difference.
/// </summary>
internal static class LatencyBench
{
    public static async Task<int> RunAsync(string[] argv)
    {
        var args = new BenchArgs(argv);
        if (args.Help)
        {
            Console.WriteLine("""
                mc-bench latency [--delays 20,50,100] [--count 300] [--output-buffer userspace] [--memory 256] [--think-ms 100]
                Round trips of 64-byte messages to the guest's echo port (tcpserve, through a QEMU user-networking port
                forward on 127.0.0.1), with a random pause of up to --think-ms between requests. Cells: unprotected, then one
                protected pair whose delay and mc-net-disable are changed live (SetMcDelay, SetCapability), then
                unprotected again. Prints a table, the epoch numbers of each cell and what they predict.
                """);
            return 0;
        }

        var delays = args.List("delays", "20,50,100").Select(d => int.Parse(d, CultureInfo.InvariantCulture)).ToArray();
        var count = args.Int("count", 300);
        var buffer = args.String("output-buffer", "userspace");
        var memory = args.Int("memory", 256);
        var think = TimeSpan.FromMilliseconds(args.Int("think-ms", 100));
        DaemonSecurity.Plaintext = args.String("replication", "tls") == "plaintext";

        var load = MachineInfo.LoadAverage();
        Console.WriteLine($"# mc-bench latency: {count} round trips of {EchoProbe.MessageBytes} bytes per cell, think time 0..{think.TotalMilliseconds:F0} ms, "
            + $"output buffer {buffer}, {memory} MiB guest, TCG, {Environment.ProcessorCount} cores, load average {load}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine($"# replication: {DaemonSecurity.Describe()}");

        var echoPort = FreePort.Next();
        await using var guest = await TestVm.StartAsync(new TestVmOptions
        {
            Name = "latencyvm",
            MemoryMiB = memory,
            Run = "tcpserve",
            ExtraAppend = "mc.ip=10.0.2.15/24 mc.gw=10.0.2.2 mc.loglevel=1",
            ExtraArgs = ["-netdev", $"user,id=net0,hostfwd=tcp:127.0.0.1:{echoPort}-:5001", "-device", "e1000,netdev=net0,romfile=,autonegotiation=off"],
        });
        await guest.WaitForSerialAsync(l => l.Contains("GUEST READY", StringComparison.Ordinal), TimeSpan.FromMinutes(3), "GUEST READY");
        var echo = new IPEndPoint(IPAddress.Loopback, echoPort);
        var cells = new List<Cell>();

        Progress.Say("latency: unprotected");
        cells.Add(new Cell("unprotected", null, false, await EchoProbe.MeasureAsync(echo, count, think, CancellationToken.None), []));

        Progress.Say($"latency: protecting (--output-buffer {buffer})");
        await using (var pair = await BenchPair.StartAsync(
            guest,
            ["--output-buffer", buffer, "--delay", delays[0].ToString(CultureInfo.InvariantCulture)],
            ["--failover-policy", "manual"],
            // Only one QEMU can bind the forward; the backup gets the same NIC on a netdev without it.
            o => o with { ExtraArgs = ["-netdev", "user,id=net0", "-device", "e1000,netdev=net0,romfile=,autonegotiation=off"] }))
        {
            var status = await pair.Primary.QueryStatusAsync(new QueryStatusRequest());
            Console.WriteLine($"# primary: output buffer {status.OutputBuffer}, tracker {status.Tracker}");
            foreach (var delay in delays)
            {
                await pair.Primary.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = (uint)delay });
                foreach (var netDisable in new[] { false, true })
                {
                    await pair.Primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc-net-disable", Enabled = netDisable });
                    var label = netDisable ? $"protected {delay} ms, mc-net-disable" : $"protected {delay} ms, output buffered";
                    Progress.Say($"latency: {label}");
                    await Task.Delay(2000);
                    await using var watch = EpochWatch.Start(pair.Primary);
                    var result = await EchoProbe.MeasureAsync(echo, count, think, CancellationToken.None);
                    cells.Add(new Cell(label, delay, !netDisable, result, await watch.StopAsync()));
                }
            }

            await pair.Primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc-net-disable", Enabled = false });
        }

        Progress.Say("latency: unprotected again");
        cells.Add(new Cell("unprotected (after)", null, false, await EchoProbe.MeasureAsync(echo, count, think, CancellationToken.None), []));
        Console.WriteLine(Table(cells));
        Console.WriteLine(Explanation(cells));
        Console.WriteLine($"# load average at the end: {MachineInfo.LoadAverage()}");
        return 0;
    }

    private static string Table(List<Cell> cells)
    {
        var baseline = Stats.P50(cells.Where(c => c.Delay is null).SelectMany(c => c.Result.RttMs).ToList());
        var text = new StringBuilder();
        text.AppendLine("| cell | RTT p50 | RTT p99 | RTT max | added p50 | epochs | interval p50 | pause p50 | ack latency p50 | predicted added p50 |");
        text.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var cell in cells)
        {
            var rtt = cell.Result;
            text.AppendLine(string.Create(
                CultureInfo.InvariantCulture,
                $"| {cell.Label} | {rtt.P50:F1} | {rtt.P99:F1} | {rtt.Max:F1} | {(cell.Delay is null ? "-" : $"{rtt.P50 - baseline:F1}")} | {cell.Epochs.Count} | "
                + $"{Ms(cell.Interval)} | {Ms(cell.Pause)} | {Ms(cell.AckLatency)} | {Ms(cell.Predicted)} |"));
        }

        text.AppendLine();
        text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"All times in ms. added p50 = RTT p50 - unprotected RTT p50 ({baseline:F1} ms, both unprotected cells together)."));
        return text.ToString();
    }

    private static string Explanation(List<Cell> cells)
    {
        var text = new StringBuilder();
        text.AppendLine("""
            How to read it. The request is never held (input goes straight to the guest); only the reply is. With output
            buffering the reply is captured in the epoch that is running when the guest sends it and leaves when that epoch's
            checkpoint is acked: it waits for the next stop (on average half the actual interval between stops, since requests
            arrive at random points of the cycle), then for that checkpoint's ack, which the primary measures from the stop
            (the pause, the transfer, the backup's apply, the ack on the way back). So the prediction is
            "interval p50 / 2 + ack latency p50"; p99 approaches "interval + ack latency p99". A request that arrives
            while the guest is stopped also waits for the rest of that pause, which adds a little on top. Without
            buffering (mc-net-disable) a round trip only suffers when it meets a pause, which the p99 shows and the p50
            mostly not; its packets still pass through mc-primary's filters (the buffer stays attached, passing through),
            which is the small remaining difference to unprotected. On a loaded 2-core TCG host the p99s mostly measure
            the host: compare with the two unprotected cells, and rerun on a quiet machine before quoting numbers.
            """);
        foreach (var cell in cells.Where(c => c.Buffered && c.Epochs.Count > 0))
        {
            var added = cell.Result.P50 - Stats.P50(cells.Where(c => c.Delay is null).SelectMany(c => c.Result.RttMs).ToList());
            var interval = cell.Interval > cell.Delay!.Value * 1.3
                ? string.Create(CultureInfo.InvariantCulture, $"The actual interval is {cell.Interval / cell.Delay.Value:F1}x the delay: the loop waited for acks (at most 4 epochs in flight) or for long pauses; on a loaded 2-core TCG host that is where time goes.")
                : "The interval keeps up with the delay.";
            text.Append(string.Create(
                CultureInfo.InvariantCulture,
                $"- {cell.Label}: measured added p50 {added:F1} ms, predicted {cell.Predicted:F1} ms (interval/2 {cell.Interval / 2:F1} + ack {cell.AckLatency:F1}; the pause alone is {cell.Pause:F1}). "));
            text.AppendLine(interval);
        }

        return text.ToString();
    }

    private static string Ms(double value) => double.IsNaN(value) ? "-" : value.ToString("F1", CultureInfo.InvariantCulture);

    private sealed record Cell(string Label, int? Delay, bool Buffered, LatencyResult Result, List<CheckpointStats> Epochs)
    {
        public double Interval => Stats.P50(Epochs.Select(e => e.EpochIntervalMs).Where(v => v > 0).ToList());

        public double Pause => Stats.P50(Epochs.Select(e => e.DowntimeMs).ToList());

        public double AckLatency => Stats.P50(Epochs.Select(e => e.AckLatencyMs).Where(v => v > 0).ToList());

        public double Predicted => Buffered ? (Interval / 2) + AckLatency : double.NaN;
    }
}
