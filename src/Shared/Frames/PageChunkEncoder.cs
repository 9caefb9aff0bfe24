using System.Buffers;
using Google.Protobuf;
using K4os.Compression.LZ4;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Native;

namespace McGrpc.Shared.Frames;

/// <summary>
/// Turns page ranges into PageChunk frames: zero pages become runs without
/// payload, the rest is packed into chunks of at most
/// <see cref="FrameLimits.MaxChunkRawBytes"/> and LZ4-compressed (or sent raw
/// when LZ4 does not help). Reused across epochs; not thread-safe.
/// </summary>
internal sealed class PageChunkEncoder
{
    private readonly int _pageSize;
    private readonly int _maxRawBytes;
    private readonly byte[] _scratch;
    private readonly List<PageRun> _runs = [];
    private EpochFrames? _target;
    private ContentDigest? _digest;
    private int _rawLength;

    // The run being extended: consecutive pages of one kind (zero or not).
    private bool _open;
    private ulong _openOffset;
    private uint _openCount;
    private bool _openZero;
    private int _openRawStart;

    public PageChunkEncoder(int pageSize, int maxRawBytes = FrameLimits.MaxChunkRawBytes)
    {
        if (maxRawBytes < pageSize || maxRawBytes % pageSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxRawBytes), "Chunk size must be a positive multiple of the page size.");
        }

        _pageSize = pageSize;
        _maxRawBytes = maxRawBytes;
        _scratch = new byte[maxRawBytes];
    }

    /// <summary>LZ4 acceleration: 1 is LZ4's default fast mode.</summary>
    public LZ4Level Level { get; set; } = LZ4Level.L00_FAST;

    public void Begin(EpochFrames target, ContentDigest digest)
    {
        _target = target;
        _digest = digest;
        _runs.Clear();
        _rawLength = 0;
        _open = false;
    }

    /// <summary>
    /// Adds the pages in <paramref name="pages"/> (a whole number of pages),
    /// which hold guest RAM from <paramref name="ramOffset"/> on.
    /// </summary>
    public void AddPages(ulong ramOffset, ReadOnlySpan<byte> pages)
    {
        for (var at = 0; at < pages.Length; at += _pageSize)
        {
            var offset = ramOffset + (ulong)at;
            var bytes = pages.Slice(at, _pageSize);
            var zero = !bytes.ContainsAnyExcept((byte)0);
            if (!zero && _rawLength + _pageSize > _maxRawBytes)
            {
                Flush();
            }

            if (_open && (_openZero != zero || _openOffset + ((ulong)_openCount * (ulong)_pageSize) != offset || _openCount == uint.MaxValue))
            {
                CloseRun();
            }

            if (!_open)
            {
                if (_runs.Count >= FrameLimits.MaxRunsPerChunk)
                {
                    Flush();
                }

                _open = true;
                _openOffset = offset;
                _openCount = 0;
                _openZero = zero;
                _openRawStart = _rawLength;
            }

            _openCount++;
            if (zero)
            {
                _target!.ZeroPageCount++;
            }
            else
            {
                bytes.CopyTo(_scratch.AsSpan(_rawLength));
                _rawLength += _pageSize;
            }

            _target!.PageCount++;
        }
    }

    /// <summary>Adds pages [firstPage, firstPage + pageCount) read from <paramref name="source"/> at their RAM offsets.</summary>
    public void AddPages(long firstPage, long pageCount, MappedMemory source)
    {
        // Spans are limited to 2 GiB; go in pieces of a few MiB.
        const long PiecePages = 1024;
        for (var page = firstPage; page < firstPage + pageCount; page += PiecePages)
        {
            var count = Math.Min(PiecePages, firstPage + pageCount - page);
            var offset = page * _pageSize;
            AddPages((ulong)offset, source.Read(offset, (int)(count * _pageSize)));
        }
    }

    /// <summary>Emits the chunk being built, if any.</summary>
    public void Flush()
    {
        CloseRun();
        if (_runs.Count == 0)
        {
            return;
        }

        var target = _target!;
        var chunk = new PageChunk { Epoch = target.Epoch, RawLength = (uint)_rawLength };
        chunk.Runs.AddRange(_runs);
        if (_rawLength > 0)
        {
            var raw = _scratch.AsSpan(0, _rawLength);
            var buffer = ArrayPool<byte>.Shared.Rent(LZ4Codec.MaximumOutputSize(_rawLength));
            target.Own(buffer);
            var encoded = LZ4Codec.Encode(raw, buffer, Level);
            if (encoded > 0 && encoded < _rawLength)
            {
                chunk.Codec = Codec.Lz4;
                chunk.Payload = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, encoded));
            }
            else
            {
                raw.CopyTo(buffer);
                chunk.Codec = Codec.None;
                chunk.Payload = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, _rawLength));
            }

            target.RawBytes += _rawLength;
        }
        else
        {
            chunk.Codec = Codec.None;
        }

        target.Add(new PrimaryFrame { Pages = chunk });
        target.ChunkCount++;
        _runs.Clear();
        _rawLength = 0;
    }

    private void CloseRun()
    {
        if (!_open)
        {
            return;
        }

        _runs.Add(new PageRun { Offset = _openOffset, PageCount = _openCount, Zero = _openZero });
        var bytes = _openZero ? default : _scratch.AsSpan(_openRawStart, (int)_openCount * _pageSize);
        _digest!.AppendRun(_openOffset, _openCount, _openZero, bytes);
        _open = false;
    }
}
