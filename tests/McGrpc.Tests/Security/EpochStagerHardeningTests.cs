using System.IO.Hashing;
using Google.Protobuf;
using K4os.Compression.LZ4;
using McGrpc.Backup.Replication;
using McGrpc.Fuzz;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;

namespace McGrpc.Tests.Security;

/// <summary>
/// Each rule of the backup's staging and applying, broken by one frame of an
/// otherwise real epoch: the epoch is refused and guest RAM (a shared file,
/// as QEMU's) still hashes to the checkpoint it held before.
/// </summary>
public sealed class EpochStagerHardeningTests : IDisposable
{
    private const int Page = FrameLimits.PageSize;
    private const long RamSize = 4L * 1024 * 1024;
    private const int RamPages = (int)(RamSize / Page);
    private readonly ScratchRam _ram = ScratchRam.Create(RamSize);
    private readonly byte[] _checkpoint = new byte[RamSize];
    private readonly byte[] _next;

    public EpochStagerHardeningTests()
    {
        var random = new Random(7);
        for (var page = 0; page < RamPages; page += 3)
        {
            random.NextBytes(_checkpoint.AsSpan(page * Page, Page / 2));
        }

        _ram.Load(_checkpoint);
        _next = (byte[])_checkpoint.Clone();
        random.NextBytes(_next.AsSpan(10 * Page, 200 * Page));
        _next.AsSpan(300 * Page, 50 * Page).Clear();
    }

    public void Dispose() => _ram.Dispose();

    [Fact]
    public void A_valid_incremental_epoch_is_applied_at_its_commit_and_not_before()
    {
        using var stager = Stager();
        var frames = Incremental(5);
        stager.Begin(5, EpochKind.Incremental);
        foreach (var frame in frames.SkipLast(1))
        {
            Feed(stager, frame);
        }

        AssertRamIsCheckpoint("before the commit");
        stager.Verify(frames[^1].Commit);
        stager.Apply();
        Assert.True(_ram.Bytes.SequenceEqual(_next));
    }

    public static TheoryData<string, Action<List<PrimaryFrame>>, string> BrokenEpochs => new()
    {
        { "run beyond RAM", f => Chunk(f, 1).Runs[0].Offset = RamSize, "ends beyond guest RAM" },
        { "run crossing the end of RAM", f => { var r = Chunk(f, 1).Runs[0]; r.Offset = RamSize - Page; r.PageCount = 3; }, "ends beyond guest RAM" },
        { "unaligned run", f => Chunk(f, 1).Runs[0].Offset += 512, "not a multiple" },
        { "raw length larger than the runs", f => Chunk(f, 1).RawLength += Page, "declares raw_length" },
        { "payload shorter than declared", f => { var c = Chunk(f, 1); c.Codec = Codec.None; c.Payload = ByteString.CopyFrom(new byte[c.RawLength - 1]); }, "uncompressed bytes" },
        { "LZ4 payload decoding short", f => { var c = Chunk(f, 1); c.Codec = Codec.Lz4; c.Payload = Lz4(new byte[c.RawLength - Page]); }, "decodes to" },
        { "corrupt LZ4", f => { var c = Chunk(f, 1); c.Codec = Codec.Lz4; c.Payload = ByteString.CopyFrom([0xF0, 0xFF, 0xFF, 0xFF, 0x01]); }, "LZ4" },
        { "commit digest", f => f[^1].Commit.ContentDigest = ByteString.CopyFrom(new byte[16]), "content digest differs" },
        { "commit page count", f => f[^1].Commit.PageCount++, "page_count" },
        { "commit device-state size", f => f[^1].Commit.DeviceStateSize--, "device_state_size" },
        { "chunk dropped", f => f.RemoveAt(1), "chunk_count" },
        { "chunks reordered", f => (f[0], f[1]) = (f[1], f[0]), "content digest differs" },
        { "frame of another epoch", f => Chunk(f, 1).Epoch++, "while epoch 5 is open" },
        { "device-state chunk out of order", f => f.First(x => x.BodyCase == PrimaryFrame.BodyOneofCase.DeviceState).DeviceState.Offset = 100, "expected 0" },
        { "commit says full copy", f => f[^1].Commit.Full = true, "full=True" },
    };

