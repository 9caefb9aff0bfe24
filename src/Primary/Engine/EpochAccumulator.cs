using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;

namespace McGrpc.Primary.Engine;

/// <summary>
/// Counts and digests everything sent for one epoch, across however many
/// batches it takes (a full copy is sent in many), and builds its Commit.
/// </summary>
internal sealed class EpochAccumulator
{
    private readonly ContentDigest _digest = new();

    public EpochAccumulator(ulong epoch, bool full)
    {
        Epoch = epoch;
        Full = full;
    }

    public ulong Epoch { get; }

    public bool Full { get; }

    public ContentDigest Digest => _digest;

    public long PageCount { get; private set; }

    public long ZeroPageCount { get; private set; }

    public long ChunkCount { get; private set; }

    public long RawBytes { get; private set; }

    public long WireBytes { get; private set; }

    /// <summary>Adds a batch's counts once it is complete.</summary>
    public void Add(EpochFrames batch)
    {
        PageCount += batch.PageCount;
        ZeroPageCount += batch.ZeroPageCount;
        ChunkCount += batch.ChunkCount;
        RawBytes += batch.RawBytes;
        WireBytes += batch.WireBytes;
    }

    public Commit BuildCommit(long deviceStateSize, byte[]? ramDigest, long stoppedAtUnixMs)
    {
        var commit = new Commit
        {
            Epoch = Epoch,
            Full = Full,
            PageCount = (ulong)PageCount,
            ZeroPageCount = (ulong)ZeroPageCount,
            ChunkCount = (ulong)ChunkCount,
            DeviceStateSize = (ulong)deviceStateSize,
            ContentDigest = Google.Protobuf.ByteString.CopyFrom(_digest.Finish()),
            StoppedAtUnixMs = stoppedAtUnixMs,
        };
        if (ramDigest is not null)
        {
            commit.RamDigest = Google.Protobuf.ByteString.CopyFrom(ramDigest);
        }

        return commit;
    }
}
