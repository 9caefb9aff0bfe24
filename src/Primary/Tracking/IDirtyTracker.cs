using McGrpc.Shared.Native;

namespace McGrpc.Primary.Tracking;

/// <summary>
/// Finds the guest pages written since the previous harvest. One instance per
/// protected VM; all calls come from the epoch loop, one at a time.
/// </summary>
internal interface IDirtyTracker : IDisposable
{
    /// <summary>"uffd-wp", "soft-dirty" or "compare".</summary>
    string Name { get; }

    /// <summary>
    /// Where the engine copies reported pages from. Guest RAM for trackers that
    /// see writes; the tracker's snapshot for one that compares contents, so that
    /// what is sent is exactly what the next comparison is made against.
    /// </summary>
    MappedMemory CopySource { get; }

    /// <summary>
    /// True when <see cref="CopySource"/> does not change until the next
    /// <see cref="Harvest"/>: the engine may then encode pages after resuming
    /// the guest instead of copying them out during the pause.
    /// </summary>
    bool CopySourceStableUntilHarvest => false;

    /// <summary>
    /// False when a harvest can lose writes that race with it while the guest
    /// runs (soft-dirty reads, then clears, the bits in two steps; uffd-wp's
    /// PAGEMAP_SCAN races guest writes on Linux 6.18). The initial copy's
    /// pre-copy rounds then harvest inside a brief stop.
    /// </summary>
    bool HarvestExactWhileRunning => true;

    /// <summary>
    /// Arms tracking. Writes from now on are reported by the next
    /// <see cref="Harvest"/>; the caller treats everything before as dirty
    /// (the initial full copy reads all pages from <see cref="CopySource"/> after this call).
    /// </summary>
    void Start();

    /// <summary>
    /// Adds to <paramref name="runs"/> every page written since the previous
    /// harvest (or <see cref="Start"/>) and re-arms those pages. Runs while the
    /// guest is stopped (an epoch) or running (a pre-copy round).
    /// </summary>
    void Harvest(DirtyPageRuns runs);
}
