namespace McGrpc.Bench;

/// <summary>Small statistics over samples (nearest-rank percentiles).</summary>
internal static class Stats
{
    public static double Percentile(IReadOnlyCollection<double> values, double quantile)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        return sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Length) - 1, 0, sorted.Length - 1)];
    }

    public static double P50(IReadOnlyCollection<double> values) => Percentile(values, 0.50);

    public static double P99(IReadOnlyCollection<double> values) => Percentile(values, 0.99);

    public static double Mean(IReadOnlyCollection<double> values) => values.Count == 0 ? double.NaN : values.Average();
}
