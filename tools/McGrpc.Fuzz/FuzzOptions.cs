using System.Globalization;

namespace McGrpc.Fuzz;

/// <summary>mc-fuzz's command line.</summary>
internal sealed class FuzzOptions
{
    public const string Usage = """
        mc-fuzz: feeds random and mutated replication streams, built from real-shaped
        recorded epochs, into mc-backup's frame decoder, epoch rules and applier (in
        process, over guest RAM in a /dev/shm file) and checks after every epoch that
        nothing of a rejected epoch reached RAM, nothing was written outside the pages
        accepted runs named, nothing crashed and no stream hung.

        Usage: mc-fuzz [--streams N] [--minutes M] [--seed S] [options]

          --streams N             streams to run (default 10000 when --minutes is not given)
          --minutes M             run this long (with --streams: whichever ends first)
          --seed S                seed (default: from the clock, printed); a run is
                                  reproduced by the same --seed, --workers and --ram-kib
          --workers W             parallel backups (default: the number of cores)
          --ram-kib K             guest RAM of each backup in KiB (default 4096)
          --stream-timeout-ms T   a stream taking longer is a hang (default 5000)
          --failure-dir DIR       where a failing stream is written (default: current directory)
          --record-ram FILE       record epochs from a running guest's RAM file (e.g.
                                  /dev/shm/<vm>.ram) instead of generating them
          --record-offset BYTES   where in that file the recorded window starts (default 0)
          --record-epochs N       epochs to record (default 32)
          --record-interval-ms I  time between two snapshots, one epoch (default 100)

        Exit status: 0 all streams passed, 1 an invariant failed (the stream is saved),
        2 a stream hung, 64 bad arguments.
        """;

    public long? Streams { get; set; }

    public double? Minutes { get; set; }

    public int Seed { get; set; } = Environment.TickCount & int.MaxValue;

    public int Workers { get; set; } = Environment.ProcessorCount;

    public int RamKiB { get; set; } = 4096;

    public int StreamTimeoutMs { get; set; } = 5000;

    public string FailureDirectory { get; set; } = Environment.CurrentDirectory;

    public string? RecordRam { get; set; }

    public long RecordOffset { get; set; }

    public int RecordEpochs { get; set; } = 32;

    public int RecordIntervalMs { get; set; } = 100;

    public long RamSize => RamKiB * 1024L;

    /// <summary>Parses <paramref name="args"/>; null and a message when they are wrong, or help was asked for.</summary>
    public static FuzzOptions? Parse(string[] args, out string message)
    {
        var options = new FuzzOptions();
        message = string.Empty;
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            if (name is "--help" or "-h")
            {
                message = Usage;
                return null;
            }

            if (i + 1 >= args.Length)
            {
                message = $"mc-fuzz: {name} needs a value; see --help.";
                return null;
            }

            var value = args[++i];
            try
            {
                switch (name)
                {
                    case "--streams": options.Streams = long.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--minutes": options.Minutes = double.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--seed": options.Seed = int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--workers": options.Workers = int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--ram-kib": options.RamKiB = int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--stream-timeout-ms": options.StreamTimeoutMs = int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--failure-dir": options.FailureDirectory = value; break;
                    case "--record-ram": options.RecordRam = value; break;
                    case "--record-offset": options.RecordOffset = long.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--record-epochs": options.RecordEpochs = int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--record-interval-ms": options.RecordIntervalMs = int.Parse(value, CultureInfo.InvariantCulture); break;
                    default:
                        message = $"mc-fuzz: unknown option {name}; see --help.";
                        return null;
                }
            }
            catch (FormatException)
            {
                message = $"mc-fuzz: {name} '{value}' is not a number.";
                return null;
            }
        }

        if (options.Streams is <= 0 || options.Minutes is <= 0 || options.Workers <= 0 || options.RamKiB < 64 || options.RamKiB % 4 != 0 || options.RamKiB > 1024 * 1024 || options.StreamTimeoutMs <= 0 || options.RecordOffset < 0 || options.RecordOffset % 4096 != 0)
        {
            message = "mc-fuzz: --streams, --minutes, --workers and --stream-timeout-ms must be positive; --ram-kib a multiple of 4 from 64 to 1048576; --record-offset a multiple of 4096.";
            return null;
        }

        if (options.Streams is null && options.Minutes is null)
        {
            options.Streams = 10_000;
        }

        return options;
    }
}
