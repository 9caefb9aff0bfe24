namespace McGrpc.Shared.Stats;

/// <summary>
/// Percentiles over the last <c>capacity</c> samples. Adding is O(1); a query
/// sorts a copy, which is fine at status-query rates. Thread-safe.
/// </summary>
internal sealed class RollingPercentiles
{
    private readonly double[] _samples;
    private readonly Lock _lock = new();
    private int _next;
    private int _count;

    public RollingPercentiles(int capacity = 1000)
    {
        _samples = new double[capacity];
    }

    public void Add(double value)
    {
        lock (_lock)
        {
            _samples[_next] = value;
            _next = (_next + 1) % _samples.Length;
            _count = Math.Min(_count + 1, _samples.Length);
        }
    }

    public (double P50, double P99, double Max, int Count) Snapshot()
    {
        double[] sorted;
        lock (_lock)
        {
            sorted = _samples.AsSpan(0, _count).ToArray();
        }

        if (sorted.Length == 0)
        {
            return (0, 0, 0, 0);
        }

        Array.Sort(sorted);
        return (At(sorted, 0.50), At(sorted, 0.99), sorted[^1], sorted.Length);
    }

    /// <summary>Nearest-rank percentile.</summary>
    private static double At(double[] sorted, double quantile)
        => sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Length) - 1, 0, sorted.Length - 1)];
}
