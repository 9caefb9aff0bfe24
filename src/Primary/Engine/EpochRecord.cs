namespace McGrpc.Primary.Engine;

/// <summary>The numbers of one checkpoint; times in milliseconds.</summary>
internal sealed class EpochRecord
{
    public ulong Epoch { get; init; }

    public bool Full { get; init; }

    /// <summary>Timestamp (Stopwatch ticks) of the stop command.</summary>
    public long StoppedAt { get; init; }

    /// <summary>Since the previous stop.</summary>
    public double IntervalMs { get; init; }

    /// <summary>stop..cont: what the guest feels.</summary>
    public double PauseMs { get; set; }

    public double StopMs { get; set; }

    public double HarvestMs { get; set; }

    public double CopyMs { get; set; }

    public double DigestMs { get; set; }

    public double DeviceStateMs { get; set; }

    public double ContMs { get; set; }

    public double EncodeMs { get; set; }

    public double TransmitMs { get; set; }

    public double AckLatencyMs { get; set; }

    public long DirtyPages { get; set; }

    public long RawBytes { get; set; }

    public long WireBytes { get; set; }

    public long DeviceStateBytes { get; set; }
}
