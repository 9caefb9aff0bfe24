namespace McGrpc.Shared.Frames;

/// <summary>Sizes both daemons agree on; the backup rejects anything beyond them.</summary>
internal static class FrameLimits
{
    /// <summary>Replication protocol version carried in Hello.</summary>
    public const uint ProtocolVersion = 1;

    /// <summary>Every frame stays under this size on the wire.</summary>
    public const int MaxFrameBytes = 1024 * 1024;

    /// <summary>
    /// Decoded page bytes per PageChunk. 512 KiB gives LZ4 enough context and
    /// keeps the worst-case (incompressible) frame well under <see cref="MaxFrameBytes"/>.
    /// </summary>
    public const int MaxChunkRawBytes = 512 * 1024;

    /// <summary>Runs per PageChunk; bounds the descriptor part of a frame.</summary>
    public const int MaxRunsPerChunk = 8192;

    /// <summary>Device-state bytes per DeviceStateChunk.</summary>
    public const int DeviceStateChunkBytes = 512 * 1024;

    /// <summary>Only 4 KiB guest pages are supported (x86_64 memory-backend-file on tmpfs).</summary>
    public const int PageSize = 4096;

    /// <summary>Size of a digest (XxHash128) in Commit.</summary>
    public const int DigestBytes = 16;
}
