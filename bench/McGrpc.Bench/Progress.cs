using System.Diagnostics;

namespace McGrpc.Bench;

/// <summary>Progress lines on stderr, stamped with the time since the command started (stdout stays for results).</summary>
internal static class Progress
{
    private static readonly long Started = Stopwatch.GetTimestamp();

    public static TimeSpan Elapsed => Stopwatch.GetElapsedTime(Started);

    public static void Say(string message) => Console.Error.WriteLine($"[{Elapsed:mm\\:ss}] {message}");
}
