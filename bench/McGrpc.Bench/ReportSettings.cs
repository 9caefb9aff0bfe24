using System.Globalization;

namespace McGrpc.Bench;

/// <summary>What the report command measures, and for how long; every default fits the 20-minute budget on a 2-core machine.</summary>
internal sealed record ReportSettings
{
    public const string Usage = """
        mc-bench report --out <folder> [--delays 20,50,100,200] [--cell-seconds 12] [--settle-seconds 3]
                        [--floor-runs 10] [--kills 10] [--failover-delay 100] [--memory 256]
                        [--workrate "mb=32,rounds=64,writes=4"] [--latency-count 40] [--replication tls|plaintext]
                        [--skip rate,failover]
        Writes <folder>/report.md and PNG plots. Every number in it is measured in this run.
          --delays          checkpoint delays (ms) of the protected cells
          --cell-seconds    length of one work-rate window (one line per guest second)
          --settle-seconds  wait after a delay change or a new pair before a window starts
          --floor-runs      device-state-only migrations done by QEMU alone (the pause floor)
          --kills           failovers (kill -9 of the primary QEMU and mc-primary), at --failover-delay
          --memory          guest RAM in MiB (both guests)
          --workrate        arguments of the guest's workrate workload (default: its own defaults)
          --latency-count   round trips per latency cell (when the latency probe is wired in)
          --replication     tls (default, as in production: mutual TLS) or plaintext (--insecure-plaintext)
          --skip            leave phases out: rate (work rate, pause, bytes, floor, latency), failover
        """;

    public required string Out { get; init; }

    public required IReadOnlyList<int> Delays { get; init; }

    public int CellSeconds { get; init; } = 12;

    public int SettleSeconds { get; init; } = 3;

    public int FloorRuns { get; init; } = 10;

    public int Kills { get; init; } = 10;

    public int FailoverDelay { get; init; } = 100;

    public int MemoryMiB { get; init; } = 256;

    /// <summary>"key=value" pairs for mc.workrate.key=value; empty = the workload's defaults.</summary>
    public IReadOnlyList<string> WorkRateArgs { get; init; } = [];

    public int LatencyCount { get; init; } = 40;

    /// <summary>Replicate with --insecure-plaintext instead of mutual TLS.</summary>
    public bool Plaintext { get; init; }

    public bool RunRate { get; init; } = true;

    public bool RunFailover { get; init; } = true;

    public string CommandLine { get; init; } = string.Empty;

    public static ReportSettings From(BenchArgs args, string[] argv)
    {
        var skip = args.List("skip", string.Empty);
        return new ReportSettings
        {
            Out = args.String("out", string.Empty) is { Length: > 0 } folder ? Path.GetFullPath(folder) : throw new ArgumentException("--out <folder> is required."),
            Delays = args.List("delays", "20,50,100,200").Select(d => int.Parse(d, CultureInfo.InvariantCulture)).ToArray(),
            CellSeconds = args.Int("cell-seconds", 12),
            SettleSeconds = args.Int("settle-seconds", 3),
            FloorRuns = args.Int("floor-runs", 10),
            Kills = args.Int("kills", 10),
            FailoverDelay = args.Int("failover-delay", 100),
            MemoryMiB = args.Int("memory", 256),
            WorkRateArgs = args.List("workrate", string.Empty),
            LatencyCount = args.Int("latency-count", 40),
            Plaintext = args.String("replication", "tls") switch
            {
                "tls" => false,
                "plaintext" => true,
                var other => throw new ArgumentException($"--replication must be tls or plaintext, not '{other}'."),
            },
            RunRate = !skip.Contains("rate"),
            RunFailover = !skip.Contains("failover"),
            CommandLine = string.Join(' ', ["mc-bench", "report", .. argv]),
        };
    }
}
