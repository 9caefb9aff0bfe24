using McGrpc.Shared.Native;

namespace McGrpc.Primary.Tracking;

/// <summary>What the trackers need to know about the protected VM.</summary>
/// <param name="QemuPid">The QEMU process.</param>
/// <param name="RamAddress">Start of the guest-RAM mapping in QEMU's address space (/proc/&lt;pid&gt;/maps).</param>
/// <param name="RamLength">Length of the guest RAM in bytes.</param>
/// <param name="PageSize">Page size of the dirty runs (normally the host page size).</param>
/// <param name="GuestRam">This daemon's read-only mapping of the same RAM file.</param>
/// <param name="HasRamDiscardingDevice">
/// The VM has a virtio-balloon or virtio-mem device: RAM it discards changes
/// without a write, which uffd-wp and soft-dirty cannot see.
/// </param>
internal sealed record DirtyTrackerTarget(int QemuPid, ulong RamAddress, long RamLength, int PageSize, MappedMemory GuestRam, bool HasRamDiscardingDevice);
