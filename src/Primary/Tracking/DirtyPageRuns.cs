namespace McGrpc.Primary.Tracking;

/// <summary>
/// The dirty set of one harvest: ascending, non-overlapping page ranges,
/// adjacent ranges merged. Reused across epochs so the hot path does not allocate.
/// </summary>
internal sealed class DirtyPageRuns
{
    private PageRange[] _ranges = new PageRange[1024];

    public int RangeCount { get; private set; }

    public long PageCount { get; private set; }

    public ReadOnlySpan<PageRange> Ranges => _ranges.AsSpan(0, RangeCount);

    public void Clear()
    {
        RangeCount = 0;
        PageCount = 0;
    }

    /// <summary>
    /// Adds the pages [<paramref name="firstPage"/>, <paramref name="endPage"/>)
    /// that the last range does not cover yet: with pages larger than the
    /// host's, two host ranges can touch one page.
    /// </summary>
    public void AddCovering(long firstPage, long endPage)
    {
        if (RangeCount > 0)
        {
            firstPage = Math.Max(firstPage, _ranges[RangeCount - 1].EndPage);
        }

        Add(firstPage, endPage - firstPage);
    }

    /// <summary>Appends a range; ranges must come in ascending order.</summary>
    public void Add(long firstPage, long pageCount)
    {
        if (pageCount <= 0)
        {
            return;
        }

        if (RangeCount > 0)
        {
            ref var last = ref _ranges[RangeCount - 1];
            if (firstPage < last.EndPage)
            {
                throw new ArgumentException($"Page {firstPage} is before the end of the previous range ({last.EndPage}); ranges must ascend.", nameof(firstPage));
            }

            if (firstPage == last.EndPage)
            {
                last = last with { PageCount = last.PageCount + pageCount };
                PageCount += pageCount;
                return;
            }
        }

        if (RangeCount == _ranges.Length)
        {
            Array.Resize(ref _ranges, _ranges.Length * 2);
        }

        _ranges[RangeCount++] = new PageRange(firstPage, pageCount);
        PageCount += pageCount;
    }

    /// <summary>Replaces the contents with every page of [0, pageCount).</summary>
    public void SetAll(long pageCount)
    {
        Clear();
        Add(0, pageCount);
    }
}
