namespace McGrpc.Backup.Engine;

/// <summary>
/// A failover's timing: detection (last frame from the primary to declared
/// dead), restore (migrate-incoming to a running guest) and the total from the
/// last frame to running, in milliseconds.
/// </summary>
internal sealed record FailoverTiming(double DetectionMs, double RestoreMs, double TotalMs);
