using System.IO.Compression;
using McGrpc.Shared.Native;

namespace McGrpc.Tests.Tracking;

/// <summary>The kernel mechanisms behind the trackers, on this test process's own memory.</summary>
public sealed class KernelMechanismTests
{
    private static readonly int PageSize = Environment.SystemPageSize;

    [Fact]
    public void Pagemap_scan_returns_exactly_the_written_pages_then_nothing()
    {
        const int pages = 512;
        using var memory = DirtyTrackingProbe.MapSharedMemory((long)pages * PageSize);
        var start = (ulong)memory.Address;
        var length = (ulong)memory.Length;
        // Half the pages populated, half never touched (WP_UNPOPULATED must cover those).
        memory.Write(0, pages / 2 * PageSize).Fill(7);
        using var userfaultfd = Userfaultfd.CreateForThisProcess();
        userfaultfd.Handshake(Userfaultfd.AsyncWriteProtectFeatures);
        userfaultfd.RegisterWriteProtect(start, length);
        userfaultfd.WriteProtect(start, length, protect: true);
        // A small result array forces continuation from walk_end.
        using var pagemap = new Pagemap(Environment.ProcessId, regionCapacity: 3);

        int[] written = [0, 1, 2, 17, 255, 256, 300, 301, 302, 303, 511];
        foreach (var page in written)
        {
            memory.Write((long)page * PageSize + 100, 1)[0] = 1;
        }

        Assert.Equal(written, Scan(pagemap, start, length));
        Assert.Empty(Scan(pagemap, start, length));

        memory.Write(40L * PageSize, 1)[0] = 2;
        Assert.Equal([40], Scan(pagemap, start, length));
        userfaultfd.Unregister(start, length);
    }

    [Fact]
    public void Pagemap_scan_refuses_a_range_not_registered_for_async_write_protect()
    {
        using var memory = DirtyTrackingProbe.MapSharedMemory(16L * PageSize);
        using var pagemap = new Pagemap(Environment.ProcessId, regionCapacity: 4);

        var error = Assert.Throws<NativeException>(() => pagemap.ScanWritten((ulong)memory.Address, (ulong)memory.Address + (ulong)memory.Length, reprotect: true, out _));
        Assert.Equal(Errors.EPERM, error.Errno);
    }

    [Fact]
    public void Uffd_wp_probe_finds_the_mechanism_working_on_this_kernel()
    {
        Assert.Null(DirtyTrackingProbe.ProbeUffdWp());
    }

    [Fact]
    public void Soft_dirty_probe_agrees_with_the_kernel_configuration()
    {
        // This build machine's kernel has "# CONFIG_MEM_SOFT_DIRTY is not set":
        // the probe must say so. Nothing here exercises soft-dirty tracking itself.
        var reason = DirtyTrackingProbe.ProbeSoftDirty();
        var config = KernelConfig();
        if (config.Contains("CONFIG_MEM_SOFT_DIRTY=y", StringComparison.Ordinal))
        {
            Assert.Null(reason);
        }
        else if (config.Contains("# CONFIG_MEM_SOFT_DIRTY is not set", StringComparison.Ordinal))
        {
            Assert.NotNull(reason);
            Assert.Contains("CONFIG_MEM_SOFT_DIRTY", reason, StringComparison.Ordinal);
        }
        else
        {
            // Configuration unknown: whatever the verdict, a rejection must name the cause.
            Assert.True(reason is null || reason.Contains("CONFIG_MEM_SOFT_DIRTY", StringComparison.Ordinal), reason);
        }
    }

    private static int[] Scan(Pagemap pagemap, ulong start, ulong length)
    {
        var pages = new List<int>();
        var cursor = start;
        while (cursor < start + length)
        {
            var regions = pagemap.ScanWritten(cursor, start + length, reprotect: true, out var walkEnd);
            foreach (var region in regions)
            {
                for (var address = region.Start; address < region.End; address += (ulong)PageSize)
                {
                    pages.Add((int)((address - start) / (ulong)PageSize));
                }
            }

            Assert.True(walkEnd > cursor, "PAGEMAP_SCAN made no progress.");
            cursor = walkEnd;
        }

        return [.. pages];
    }

    private static string KernelConfig()
    {
        if (!File.Exists("/proc/config.gz"))
        {
            return string.Empty;
        }

        using var file = File.OpenRead("/proc/config.gz");
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        return reader.ReadToEnd();
    }
}
