using System.Diagnostics;
using System.Globalization;

namespace McGrpc.Bench;

/// <summary>
/// The guest's work rate over a window, from its "WORKRATE iters_per_sec=x"
/// lines (one per guest second). Two rates, because the guest's clock stops
/// while QEMU is stopped:
/// <list type="bullet">
/// <item>guest clock: the mean of what the guest printed; blind to pauses, it shows only the slowdown while running (CPU taken by the daemons, cache effects);</item>
/// <item>wall clock: the iterations of all lines after the first, divided by the host time between the first and the last line; this is what a user of the guest gets.</item>
/// </list>
/// </summary>
internal sealed record WorkRate(double WallClock, double GuestClock, IReadOnlyList<double> PerSecond, double WallSeconds)
{
    private const string Prefix = "WORKRATE iters_per_sec=";

    public static WorkRate? From(IReadOnlyList<SerialLine> window)
    {
        var lines = window.Select(l => (l.At, Value: Parse(l.Text))).Where(l => l.Value is not null).Select(l => (l.At, Value: l.Value!.Value)).ToList();
        if (lines.Count < 3)
        {
            return null;
        }

        // The first line only marks the start: its second began before the window.
        var counted = lines.Skip(1).Select(l => l.Value).ToList();
        var seconds = Stopwatch.GetElapsedTime(lines[0].At, lines[^1].At).TotalSeconds;
        return new WorkRate(counted.Sum() / seconds, counted.Average(), counted, seconds);
    }

    private static double? Parse(string line)
    {
        var at = line.IndexOf(Prefix, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var value = line.AsSpan(at + Prefix.Length);
        var end = value.IndexOf(' ');
        return double.TryParse(end < 0 ? value : value[..end], NumberStyles.Integer, CultureInfo.InvariantCulture, out var rate) ? rate : null;
    }
}
