namespace McGrpc.Bench;

/// <summary>Everything one report run measured.</summary>
internal sealed class ReportData
{
    public required ReportSettings Settings { get; init; }

    public required MachineInfo Machine { get; init; }

    public string Accelerator { get; set; } = "unknown";

    public string Replication { get; set; } = string.Empty;

    public string RateGuest { get; set; } = string.Empty;

    public string FailoverGuest { get; set; } = string.Empty;

    public List<FloorRun> Floor { get; } = [];

    public List<ProtectionSeries> Series { get; } = [];

    /// <summary>Why round trips were not measured, when they were not.</summary>
    public string? LatencyUnavailable { get; set; }

    public List<FailoverRun> Failovers { get; } = [];

    public List<string> Problems { get; } = [];

    public TimeSpan WallTime { get; set; }

    public string LoadAtEnd { get; set; } = string.Empty;
}
