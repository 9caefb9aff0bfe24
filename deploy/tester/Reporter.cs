using System.Diagnostics;

namespace McGrpc.ComposeTester;

/// <summary>Progress lines on stdout, each with the time since the tester started.</summary>
internal static class Reporter
{
    private static readonly Stopwatch Clock = Stopwatch.StartNew();
    private static readonly Lock Gate = new();

    public static TimeSpan Elapsed => Clock.Elapsed;

    public static void Step(string message) => Write("==", message);

    public static void Info(string message) => Write("  ", message);

    public static void Ok(string message) => Write("ok", message);

    public static void Warn(string message) => Write("!!", message);

    public static void Raw(string line)
    {
        lock (Gate)
        {
            Console.Out.WriteLine(line);
            Console.Out.Flush();
        }
    }

    private static void Write(string tag, string message)
    {
        Raw($"[tester {Clock.Elapsed.TotalSeconds,6:F1}s] {tag} {message}");
    }
}
