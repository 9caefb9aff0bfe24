namespace McGrpc.Bench;

/// <summary>
/// The protected cells of one output-buffer mode, bracketed by unprotected
/// baselines of the same guest measured just before and just after, so a
/// ratio compares neighbours and drift shows. <see cref="Unavailable"/> says
/// why a mode has no cells (never replaced by numbers from elsewhere).
/// </summary>
internal sealed record ProtectionSeries(string Buffering, string Title, RateCell? Before, IReadOnlyList<RateCell> Cells, RateCell? After, string? Unavailable, string? Tracker)
{
    /// <summary>Mean wall-clock rate of the baselines around the series.</summary>
    public double BaselineWallClock => Stats.Mean(new[] { Before, After }.Where(c => c?.Rate is not null).Select(c => c!.Rate!.WallClock).ToList());

    public double BaselineGuestClock => Stats.Mean(new[] { Before, After }.Where(c => c?.Rate is not null).Select(c => c!.Rate!.GuestClock).ToList());

    /// <summary>After / before: how much the unprotected guest drifted while the series ran.</summary>
    public double Drift => Before?.Rate is { } before && After?.Rate is { } after ? after.WallClock / before.WallClock : double.NaN;
}
