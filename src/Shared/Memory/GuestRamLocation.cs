using McGrpc.Shared.Native;

namespace McGrpc.Shared.Memory;

/// <summary>Where QEMU keeps guest RAM, as checked by GuestRamLocator.</summary>
/// <param name="MemdevId">The memory backend's QOM id (e.g. "ram0").</param>
/// <param name="Path">The backing file (mem-path).</param>
/// <param name="Size">Backend size in bytes (query-memdev).</param>
/// <param name="PageSize">Page size of the mapping.</param>
/// <param name="QemuPid">QEMU's process id.</param>
/// <param name="QemuAddress">Start of QEMU's mapping of the file, in QEMU's address space.</param>
/// <param name="File">Device and inode of the file QEMU maps.</param>
internal sealed record GuestRamLocation(string MemdevId, string Path, long Size, int PageSize, int QemuPid, ulong QemuAddress, FileIdentity File);
