using McGrpc.Primary.Tracking;
using McGrpc.Shared.Native;

namespace McGrpc.Tests.Tracking;

public sealed class PageRunConversionTests
{
    private const ulong Base = 0x7f00_0000_0000;
    private const int Page = 4096;

    [Fact]
    public void Scan_ranges_become_guest_page_runs_relative_to_the_mapping()
    {
        var runs = new DirtyPageRuns();
        PageRegion[] regions =
        [
            new(Base, Base + Page, 2),
            new(Base + (5 * Page), Base + (8 * Page), 2),
            new(Base + (8 * Page), Base + (9 * Page), 2), // adjacent: merged
            new(Base + (1000 * Page), Base + (1001 * Page), 2),
        ];

        UffdWpTracker.AddRegions(regions, Base, Page, runs);

        Assert.Equal([new PageRange(0, 1), new PageRange(5, 4), new PageRange(1000, 1)], runs.Ranges.ToArray());
        Assert.Equal(6, runs.PageCount);
    }

    [Fact]
    public void Scan_results_of_successive_calls_append_in_order()
    {
        var runs = new DirtyPageRuns();
        UffdWpTracker.AddRegions([new PageRegion(Base + (3 * Page), Base + (4 * Page), 2)], Base, Page, runs);
        UffdWpTracker.AddRegions([new PageRegion(Base + (4 * Page), Base + (6 * Page), 2), new PageRegion(Base + (9 * Page), Base + (10 * Page), 2)], Base, Page, runs);

        Assert.Equal([new PageRange(3, 3), new PageRange(9, 1)], runs.Ranges.ToArray());
    }

    [Fact]
    public void Host_pages_are_rounded_out_to_larger_tracking_pages_without_overlap()
    {
        var runs = new DirtyPageRuns();
        const int large = 4 * Page;
        // Host pages 1 and 3 both lie in tracking page 0; host page 4 is tracking page 1.
        UffdWpTracker.AddRegions([new PageRegion(Base + Page, Base + (2 * Page), 2), new PageRegion(Base + (3 * Page), Base + (5 * Page), 2)], Base, large, runs);

        Assert.Equal([new PageRange(0, 2)], runs.Ranges.ToArray());
    }

    [Fact]
    public void A_range_outside_the_mapping_is_rejected()
    {
        var runs = new DirtyPageRuns();
        Assert.Throws<ArgumentException>(() => UffdWpTracker.AddRegions([new PageRegion(Base - Page, Base, 2)], Base, Page, runs));
    }

    [Theory]
    [InlineData(0UL, false)]
    [InlineData((1UL << 63) | (1UL << 55) | 0x1234, true)] // present, soft-dirty, pfn
    [InlineData((1UL << 62) | (1UL << 55), true)] // swapped, soft-dirty
    [InlineData(1UL << 55, true)] // not present in a VM_SOFTDIRTY mapping
    [InlineData((1UL << 63) | (1UL << 61) | 0xabcdef, false)] // present file page, clean
    [InlineData((1UL << 63) | (1UL << 57), false)] // uffd-wp bit alone is not soft-dirty
    [InlineData((1UL << 63) | (1UL << 56), false)] // exclusively mapped, clean
    public void Soft_dirty_is_bit_55_of_a_pagemap_entry(ulong entry, bool dirty)
    {
        Assert.Equal(dirty, SoftDirtyEntries.IsSoftDirty(entry));
    }

    [Fact]
    public void Soft_dirty_entries_become_runs()
    {
        const ulong dirty = (1UL << 63) | (1UL << 55);
        const ulong clean = 1UL << 63;
        ulong[] entries = [clean, dirty, dirty, clean, clean, dirty, clean, dirty];
        var runs = new DirtyPageRuns();

        SoftDirtyEntries.AddDirtyRuns(entries, firstHostPage: 100, hostPagesPerPage: 1, runs);

        Assert.Equal([new PageRange(101, 2), new PageRange(105, 1), new PageRange(107, 1)], runs.Ranges.ToArray());
    }

    [Fact]
    public void Soft_dirty_entries_of_consecutive_reads_merge_and_round_to_tracking_pages()
    {
        const ulong dirty = 1UL << 55;
        var runs = new DirtyPageRuns();

        // Two reads of 4 host pages; tracking pages of 2 host pages.
        SoftDirtyEntries.AddDirtyRuns([0, 0, 0, dirty], firstHostPage: 0, hostPagesPerPage: 2, runs);
        SoftDirtyEntries.AddDirtyRuns([dirty, 0, 0, dirty], firstHostPage: 4, hostPagesPerPage: 2, runs);

        Assert.Equal([new PageRange(1, 3)], runs.Ranges.ToArray());
    }
}
