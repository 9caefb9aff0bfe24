using System.Diagnostics;

namespace McGrpc.Tests.Infrastructure;

/// <summary>Polling with a deadline: every wait in the tests has one.</summary>
internal static class Wait
{
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> failure, int pollMs = 50)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            if (await condition())
            {
                return;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:F0} s: {failure()}");
            }

            await Task.Delay(pollMs);
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, Func<string> failure, int pollMs = 50)
        => UntilAsync(() => Task.FromResult(condition()), timeout, failure, pollMs);
}
