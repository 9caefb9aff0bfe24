namespace McGrpc.Shared.Stats;

/// <summary>A point-in-time view of <see cref="SyncProgressTracker"/>; EtaSeconds is -1 when unknown.</summary>
internal readonly record struct SyncProgressSnapshot(long BytesCopied, long RamSize, int Round, double RateMbps, double EtaSeconds, long RemainingDirtyPages, bool Finished);
