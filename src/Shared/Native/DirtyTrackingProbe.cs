using System.Runtime.InteropServices;
using Tmds.Linux;

namespace McGrpc.Shared.Native;

/// <summary>
/// Tests on this process's own memory whether the kernel mechanisms behind the
/// uffd-wp and soft-dirty trackers really work here (not the version string:
/// features can be compiled out or back-ported).
/// </summary>
internal static unsafe class DirtyTrackingProbe
{
    private const int ProbePages = 8;

    /// <summary>
    /// Async write-protect with PAGEMAP_SCAN on a shared memory mapping: protect,
    /// write two pages, the scan must return exactly those, a second scan nothing.
    /// </summary>
    /// <returns>Null when it works, else why not.</returns>
    public static string? ProbeUffdWp()
    {
        Userfaultfd userfaultfd;
        try
        {
            userfaultfd = Userfaultfd.CreateForThisProcess();
        }
        catch (NativeException e)
        {
            return e.Errno == Errors.ENOSYS ? "the kernel has no userfaultfd (CONFIG_USERFAULTFD)" : $"userfaultfd() failed: {e.Message}";
        }

        using (userfaultfd)
        {
            try
            {
                userfaultfd.Handshake(Userfaultfd.AsyncWriteProtectFeatures);
            }
            catch (NativeException e) when (e.Errno == Errors.EINVAL)
            {
                return $"the kernel lacks userfaultfd features {DescribeMissing()} (async write-protect needs Linux 6.7+)";
            }
            catch (NativeException e)
            {
                return $"UFFDIO_API failed: {e.Message}";
            }

            var pageSize = Environment.SystemPageSize;
            using var memory = MapSharedMemory((long)ProbePages * pageSize);
            var start = (ulong)memory.Address;
            var length = (ulong)memory.Length;
            memory.Write(0, (int)length).Fill(1);
            try
            {
                userfaultfd.RegisterWriteProtect(start, length);
                userfaultfd.WriteProtect(start, length, protect: true);
                using var pagemap = new Pagemap(Environment.ProcessId, regionCapacity: ProbePages);
                memory.Write(2L * pageSize, 1)[0] = 2;
                memory.Write(5L * pageSize, 1)[0] = 2;
                var first = Summarize(pagemap, start, length, pageSize);
                var second = Summarize(pagemap, start, length, pageSize);
                userfaultfd.Unregister(start, length);
                if (first != "2,5" || second != string.Empty)
                {
                    return $"PAGEMAP_SCAN reported pages [{first}] then [{second}] after writing pages 2 and 5 of a protected mapping (expected [2,5] then [])";
                }
            }
            catch (NativeException e)
            {
                return $"{e.Call} failed on a test mapping: {e.Message}";
            }
        }

        return null;
    }

    /// <summary>
    /// clear_refs 4 on this process, then a write to a test page must set bit 55
    /// of its pagemap entry.
    /// </summary>
    /// <returns>Null when it works, else why not.</returns>
    public static string? ProbeSoftDirty()
    {
        var pageSize = Environment.SystemPageSize;
        try
        {
            using var memory = MappedMemory.AllocateAnonymous(pageSize);
            using var pagemap = new Pagemap(Environment.ProcessId, regionCapacity: 1);
            Span<ulong> entry = stackalloc ulong[1];
            memory.Write(0, 1)[0] = 1;
            ClearRefs.ClearSoftDirty(Environment.ProcessId);
            pagemap.ReadEntries((ulong)memory.Address, pageSize, entry);
            var afterClear = entry[0];
            memory.Write(0, 1)[0] = 2;
            pagemap.ReadEntries((ulong)memory.Address, pageSize, entry);
            var afterWrite = entry[0];
            if (!IsSet(afterWrite, Pagemap.EntrySoftDirtyBit))
            {
                return "pagemap bit 55 stays clear after a write following clear_refs 4: the kernel is built without CONFIG_MEM_SOFT_DIRTY";
            }

            if (IsSet(afterClear, Pagemap.EntrySoftDirtyBit))
            {
                return "clear_refs 4 did not clear pagemap bit 55 of a written page";
            }
        }
        catch (McGrpcException e)
        {
            return e.Message;
        }

        return null;
    }

    /// <summary>A shared memory mapping backed by a memfd, like a guest RAM file on tmpfs.</summary>
    internal static MappedMemory MapSharedMemory(long length)
    {
        var name = "mcgrpc-probe\0"u8;
        int fd;
        fixed (byte* namePointer = name)
        {
            fd = Errors.Check(LibC.memfd_create(namePointer, LibC.MFD_CLOEXEC), "memfd_create");
        }

        try
        {
            Errors.Check(LibC.ftruncate(fd, length), "ftruncate", "memfd");
            // Mapped through /proc so the existing file-mapping code does the work.
            return MappedMemory.MapSharedFile($"/proc/self/fd/{fd}", length, writable: true);
        }
        finally
        {
            LibC.close(fd);
        }
    }

    private static string Summarize(Pagemap pagemap, ulong start, ulong length, int pageSize)
    {
        var pages = new List<ulong>();
        var cursor = start;
        while (cursor < start + length)
        {
            var regions = pagemap.ScanWritten(cursor, start + length, reprotect: true, out var walkEnd);
            foreach (var region in regions)
            {
                for (var address = region.Start; address < region.End; address += (ulong)pageSize)
                {
                    pages.Add((address - start) / (ulong)pageSize);
                }
            }

            cursor = walkEnd;
        }

        return string.Join(',', pages);
    }

    private static string DescribeMissing()
    {
        try
        {
            using var plain = Userfaultfd.CreateForThisProcess();
            var offered = plain.Handshake(0);
            var missing = Userfaultfd.AsyncWriteProtectFeatures & ~offered;
            var names = new List<string>();
            if ((missing & Userfaultfd.FeatureWpAsync) != 0)
            {
                names.Add("WP_ASYNC");
            }

            if ((missing & Userfaultfd.FeatureWpHugetlbfsShmem) != 0)
            {
                names.Add("WP_HUGETLBFS_SHMEM");
            }

            if ((missing & Userfaultfd.FeatureWpUnpopulated) != 0)
            {
                names.Add("WP_UNPOPULATED");
            }

            return names.Count > 0 ? string.Join(", ", names) : $"(offered 0x{offered:x})";
        }
        catch (NativeException e)
        {
            return $"(cannot tell: {e.Message})";
        }
    }

    private static bool IsSet(ulong entry, int bit) => (entry & (1UL << bit)) != 0;
}
