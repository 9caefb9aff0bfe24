namespace McGrpc.Bench;

/// <summary>
/// One kill -9 of the primary QEMU and mc-primary. Detection, restore and
/// total are mc-backup's own numbers (detection runs from the last frame it
/// received, so it can start before the kill); kill to running is the bench's:
/// from just before the kill to the first serial output of the backup guest.
/// </summary>
internal sealed record FailoverRun(int Index, ulong Epoch, double DetectionMs, double RestoreMs, double TotalMs, double KillToRunningMs);
