using Google.Protobuf;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;

namespace McGrpc.Fuzz;

/// <summary>
/// Encodes epochs the way mc-primary does (PageChunkEncoder, ContentDigest,
/// device-state chunks, Commit), from pages of a RAM image. Chunks may be made
/// smaller than the primary's 512 KiB so that small RAM still gives epochs of
/// several chunks.
/// </summary>
internal sealed class EpochBuilder
{
    private readonly int _pageSize;
    private readonly PageChunkEncoder _encoder;
    private readonly List<PrimaryFrame> _frames = [];
    private readonly ContentDigest _digest = new();
    private EpochFrames? _batch;
    private long _pages;
    private long _zeroPages;
    private long _chunks;
    private ulong _epoch;
    private bool _full;

    public EpochBuilder(int pageSize, int chunkRawBytes = FrameLimits.MaxChunkRawBytes)
    {
        _pageSize = pageSize;
        _encoder = new PageChunkEncoder(pageSize, chunkRawBytes);
    }

    /// <summary>A whole epoch: <paramref name="pages"/> of <paramref name="image"/>, then the device state, then Commit.</summary>
    public static RecordedEpoch Build(ulong epoch, bool full, byte[] image, int pageSize, IEnumerable<int> pages, ReadOnlySpan<byte> deviceState, int chunkRawBytes = FrameLimits.MaxChunkRawBytes, int deviceChunkBytes = FrameLimits.DeviceStateChunkBytes)
    {
        var builder = new EpochBuilder(pageSize, chunkRawBytes);
        builder.Begin(epoch, full);
        builder.AddPages(image, pages);
        return builder.Finish(deviceState, deviceChunkBytes);
    }

    public void Begin(ulong epoch, bool full)
    {
        _frames.Clear();
        _digest.Reset();
        _pages = _zeroPages = _chunks = 0;
        _epoch = epoch;
        _full = full;
        StartBatch();
    }

    /// <summary>Adds pages (indexes into <paramref name="image"/>), merging consecutive ones into runs.</summary>
    public void AddPages(byte[] image, IEnumerable<int> pages)
    {
        foreach (var page in pages)
        {
            _encoder.AddPages((ulong)page * (ulong)_pageSize, image.AsSpan(page * _pageSize, _pageSize));
        }

        // One batch per call, like one pre-copy round of the primary.
        FlushBatch();
        StartBatch();
    }

    public RecordedEpoch Finish(ReadOnlySpan<byte> deviceState, int deviceChunkBytes = FrameLimits.DeviceStateChunkBytes)
    {
        FlushBatch();
        for (var offset = 0; offset < deviceState.Length; offset += deviceChunkBytes)
        {
            var length = Math.Min(deviceChunkBytes, deviceState.Length - offset);
            _frames.Add(new PrimaryFrame
            {
                DeviceState = new DeviceStateChunk { Epoch = _epoch, Offset = (ulong)offset, Data = ByteString.CopyFrom(deviceState.Slice(offset, length)) },
            });
        }

        _frames.Add(new PrimaryFrame
        {
            Commit = new Commit
            {
                Epoch = _epoch,
                Full = _full,
                PageCount = (ulong)_pages,
                ZeroPageCount = (ulong)_zeroPages,
                ChunkCount = (ulong)_chunks,
                DeviceStateSize = (ulong)deviceState.Length,
                ContentDigest = ByteString.CopyFrom(_digest.Finish()),
                StoppedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            },
        });
        return new RecordedEpoch(_epoch, _full, [.. _frames]);
    }

    private void StartBatch()
    {
        _batch = new EpochFrames(_epoch, _full);
        _encoder.Begin(_batch, _digest);
    }

    private void FlushBatch()
    {
        var batch = _batch!;
        _encoder.Flush();
        _pages += batch.PageCount;
        _zeroPages += batch.ZeroPageCount;
        _chunks += batch.ChunkCount;
        foreach (var frame in batch.Frames)
        {
            // The encoder's payloads live in pooled buffers that the batch
            // returns on dispose; a recording must own its bytes.
            var copy = frame.Clone();
            if (copy.BodyCase == PrimaryFrame.BodyOneofCase.Pages)
            {
                copy.Pages.Payload = ByteString.CopyFrom(frame.Pages.Payload.Span);
            }

            _frames.Add(copy);
        }

        batch.Dispose();
    }
}
