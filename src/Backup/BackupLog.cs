using McGrpc.Backup.Engine;
using Microsoft.Extensions.Logging;

namespace McGrpc.Backup;

/// <summary>mc-backup's log messages; event ids 200-299.</summary>
internal static partial class BackupLog
{
    [LoggerMessage(200, LogLevel.Information, "Ready: VM '{VmId}', guest RAM {RamFile} ({RamMiB} MiB) of QEMU pid {QemuPid}, failover policy {Policy}")]
    public static partial void Ready(ILogger logger, string vmId, string ramFile, long ramMiB, int qemuPid, string policy);

    [LoggerMessage(201, LogLevel.Information, "State {Previous} -> {State}: {Reason}")]
    public static partial void StateChanged(ILogger logger, BackupState previous, BackupState state, string reason);

    [LoggerMessage(202, LogLevel.Warning, "State {Previous} -> {State}: {Reason}")]
    public static partial void StateChangedLoud(ILogger logger, BackupState previous, BackupState state, string reason);

    [LoggerMessage(203, LogLevel.Critical, "mc-backup cannot continue: {Reason}")]
    public static partial void Fatal(ILogger logger, string reason, Exception exception);

    [LoggerMessage(204, LogLevel.Information, "Primary session {Session} connected (resumable {Resumable}, last applied epoch {Epoch})")]
    public static partial void SessionOpened(ILogger logger, string session, bool resumable, ulong epoch);

    [LoggerMessage(205, LogLevel.Debug, "Applied epoch {Epoch}: {Pages} pages in {ApplyMs:F2} ms")]
    public static partial void EpochApplied(ILogger logger, ulong epoch, ulong pages, double applyMs);

    [LoggerMessage(206, LogLevel.Information, "Applied full copy epoch {Epoch} ({Pages} pages): the VM can now be resumed here")]
    public static partial void FullCopyApplied(ILogger logger, ulong epoch, ulong pages);

    [LoggerMessage(207, LogLevel.Error, "Frame rejected, stream closed, guest RAM untouched by it: {Reason}")]
    public static partial void FrameRejected(ILogger logger, string reason);

    [LoggerMessage(208, LogLevel.Error, "{Reason}")]
    public static partial void HelloRefused(ILogger logger, string reason);

    [LoggerMessage(209, LogLevel.Warning, "Discarded partial epoch {Epoch} ({Pages} pages received); the checkpoint before it is kept")]
    public static partial void PartialEpochDiscarded(ILogger logger, ulong epoch, long pages);

    [LoggerMessage(210, LogLevel.Warning, "Discarding checkpoint {Epoch}: the primary starts a full copy (epoch {NewEpoch}); nothing can be resumed until it is applied")]
    public static partial void CheckpointDiscardedForResync(ILogger logger, ulong epoch, ulong newEpoch);

    [LoggerMessage(211, LogLevel.Critical, "DIGEST MISMATCH after applying epoch {Epoch}: primary {Expected}, backup {Actual}; differing 16 MiB slices at RAM offsets {Slices}")]
    public static partial void DigestMismatch(ILogger logger, ulong epoch, string expected, string actual, string slices);

    [LoggerMessage(212, LogLevel.Information, "The primary ended protection: {Reason}; no failover will follow")]
    public static partial void Goodbye(ILogger logger, string reason);

    [LoggerMessage(213, LogLevel.Warning, "Replication stream lost: {Reason}")]
    public static partial void StreamLost(ILogger logger, string reason);

    [LoggerMessage(214, LogLevel.Error, "Primary lost ({Reason}) before the first checkpoint was applied: nothing to resume; the backup QEMU stays paused")]
    public static partial void NothingToResume(ILogger logger, string reason);

    [LoggerMessage(215, LogLevel.Error, "Primary declared dead: {Reason} (detection {DetectionMs:F0} ms after its last frame); last checkpoint {Epoch}; policy {Policy}")]
    public static partial void PrimaryDead(ILogger logger, string reason, double detectionMs, ulong epoch, string policy);

    [LoggerMessage(216, LogLevel.Warning, "FAILED OVER: the VM runs here from checkpoint {Epoch}; detection {DetectionMs:F1} ms, restore {RestoreMs:F1} ms, last frame to running {TotalMs:F1} ms")]
    public static partial void FailedOver(ILogger logger, ulong epoch, double detectionMs, double restoreMs, double totalMs);

    [LoggerMessage(217, LogLevel.Critical, "Failover failed: {Reason}")]
    public static partial void FailoverFailed(ILogger logger, string reason, Exception exception);

    [LoggerMessage(218, LogLevel.Error, "{Reason}")]
    public static partial void QemuGone(ILogger logger, string reason);

    [LoggerMessage(219, LogLevel.Information, "Failover policy set to {Policy}")]
    public static partial void PolicyChanged(ILogger logger, string policy);

    [LoggerMessage(220, LogLevel.Information, "Receiving initial copy: {CopiedMiB} of {RamMiB} MiB, {RateMbps:F0} MB/s")]
    public static partial void SyncProgress(ILogger logger, long copiedMiB, long ramMiB, double rateMbps);
}
