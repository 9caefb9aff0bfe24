using Google.Protobuf;
using K4os.Compression.LZ4;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;
using McGrpc.Shared.Native;

namespace McGrpc.Tests.Frames;

public sealed class PageChunkCodecTests : IDisposable
{
    private const int Page = FrameLimits.PageSize;
    private const long RamSize = 64L * 1024 * 1024;
    private readonly MappedMemory _ram = MappedMemory.AllocateAnonymous(RamSize);

    public void Dispose() => _ram.Dispose();

    [Fact]
    public void Encoded_pages_decode_to_the_same_bytes_and_digest()
    {
        var random = new Random(42);
        var pages = new long[] { 0, 1, 2, 7, 100, 101, 5000, 16383 };
        foreach (var page in pages)
        {
            random.NextBytes(_ram.Write(page * Page, Page / 2));
        }

        // Page 3..6 stay zero: they must travel as a zero run.
        var frames = Encode(0, 8, 100, 2, 5000, 1, 16383, 1);
        var chunks = frames.Frames.Select(f => f.Pages).ToList();
        Assert.All(chunks, c => Assert.True(c.CalculateSize() < FrameLimits.MaxFrameBytes));

        var decoder = new PageChunkDecoder(RamSize, Page);
        var copy = MappedMemory.AllocateAnonymous(RamSize);
        var digest = new ContentDigest();
        var buffer = new byte[FrameLimits.MaxChunkRawBytes];
        foreach (var chunk in chunks)
        {
            var length = decoder.Decode(chunk, buffer);
            var position = 0;
            foreach (var run in chunk.Runs)
            {
                var bytes = run.Zero ? default : buffer.AsSpan(position, (int)run.PageCount * Page);
                digest.AppendRun(run.Offset, run.PageCount, run.Zero, bytes);
                if (!run.Zero)
                {
                    bytes.CopyTo(copy.Write((long)run.Offset, bytes.Length));
                    position += bytes.Length;
                }
            }

            Assert.Equal(length, position);
        }

        Assert.True(_ram.Read(0, (int)RamSize).SequenceEqual(copy.Read(0, (int)RamSize)));
        Assert.Equal(_expectedDigest, digest.Finish());
        Assert.Contains(chunks.SelectMany(c => c.Runs), r => r.Zero && r.Offset == 3 * Page && r.PageCount == 4);
        copy.Dispose();
    }

    [Fact]
    public void Large_runs_are_split_into_chunks_under_the_frame_limit()
    {
        var random = new Random(1);
        for (long page = 0; page < 1024; page++)
        {
            random.NextBytes(_ram.Write(page * Page, Page));
        }

        var frames = Encode(0, 1024);
        Assert.Equal(1024 * Page / FrameLimits.MaxChunkRawBytes, frames.Frames.Count);
        Assert.All(frames.Frames, f => Assert.Equal(Codec.None, f.Pages.Codec));
        Assert.All(frames.Frames, f => Assert.True(f.CalculateSize() < FrameLimits.MaxFrameBytes));
    }

    [Fact]
    public void Compressible_pages_are_sent_with_lz4()
    {
        _ram.Write(0, Page).Fill(7);
        var frames = Encode(0, 1);
        Assert.Equal(Codec.Lz4, frames.Frames[0].Pages.Codec);
        Assert.True(frames.Frames[0].Pages.Payload.Length < 100);
    }

    public static TheoryData<string, Action<PageChunk>, string> BadChunks => new()
    {
        { "offset beyond RAM", c => c.Runs[0].Offset = (ulong)RamSize, "ends beyond guest RAM" },
        { "run crossing the end of RAM", c => { c.Runs[0].Offset = (ulong)(RamSize - Page); c.Runs[0].PageCount = 2; }, "ends beyond guest RAM" },
        { "unaligned offset", c => c.Runs[0].Offset = 100, "not a multiple" },
        { "empty run", c => c.Runs[0].PageCount = 0, "empty run" },
        { "raw length disagrees with runs", c => c.RawLength += Page, "declares raw_length" },
        { "payload shorter than declared", c => c.Payload = ByteString.CopyFrom(c.Payload.Span[..^10]), "carries" },
        { "corrupt lz4", c => { c.Codec = Codec.Lz4; c.Payload = ByteString.CopyFrom(new byte[] { 0xff, 0xff, 0xff, 0xff, 0x00 }); }, "LZ4" },
        { "lz4 of the wrong size", c => { c.Codec = Codec.Lz4; c.Payload = ByteString.CopyFrom(CompressHalf()); }, "decodes to" },
        { "unknown codec", c => c.Codec = (Codec)9, "unknown codec" },
        { "no runs", c => c.Runs.Clear(), "no page runs" },
    };

    [Theory]
    [MemberData(nameof(BadChunks))]
    public void Decoder_rejects_bad_chunks_without_writing_past_its_buffer(string name, Action<PageChunk> corrupt, string expected)
    {
        var random = new Random(3);
        random.NextBytes(_ram.Write(0, Page));
        var chunk = Encode(0, 1).Frames[0].Pages.Clone();
        chunk.Codec = Codec.None;
        chunk.Payload = ByteString.CopyFrom(_ram.Read(0, Page));
        corrupt(chunk);
        var buffer = new byte[FrameLimits.MaxChunkRawBytes + 16];
        buffer.AsSpan(Page).Fill(0xEE);
        var error = Assert.Throws<FrameFormatException>(() => new PageChunkDecoder(RamSize, Page).Decode(chunk, buffer));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.True(buffer.AsSpan(Page).IndexOfAnyExcept((byte)0xEE) < 0, $"{name}: the decoder wrote past the declared pages");
    }

    private static byte[] CompressHalf()
    {
        var half = new byte[Page / 2];
        var output = new byte[LZ4Codec.MaximumOutputSize(half.Length)];
        var length = LZ4Codec.Encode(half, output, LZ4Level.L00_FAST);
        return output[..length];
    }

    private byte[] _expectedDigest = [];

    private EpochFrames Encode(params long[] rangePairs)
    {
        var frames = new EpochFrames(1, full: false);
        var encoder = new PageChunkEncoder(Page);
        var digest = new ContentDigest();
        encoder.Begin(frames, digest);
        for (var i = 0; i < rangePairs.Length; i += 2)
        {
            encoder.AddPages(rangePairs[i], rangePairs[i + 1], _ram);
        }

        encoder.Flush();
        _expectedDigest = digest.Finish();
        return frames;
    }
}
