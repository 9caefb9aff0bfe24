namespace McGrpc.Primary.Tracking;

/// <summary>Which dirty tracker to use: the best one that works (<see cref="Auto"/>) or a forced one.</summary>
internal enum DirtyTrackerMode
{
    /// <summary>uffd-wp, else soft-dirty, else compare, each tested before it is chosen.</summary>
    Auto,

    /// <summary>Async write-protect userfaultfd injected into QEMU (Linux 6.7+).</summary>
    UffdWp,

    /// <summary>Soft-dirty bits of QEMU's pagemap (CONFIG_MEM_SOFT_DIRTY).</summary>
    SoftDirty,

    /// <summary>Shadow copy and page comparison; works everywhere.</summary>
    Compare,
}
