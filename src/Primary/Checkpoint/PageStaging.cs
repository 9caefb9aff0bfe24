using McGrpc.Primary.Tracking;
using McGrpc.Shared.Frames;
using McGrpc.Shared.Native;

namespace McGrpc.Primary.Checkpoint;

/// <summary>
/// Dirty pages copied out of guest RAM while the guest is stopped, packed in
/// harvest order, so that encoding and sending can run after the guest resumed.
/// The buffer is reserved at guest-RAM size and committed by the kernel only
/// as far as an epoch really uses it.
/// </summary>
internal sealed class PageStaging : IDisposable
{
    private readonly MappedMemory _buffer;
    private readonly int _pageSize;

    public PageStaging(long ramSize, int pageSize)
    {
        _buffer = MappedMemory.AllocateAnonymous(ramSize);
        _pageSize = pageSize;
    }

    /// <summary>Copies every page of <paramref name="runs"/> from <paramref name="source"/>, on all cores for large sets.</summary>
    public void CopyIn(DirtyPageRuns runs, MappedMemory source)
    {
        var ranges = runs.Ranges;
        if (runs.PageCount < 4096)
        {
            long packed = 0;
            foreach (var range in ranges)
            {
                Copy(source, range, packed);
                packed += range.PageCount;
            }

            return;
        }

        var starts = new long[ranges.Length];
        long next = 0;
        for (var i = 0; i < ranges.Length; i++)
        {
            starts[i] = next;
            next += ranges[i].PageCount;
        }

        var array = ranges.ToArray();
        Parallel.For(0, array.Length, i => Copy(source, array[i], starts[i]));
    }

    /// <summary>Feeds the staged pages of <paramref name="runs"/> to <paramref name="encoder"/> at their RAM offsets.</summary>
    public void Encode(DirtyPageRuns runs, PageChunkEncoder encoder)
    {
        long packed = 0;
        foreach (var range in runs.Ranges)
        {
            for (long done = 0; done < range.PageCount; done += PiecePages)
            {
                var count = Math.Min(PiecePages, range.PageCount - done);
                var ramOffset = (ulong)((range.FirstPage + done) * _pageSize);
                encoder.AddPages(ramOffset, _buffer.Read((packed + done) * _pageSize, (int)(count * _pageSize)));
            }

            packed += range.PageCount;
        }
    }

    public void Dispose() => _buffer.Dispose();

    private const long PiecePages = 1024;

    private void Copy(MappedMemory source, PageRange range, long packedPage)
    {
        for (long done = 0; done < range.PageCount; done += PiecePages)
        {
            var count = (int)Math.Min(PiecePages, range.PageCount - done);
            var bytes = count * _pageSize;
            source.Read((range.FirstPage + done) * _pageSize, bytes).CopyTo(_buffer.Write((packedPage + done) * _pageSize, bytes));
        }
    }
}
