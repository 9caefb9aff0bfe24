namespace McGrpc.Primary.Output;

/// <summary>What <see cref="EpochHoldQueue.Add"/> did with a packet.</summary>
internal enum OutputAddResult
{
    /// <summary>Not holding (before the first barrier, or after a release-all): sent on at once.</summary>
    PassedThrough,

    /// <summary>Held until the ack of the epoch it belongs to.</summary>
    Held,

    /// <summary>Held and in-flight packets already fill the memory bound: dropped, the guest sees loss.</summary>
    Dropped,
}
