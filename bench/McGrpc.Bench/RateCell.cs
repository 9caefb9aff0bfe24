using McGrpc.Protos.Control;

namespace McGrpc.Bench;

/// <summary>
/// One window of the side-by-side run: unprotected (<see cref="DelayMs"/>
/// null) or protected at a delay. <see cref="Epochs"/> are the per-epoch
/// statistics seen during the window; <see cref="CheckpointsTaken"/> counts
/// all checkpoints of the window, sampled or not.
/// </summary>
internal sealed record RateCell(string Label, int? DelayMs, WorkRate? Rate, IReadOnlyList<CheckpointStats> Epochs, ulong CheckpointsTaken, double WindowSeconds, LatencyResult? Latency)
{
    /// <summary>Set when the pair was not protected at the end of the window: the numbers are not protected numbers.</summary>
    public string? Disturbed { get; init; }

    public bool Protected => DelayMs is not null;

    public List<double> Of(Func<CheckpointStats, double> value) => Epochs.Select(value).ToList();

    /// <summary>Share of the window the guest stood still: mean pause x checkpoints taken / window.</summary>
    public double PausedShare => Epochs.Count == 0 || WindowSeconds <= 0 ? double.NaN : Stats.Mean(Of(e => e.DowntimeMs)) * CheckpointsTaken / (WindowSeconds * 1000);
}
