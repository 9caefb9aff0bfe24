using System.Text;

namespace McGrpc.Fuzz;

/// <summary>What a fuzz run did and found.</summary>
internal sealed class FuzzReport
{
    public int Seed { get; init; }

    public int Workers { get; init; }

    public string CorpusSource { get; set; } = string.Empty;

    public long Streams { get; set; }

    public long ValidStreams { get; set; }

    public long MutatedStreams { get; set; }

    public long RandomStreams { get; set; }

    /// <summary>Streams the backup closed because a frame broke a rule.</summary>
    public long RejectedStreams { get; set; }

    public long HellosRefused { get; set; }

    public long EpochsApplied { get; set; }

    /// <summary>Epochs refused whole (open when a frame was rejected).</summary>
    public long EpochsRejected { get; set; }

    /// <summary>Epochs discarded because the stream ended in the middle.</summary>
    public long EpochsDiscarded { get; set; }

    public TimeSpan Elapsed { get; set; }

    /// <summary>The first invariant that failed, or null.</summary>
    public string? Failure { get; set; }

    public bool Hang { get; set; }

    /// <summary>Where the failing stream was written.</summary>
    public string? FailureFile { get; set; }

    /// <summary>How often each rule refused a stream (numbers in the messages blanked).</summary>
    public Dictionary<string, long> Rejections { get; } = new(StringComparer.Ordinal);

    public double StreamsPerSecond => Elapsed.TotalSeconds > 0 ? Streams / Elapsed.TotalSeconds : 0;

    public void Add(FuzzReport other)
    {
        Streams += other.Streams;
        ValidStreams += other.ValidStreams;
        MutatedStreams += other.MutatedStreams;
        RandomStreams += other.RandomStreams;
        RejectedStreams += other.RejectedStreams;
        HellosRefused += other.HellosRefused;
        EpochsApplied += other.EpochsApplied;
        EpochsRejected += other.EpochsRejected;
        EpochsDiscarded += other.EpochsDiscarded;
        foreach (var (reason, count) in other.Rejections)
        {
            Rejections[reason] = Rejections.GetValueOrDefault(reason) + count;
        }
    }

    public override string ToString()
    {
        var text = new StringBuilder();
        text.AppendLine($"mc-fuzz seed {Seed}, {Workers} worker(s), corpus: {CorpusSource}");
        text.AppendLine($"{Streams:#,0} streams in {Elapsed.TotalSeconds:F1} s ({StreamsPerSecond:F0} streams/s): {ValidStreams:#,0} valid, {MutatedStreams:#,0} mutated, {RandomStreams:#,0} random");
        text.AppendLine($"epochs applied {EpochsApplied:#,0}, rejected {EpochsRejected:#,0}, discarded at stream end {EpochsDiscarded:#,0}; streams refused {RejectedStreams:#,0} (Hello {HellosRefused:#,0})");
        text.AppendLine($"distinct rejection reasons: {Rejections.Count}");
        foreach (var (reason, count) in Rejections.OrderByDescending(r => r.Value).Take(40))
        {
            text.AppendLine($"  {count,8:#,0}  {reason}");
        }

        text.AppendLine(Failure is null ? "result: PASS (no crash, no hang, no write outside accepted pages, no rejected epoch applied)" : $"result: FAIL{(Hang ? " (hang)" : string.Empty)}: {Failure}");
        if (FailureFile is not null)
        {
            text.AppendLine($"failing stream written to {FailureFile} (length-delimited PrimaryFrame messages)");
        }

        return text.ToString();
    }
}
