namespace McGrpc.Bench;

/// <summary>
/// mc-bench: measurements that print their numbers (never pass/fail). Each
/// command boots real QEMU guests and runs the real daemons.
/// </summary>
internal static class Program
{
    private static readonly Dictionary<string, (string Summary, Func<string[], Task<int>> Run)> Commands = new()
    {
        ["pause"] = ("pause, harvest and device-state time and bytes per checkpoint, per tracker, guest size and workload", PauseBench.RunAsync),
        ["latency"] = ("request/response round trips to the guest, unprotected vs protected at each delay, with and without output buffering", LatencyBench.RunAsync),
        ["report"] = ("the side-by-side report: work rate, pause and its floor, bytes, round trip and failover, with plots", ReportBench.RunAsync),
    };

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || !Commands.TryGetValue(args[0], out var command))
        {
            Console.WriteLine("Usage: mc-bench <command> [options]   (each command takes --help)");
            foreach (var (name, (summary, _)) in Commands)
            {
                Console.WriteLine($"  {name,-10} {summary}");
            }

            return args.Length == 0 || args[0] is "--help" or "-h" ? 0 : 64;
        }

        return await command.Run(args[1..]);
    }
}
