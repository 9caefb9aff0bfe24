namespace McGrpc.Primary.Output;

/// <summary>What an output buffer holds now and has let out in total.</summary>
internal readonly record struct OutputBufferStats(long HeldPackets, long HeldBytes, long ReleasedPackets, long ReleasedBytes);
