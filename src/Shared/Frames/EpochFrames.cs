using System.Buffers;
using McGrpc.Protos.Replication;

namespace McGrpc.Shared.Frames;

/// <summary>
/// The encoded frames of one epoch, kept until the backup acks it so that a
/// reconnect can send them again. Owns the pooled buffers the frames point into.
/// </summary>
internal sealed class EpochFrames : IDisposable
{
    private readonly List<PrimaryFrame> _frames = [];
    private readonly List<byte[]> _rented = [];

    public EpochFrames(ulong epoch, bool full)
    {
        Epoch = epoch;
        Full = full;
    }

    public ulong Epoch { get; }

    public bool Full { get; }

    public IReadOnlyList<PrimaryFrame> Frames => _frames;

    public long PageCount { get; internal set; }

    public long ZeroPageCount { get; internal set; }

    public long ChunkCount { get; internal set; }

    /// <summary>Decoded page bytes (non-zero pages only).</summary>
    public long RawBytes { get; internal set; }

    /// <summary>Serialized size of every frame, what goes on the wire before TLS and HTTP/2 framing.</summary>
    public long WireBytes { get; private set; }

    public long DeviceStateBytes { get; internal set; }

    public Commit? Commit { get; private set; }

    public void Add(PrimaryFrame frame)
    {
        _frames.Add(frame);
        WireBytes += frame.CalculateSize();
    }

    public void AddCommit(Commit commit)
    {
        Commit = commit;
        Add(new PrimaryFrame { Commit = commit });
    }

    /// <summary>Takes ownership of a pooled buffer that a frame wraps without copying.</summary>
    public void Own(byte[] rented) => _rented.Add(rented);

    public void Dispose()
    {
        foreach (var buffer in _rented)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        _rented.Clear();
        _frames.Clear();
    }
}
