using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary>
/// /proc/&lt;pid&gt;/pagemap of one process, opened once: raw 64-bit entries
/// (soft-dirty, uffd-wp bits) and the PAGEMAP_SCAN ioctl that finds written
/// pages and write-protects them again in one pass.
/// </summary>
internal sealed unsafe class Pagemap : IDisposable
{
    /// <summary>PAGE_IS_WRITTEN: not write-protected by an async userfaultfd any more.</summary>
    public const ulong PageIsWritten = 1UL << 1;

    public const int EntrySoftDirtyBit = 55;
    public const int EntryUffdWpBit = 57;

    /// <summary>PM_SCAN_WP_MATCHING: write-protect the pages that are reported.</summary>
    private const ulong ScanWpMatching = 1;

    /// <summary>PM_SCAN_CHECK_WPASYNC: fail (EPERM) unless the whole range is registered for async write-protect.</summary>
    private const ulong ScanCheckWpAsync = 2;

    private const uint PagemapScanRequest = 0xC0606610;

    private readonly FileDescriptor _fd;
    private readonly PageRegion[] _regions;

    /// <param name="processId">Whose page tables to read.</param>
    /// <param name="regionCapacity">Result ranges per PAGEMAP_SCAN call; the array is allocated once.</param>
    public Pagemap(int processId, int regionCapacity = 4096)
    {
        ProcessId = processId;
        var path = $"/proc/{processId}/pagemap";
        var pathBytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* pointer = pathBytes)
        {
            var pathPointer = (IntPtr)pointer;
            _fd = new FileDescriptor((int)Errors.Retry(() => Tmds.Linux.LibC.open((byte*)pathPointer, Tmds.Linux.LibC.O_RDONLY | Tmds.Linux.LibC.O_CLOEXEC, 0), "open", path));
        }

        // Pinned once so the kernel can be handed its address on every scan.
        _regions = GC.AllocateArray<PageRegion>(regionCapacity, pinned: true);
    }

    public int ProcessId { get; }

    /// <summary>
    /// One PAGEMAP_SCAN call over [<paramref name="start"/>, <paramref name="end"/>):
    /// the ranges written since they were last protected, write-protected again
    /// (atomically per page) when <paramref name="reprotect"/> is set.
    /// </summary>
    /// <param name="start">First address, page aligned.</param>
    /// <param name="end">End address (exclusive), page aligned.</param>
    /// <param name="reprotect">Write-protect what is reported (PM_SCAN_WP_MATCHING); false only looks.</param>
    /// <param name="walkEnd">Where the kernel stopped: less than <paramref name="end"/> when the result array filled; call again from there. Always past <paramref name="start"/>: a scan that makes no progress throws, so loops over a range end.</param>
    /// <returns>The result ranges, valid until the next call.</returns>
    public ReadOnlySpan<PageRegion> ScanWritten(ulong start, ulong end, bool reprotect, out ulong walkEnd)
    {
        fixed (PageRegion* regions = _regions)
        {
            var args = new PagemapScanArgs
            {
                Size = (ulong)sizeof(PagemapScanArgs),
                Flags = (reprotect ? ScanWpMatching : 0) | ScanCheckWpAsync,
                Start = start,
                End = end,
                Vec = (ulong)regions,
                VecLength = (ulong)_regions.Length,
                CategoryMask = PageIsWritten,
                ReturnMask = PageIsWritten,
            };
            var count = LinuxSyscall.CheckedIoctl(_fd.Fd, PagemapScanRequest, &args, "ioctl(PAGEMAP_SCAN)", $"process {ProcessId}, 0x{start:x}-0x{end:x}");
            walkEnd = args.WalkEnd;
            if (walkEnd <= start && start < end)
            {
                throw new InvalidOperationException($"PAGEMAP_SCAN of process {ProcessId} made no progress at 0x{start:x} (walk_end 0x{walkEnd:x}).");
            }

            return _regions.AsSpan(0, count);
        }
    }

    /// <summary>Reads the 64-bit entries of the pages starting at <paramref name="address"/>, one per entry of <paramref name="entries"/>.</summary>
    public void ReadEntries(ulong address, int pageSize, Span<ulong> entries)
    {
        var offset = (long)(address / (ulong)pageSize) * sizeof(ulong);
        fixed (ulong* buffer = entries)
        {
            var wanted = entries.Length * sizeof(ulong);
            var done = 0;
            while (done < wanted)
            {
                var read = LinuxSyscall.Pread(_fd.Fd, (byte*)buffer + done, (nuint)(wanted - done), offset + done);
                if (read == -1)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == Errors.EINTR)
                    {
                        continue;
                    }

                    throw new NativeException("pread", errno, $"/proc/{ProcessId}/pagemap at 0x{address:x}");
                }

                if (read == 0)
                {
                    throw new NativeException("pread", Errors.EIO, $"/proc/{ProcessId}/pagemap ended at 0x{address:x}+{done / sizeof(ulong)} pages");
                }

                done += (int)read;
            }
        }
    }

    public void Dispose() => _fd.Dispose();
}
