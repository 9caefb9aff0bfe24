namespace McGrpc.Primary.Output;

/// <summary>
/// Holds the guest's network output until the checkpoint that covers it is
/// acked (invariant I1). Barrier and Release come from the epoch loop, one at
/// a time; the back end moves packets on its own threads.
/// </summary>
internal interface IOutputBuffer : IAsyncDisposable
{
    /// <summary>"userspace", "kernel" or "none".</summary>
    string Name { get; }

    /// <summary>Packets and bytes held right now.</summary>
    OutputBufferStats Stats { get; }

    /// <summary>
    /// Attaches to the guest's network path. Output passes through untouched
    /// until the first <see cref="Barrier"/>, so that a long initial copy does
    /// not hold the guest's traffic for minutes.
    /// </summary>
    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Called while the guest is stopped for epoch <paramref name="epoch"/>:
    /// every packet sent before this call belongs to that epoch or an earlier
    /// one. From the first barrier on, everything is held until released.
    /// </summary>
    void Barrier(ulong epoch);

    /// <summary>Ack of <paramref name="epoch"/>: lets out everything before its barrier.</summary>
    void Release(ulong epoch);

    /// <summary>Lets out everything held and stops holding (protection turned off or given up).</summary>
    Task ReleaseAllAndStopAsync(CancellationToken cancellationToken);
}