    [Theory]
    [MemberData(nameof(BrokenEpochs))]
    public void A_broken_incremental_epoch_is_refused_and_nothing_of_it_reaches_ram(string name, Action<List<PrimaryFrame>> corrupt, string says)
    {
        using var stager = Stager();
        var frames = Incremental(5);
        corrupt(frames);
        var error = Assert.Throws<FrameFormatException>(() => FeedEpoch(stager, 5, EpochKind.Incremental, frames));
        Assert.True(error.Message.Contains(says, StringComparison.Ordinal), $"{name}: {error.Message}");
        stager.Discard();
        AssertRamIsCheckpoint(name);
    }

    [Fact]
    public void Staging_is_bounded_by_the_option()
    {
        using var stager = new EpochStager(_ram.Ram, maxStagingBytes: 64 * 1024, maxDeviceStateBytes: 1024 * 1024);
        var error = Assert.Throws<FrameFormatException>(() => FeedEpoch(stager, 5, EpochKind.Incremental, Incremental(5)));
        Assert.Contains("staging limit", error.Message, StringComparison.Ordinal);
        AssertRamIsCheckpoint("staging limit");
    }

    [Fact]
    public void Staging_is_bounded_by_ram_size()
    {
        using var stager = new EpochStager(_ram.Ram, maxStagingBytes: 1L << 40, maxDeviceStateBytes: 1024 * 1024);
        Assert.Equal(RamSize, stager.StagingCapacity);
    }

    [Fact]
    public void An_incremental_epoch_may_not_send_more_pages_than_ram_has()
    {
        using var stager = Stager();
        stager.Begin(5, EpochKind.Incremental);
        var zeroRuns = new PageChunk { Epoch = 5, Codec = Codec.None };
        zeroRuns.Runs.Add(new PageRun { Offset = 0, PageCount = RamPages, Zero = true });
        stager.AddPages(zeroRuns);
        var error = Assert.Throws<FrameFormatException>(() => stager.AddPages(zeroRuns));
        Assert.Contains("an incremental epoch sends each page at most once", error.Message, StringComparison.Ordinal);
        stager.Discard();
        AssertRamIsCheckpoint("page bound");
    }

