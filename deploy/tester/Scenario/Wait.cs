namespace McGrpc.ComposeTester.Scenario;

/// <summary>Polling with a deadline; every wait of the tester goes through here.</summary>
internal static class Wait
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Polls <paramref name="check"/> until it returns true; throws
    /// <see cref="TestFailedException"/> naming <paramref name="what"/> and
    /// <paramref name="lastSeen"/> on timeout. A check may throw
    /// <see cref="TestFailedException"/> itself to stop waiting at once.
    /// </summary>
    public static async Task UntilAsync(string what, TimeSpan timeout, Func<CancellationToken, Task<bool>> check, Func<string> lastSeen, CancellationToken cancellationToken)
    {
        var deadline = Reporter.Elapsed + timeout;
        while (true)
        {
            if (await check(cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            if (Reporter.Elapsed >= deadline)
            {
                throw new TestFailedException($"timed out after {timeout.TotalSeconds:F0} s waiting for {what}; last seen: {lastSeen()}");
            }

            await Task.Delay(Interval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Like <see cref="UntilAsync"/>, but returns false on timeout instead of throwing.</summary>
    public static async Task<bool> TryUntilAsync(TimeSpan timeout, Func<CancellationToken, Task<bool>> check, CancellationToken cancellationToken)
    {
        var deadline = Reporter.Elapsed + timeout;
        while (true)
        {
            if (await check(cancellationToken).ConfigureAwait(false))
            {
                return true;
            }

            if (Reporter.Elapsed >= deadline)
            {
                return false;
            }

            await Task.Delay(Interval, cancellationToken).ConfigureAwait(false);
        }
    }
}
