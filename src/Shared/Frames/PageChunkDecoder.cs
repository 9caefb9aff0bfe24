using K4os.Compression.LZ4;
using McGrpc.Protos.Replication;

namespace McGrpc.Shared.Frames;

/// <summary>
/// Checks a PageChunk against the backup's RAM and decodes its payload into a
/// caller buffer. Every rule is checked before a byte is written anywhere but
/// that buffer; a violation is a <see cref="FrameFormatException"/> naming it.
/// </summary>
internal sealed class PageChunkDecoder
{
    private readonly ulong _ramSize;
    private readonly int _pageSize;

    public PageChunkDecoder(long ramSize, int pageSize)
    {
        _ramSize = (ulong)ramSize;
        _pageSize = pageSize;
    }

    /// <summary>
    /// Validates the runs and sizes of <paramref name="chunk"/> and decodes its
    /// payload into <paramref name="destination"/> (at least <c>raw_length</c> bytes).
    /// Returns the number of decoded bytes.
    /// </summary>
    public int Decode(PageChunk chunk, Span<byte> destination)
    {
        var rawLength = ValidateRuns(chunk);
        if (destination.Length < rawLength)
        {
            throw new ArgumentException("Destination is smaller than the chunk's raw length.", nameof(destination));
        }

        var payload = chunk.Payload.Span;
        if (rawLength == 0)
        {
            if (payload.Length != 0)
            {
                throw Reject(chunk, $"has {payload.Length} payload bytes but only zero runs");
            }

            return 0;
        }

        var target = destination[..rawLength];
        switch (chunk.Codec)
        {
            case Codec.None:
                if (payload.Length != rawLength)
                {
                    throw Reject(chunk, $"declares {rawLength} raw bytes but carries {payload.Length} uncompressed bytes");
                }

                payload.CopyTo(target);
                break;
            case Codec.Lz4:
                if (payload.Length == 0 || payload.Length > LZ4Codec.MaximumOutputSize(rawLength))
                {
                    throw Reject(chunk, $"has an LZ4 payload of {payload.Length} bytes, impossible for {rawLength} raw bytes");
                }

                var decoded = LZ4Codec.Decode(payload, target);
                if (decoded != rawLength)
                {
                    throw Reject(chunk, decoded < 0
                        ? "has a corrupt LZ4 payload"
                        : $"has an LZ4 payload that decodes to {decoded} bytes instead of the declared {rawLength}");
                }

                break;
            default:
                throw Reject(chunk, $"uses unknown codec {(int)chunk.Codec}");
        }

        return rawLength;
    }

    /// <summary>Checks every run and returns the decoded size the runs imply.</summary>
    public int ValidateRuns(PageChunk chunk)
    {
        if (chunk.Runs.Count == 0)
        {
            throw Reject(chunk, "has no page runs");
        }

        if (chunk.Runs.Count > FrameLimits.MaxRunsPerChunk)
        {
            throw Reject(chunk, $"has {chunk.Runs.Count} runs, more than the limit of {FrameLimits.MaxRunsPerChunk}");
        }

        ulong raw = 0;
        foreach (var run in chunk.Runs)
        {
            if (run.PageCount == 0)
            {
                throw Reject(chunk, $"has an empty run at offset {run.Offset:#,0}");
            }

            if (run.Offset % (ulong)_pageSize != 0)
            {
                throw Reject(chunk, $"has a run at offset {run.Offset:#,0}, not a multiple of the {_pageSize}-byte page size");
            }

            var length = (ulong)run.PageCount * (ulong)_pageSize;
            if (run.Offset >= _ramSize || length > _ramSize - run.Offset)
            {
                throw Reject(chunk, $"has a run of {run.PageCount} pages at offset {run.Offset:#,0} that ends beyond guest RAM ({_ramSize:#,0} bytes)");
            }

            if (!run.Zero)
            {
                raw += length;
                if (raw > FrameLimits.MaxChunkRawBytes)
                {
                    throw Reject(chunk, $"carries more than {FrameLimits.MaxChunkRawBytes} raw bytes");
                }
            }
        }

        if (raw != chunk.RawLength)
        {
            throw Reject(chunk, $"declares raw_length {chunk.RawLength} but its non-zero runs cover {raw} bytes");
        }

        return (int)raw;
    }

    private static FrameFormatException Reject(PageChunk chunk, string problem)
        => new($"Page chunk of epoch {chunk.Epoch} {problem}.");
}