    [Fact]
    public void A_full_copy_may_not_send_ram_more_often_than_the_pass_limit()
    {
        using var stager = new EpochStager(_ram.Ram, 0, 1024 * 1024, maxFullCopyPasses: 2);
        stager.Begin(9, EpochKind.Full);
        var all = new PageChunk { Epoch = 9, Codec = Codec.None };
        all.Runs.Add(new PageRun { Offset = 0, PageCount = RamPages, Zero = true });
        stager.AddPages(all);
        stager.AddPages(all);
        var error = Assert.Throws<FrameFormatException>(() => stager.AddPages(all));
        Assert.Contains("MaxFullCopyPasses", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Device_state_is_bounded()
    {
        using var stager = new EpochStager(_ram.Ram, 0, maxDeviceStateBytes: 1000);
        stager.Begin(5, EpochKind.Incremental);
        stager.AddDeviceState(new DeviceStateChunk { Epoch = 5, Offset = 0, Data = ByteString.CopyFrom(new byte[600]) });
        var error = Assert.Throws<FrameFormatException>(() => stager.AddDeviceState(new DeviceStateChunk { Epoch = 5, Offset = 600, Data = ByteString.CopyFrom(new byte[600]) }));
        Assert.Contains("MaxDeviceStateBytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_full_copy_that_leaves_pages_unsent_is_refused()
    {
        using var stager = Stager();
        var frames = EpochBuilder.Build(9, full: true, _next, Page, Enumerable.Range(0, RamPages - 1), new byte[1000]).Frames.ToList();
        var error = Assert.Throws<FrameFormatException>(() => FeedEpoch(stager, 9, EpochKind.Full, frames));
        Assert.Contains($"sent {RamPages - 1:#,0} of the {RamPages:#,0} pages", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_full_copy_refused_before_its_first_write_keeps_the_checkpoint()
    {
        using var stager = Stager();
        var frames = EpochBuilder.Build(9, full: true, _next, Page, Enumerable.Range(0, RamPages), new byte[1000]).Frames.ToList();
        Chunk(frames, 0).Runs[0].Offset = RamSize;
        var checkpointDropped = false;
        stager.Begin(9, EpochKind.Full, () => checkpointDropped = true);
        Assert.Throws<FrameFormatException>(() => Feed(stager, frames[0]));
        Assert.False(checkpointDropped);
        Assert.False(stager.RamTouched);
        AssertRamIsCheckpoint("refused full copy");
    }

    [Fact]
    public void A_full_copy_drops_the_checkpoint_just_before_its_first_write()
    {
        using var stager = Stager();
        var frames = EpochBuilder.Build(9, full: true, _next, Page, Enumerable.Range(0, RamPages), new byte[1000]).Frames.ToList();
        var ramAtDrop = Array.Empty<byte>();
        stager.Begin(9, EpochKind.Full, () => ramAtDrop = XxHash128.Hash(_ram.Bytes));
        FeedEpoch(stager, 9, EpochKind.Full, frames, begin: false);
        Assert.Equal(XxHash128.Hash(_checkpoint), ramAtDrop);
        Assert.True(_ram.Bytes.SequenceEqual(_next));
    }

    private EpochStager Stager() => new(_ram.Ram, 0, 1024 * 1024);

    /// <summary>Epoch <paramref name="epoch"/> taking RAM from the checkpoint to <see cref="_next"/>, in 64 KiB chunks.</summary>
    private List<PrimaryFrame> Incremental(ulong epoch)
    {
        var pages = Enumerable.Range(0, RamPages).Where(p => !_checkpoint.AsSpan(p * Page, Page).SequenceEqual(_next.AsSpan(p * Page, Page)));
        return EpochBuilder.Build(epoch, full: false, _next, Page, pages, new byte[3000], chunkRawBytes: 64 * 1024, deviceChunkBytes: 1000).Frames.ToList();
    }

    private static void FeedEpoch(EpochStager stager, ulong epoch, EpochKind kind, List<PrimaryFrame> frames, bool begin = true)
    {
        if (begin)
        {
            stager.Begin(epoch, kind);
        }

        foreach (var frame in frames)
        {
            Feed(stager, frame);
        }
    }

    private static void Feed(EpochStager stager, PrimaryFrame frame)
    {
        switch (frame.BodyCase)
        {
            case PrimaryFrame.BodyOneofCase.Pages:
                stager.AddPages(frame.Pages);
                break;
            case PrimaryFrame.BodyOneofCase.DeviceState:
                stager.AddDeviceState(frame.DeviceState);
                break;
            case PrimaryFrame.BodyOneofCase.Commit:
                stager.Verify(frame.Commit);
                if (!stager.Full)
                {
                    stager.Apply();
                }

                break;
        }
    }

    private static PageChunk Chunk(List<PrimaryFrame> frames, int index)
        => frames.Where(f => f.BodyCase == PrimaryFrame.BodyOneofCase.Pages).ElementAt(index).Pages;

    private static ByteString Lz4(byte[] raw)
    {
        var output = new byte[LZ4Codec.MaximumOutputSize(raw.Length)];
        return ByteString.CopyFrom(output, 0, LZ4Codec.Encode(raw, output, LZ4Level.L00_FAST));
    }

    private void AssertRamIsCheckpoint(string when)
    {
        Assert.True(XxHash128.Hash(_ram.Bytes).AsSpan().SequenceEqual(XxHash128.Hash(_checkpoint)), $"guest RAM changed: {when}");
        Assert.True(_ram.CanaryIntact(), "something wrote past the end of guest RAM");
    }
}
