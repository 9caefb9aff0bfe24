using McGrpc.Shared.Native;
using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Tracking;

/// <summary>
/// Finds written pages by comparing guest RAM with a shadow copy, on all cores.
/// Works on every kernel and is the oracle of the other trackers, but costs a
/// full RAM scan per harvest and one extra RAM of memory.
/// </summary>
/// <remarks>
/// Pages are reported by content, so during a pre-copy round (guest running) a
/// page could change and change back between the comparison and a later read
/// of RAM. That is why <see cref="CopySource"/> is the shadow: the engine sends
/// exactly the bytes the next comparison is made against.
/// </remarks>
internal sealed class CompareTracker : IDirtyTracker
{
    private readonly MappedMemory _guestRam;
    private readonly int _pageSize;
    private readonly long _pageCount;
    private readonly MappedMemory _shadow;
    private readonly DirtyPageRuns[] _sliceRuns;
    private readonly long _pagesPerSlice;
    private readonly ILogger _logger;

    public CompareTracker(MappedMemory guestRam, int pageSize, ILogger logger)
    {
        _guestRam = guestRam;
        _pageSize = pageSize;
        _pageCount = guestRam.Length / pageSize;
        _shadow = MappedMemory.AllocateAnonymous(guestRam.Length);

        // A few slices per core so that an unevenly dirty RAM still spreads out.
        var slices = Math.Max(1, Environment.ProcessorCount * 4);
        _pagesPerSlice = Math.Max(1, (_pageCount + slices - 1) / slices);
        _sliceRuns = new DirtyPageRuns[(int)((_pageCount + _pagesPerSlice - 1) / _pagesPerSlice)];
        for (var i = 0; i < _sliceRuns.Length; i++)
        {
            _sliceRuns[i] = new DirtyPageRuns();
        }

        _logger = logger;
    }

    public string Name => "compare";

    public MappedMemory CopySource => _shadow;

    /// <summary>The shadow only changes in <see cref="Harvest"/>, so pages can be read from it after the guest resumed.</summary>
    public bool CopySourceStableUntilHarvest => true;

    public void Start()
    {
        Parallel.For(0, _sliceRuns.Length, slice =>
        {
            var (first, count) = SliceBounds(slice);
            var offset = first * _pageSize;
            var length = count * _pageSize;
            // Copy in bounded pieces: spans are limited to 2 GiB.
            for (long done = 0; done < length; done += 1 << 30)
            {
                var piece = (int)Math.Min(1 << 30, length - done);
                _guestRam.Read(offset + done, piece).CopyTo(_shadow.Write(offset + done, piece));
            }
        });
    }

    public void Harvest(DirtyPageRuns runs)
    {
        Parallel.For(0, _sliceRuns.Length, slice =>
        {
            var found = _sliceRuns[slice];
            found.Clear();
            var (first, count) = SliceBounds(slice);
            for (var page = first; page < first + count; page++)
            {
                var offset = page * _pageSize;
                var current = _guestRam.Read(offset, _pageSize);
                var shadow = _shadow.Write(offset, _pageSize);
                if (!current.SequenceEqual(shadow))
                {
                    current.CopyTo(shadow);
                    found.Add(page, 1);
                }
            }
        });

        foreach (var found in _sliceRuns)
        {
            foreach (var range in found.Ranges)
            {
                runs.Add(range.FirstPage, range.PageCount);
            }
        }
    }

    public void Dispose() => _shadow.Dispose();

    private (long First, long Count) SliceBounds(int slice)
    {
        var first = slice * _pagesPerSlice;
        return (first, Math.Min(_pagesPerSlice, _pageCount - first));
    }
}
