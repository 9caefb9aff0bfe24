using McGrpc.Protos.Control;

namespace McGrpc.Bench;

/// <summary>One part of a checkpoint's pause, read from the epoch's statistics.</summary>
internal sealed record PausePart(string Name, Func<CheckpointStats, double> Of);
