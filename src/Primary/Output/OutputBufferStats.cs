namespace McGrpc.Primary.Output;

/// <summary>What an output buffer holds now, has let out in total, and has dropped at its bound.</summary>
internal readonly record struct OutputBufferStats(long HeldPackets, long HeldBytes, long ReleasedPackets, long ReleasedBytes, long DroppedPackets = 0);
