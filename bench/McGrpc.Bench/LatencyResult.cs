namespace McGrpc.Bench;

/// <summary>Round trips to the guest's echo port, in ms, in the order measured.</summary>
internal sealed record LatencyResult(IReadOnlyList<double> RttMs)
{
    public double P50 => Stats.P50(RttMs.ToList());

    public double P99 => Stats.P99(RttMs.ToList());

    public double Max => RttMs.Count == 0 ? double.NaN : RttMs.Max();
}
