namespace McGrpc.Primary;

/// <summary>
/// Test-only fault injection points (in the spirit of Garnet's exception
/// injection): each makes the primary misbehave at an exact protocol moment.
/// </summary>
internal sealed class PrimaryFaultOptions
{
    /// <summary>Cut the replication stream after sending half of this epoch's frames (0 = never).</summary>
    public ulong CutStreamInEpoch { get; set; }

    /// <summary>After the cut, do not reconnect for this many ms. Default 0.</summary>
    public int ReconnectDelayAfterCutMs { get; set; }

    /// <summary>Sleep this many ms before each page or device-state frame, so that a transfer is long enough to be interrupted. Default 0.</summary>
    public int FrameDelayMs { get; set; }

    /// <summary>Sleep this many ms before each Commit frame, so that every transfer, however small, stays open that long. Default 0.</summary>
    public int CommitDelayMs { get; set; }
}
