using McGrpc.Primary.Engine;
using Microsoft.Extensions.Logging;

namespace McGrpc.Primary;

/// <summary>mc-primary's log messages; event ids 100-199.</summary>
internal static partial class PrimaryLog
{
    [LoggerMessage(100, LogLevel.Information, "Ready: VM '{VmId}', guest RAM {RamFile} ({RamMiB} MiB) of QEMU pid {QemuPid}, {Qemu}")]
    public static partial void Ready(ILogger logger, string vmId, string ramFile, long ramMiB, int qemuPid, string qemu);

    [LoggerMessage(101, LogLevel.Information, "State {Previous} -> {State}: {Reason}")]
    public static partial void StateChanged(ILogger logger, PrimaryState previous, PrimaryState state, string reason);

    [LoggerMessage(102, LogLevel.Warning, "State {Previous} -> {State}: {Reason}")]
    public static partial void StateChangedLoud(ILogger logger, PrimaryState previous, PrimaryState state, string reason);

    [LoggerMessage(103, LogLevel.Critical, "mc-primary cannot continue: {Reason}")]
    public static partial void Fatal(ILogger logger, string reason, Exception exception);

    [LoggerMessage(104, LogLevel.Information, "Dirty tracker: {Tracker} ({Reason})")]
    public static partial void TrackerChosen(ILogger logger, string tracker, string reason);

    [LoggerMessage(105, LogLevel.Debug, "Epoch {Epoch}: pause {PauseMs:F2} ms (harvest {HarvestMs:F2} ms, device state {DeviceStateMs:F2} ms), {DirtyPages} dirty pages, {WireBytes} bytes")]
    public static partial void EpochDone(ILogger logger, ulong epoch, double pauseMs, double harvestMs, double deviceStateMs, long dirtyPages, long wireBytes);

    [LoggerMessage(106, LogLevel.Information, "Initial copy: {CopiedMiB} of {RamMiB} MiB, round {Round}, {RateMbps:F0} MB/s, about {EtaSeconds:F0} s left")]
    public static partial void SyncProgress(ILogger logger, long copiedMiB, long ramMiB, int round, double rateMbps, double etaSeconds);

    [LoggerMessage(107, LogLevel.Information, "Initial copy sent as epoch {Epoch}: {Pages} pages, {WireBytes} bytes on the wire, {Seconds:F1} s")]
    public static partial void FullCopySent(ILogger logger, ulong epoch, long pages, long wireBytes, double seconds);

    [LoggerMessage(108, LogLevel.Information, "Backup acked full copy epoch {Epoch}: the VM is protected")]
    public static partial void FullCopyAcked(ILogger logger, ulong epoch);

    [LoggerMessage(109, LogLevel.Warning, "Cannot reach the backup: {Reason}")]
    public static partial void ConnectFailed(ILogger logger, string reason);

    [LoggerMessage(110, LogLevel.Warning, "The backup holds checkpoint {Epoch} that cannot be continued from here: copying all RAM again; the VM is NOT protected until that copy is acked")]
    public static partial void ResyncOverCheckpoint(ILogger logger, ulong epoch);

    [LoggerMessage(111, LogLevel.Information, "Replication resumed after epoch {Epoch}: {Resent} epochs sent again, {DownMs:F0} ms without a backup")]
    public static partial void Resumed(ILogger logger, ulong epoch, int resent, double downMs);

    [LoggerMessage(112, LogLevel.Error, "Backup unreachable for {TimeoutMs} ms: releasing held output and running UNPROTECTED. If the backup is alive and only the link failed, both copies of the VM may now run (split brain)")]
    public static partial void RunningUnprotected(ILogger logger, int timeoutMs);

    [LoggerMessage(113, LogLevel.Critical, "The backup has taken over the VM ({Reason}); stopping this copy so that two never run")]
    public static partial void Fenced(ILogger logger, string reason);

    [LoggerMessage(114, LogLevel.Error, "Could not stop the fenced VM: {Reason}")]
    public static partial void FenceStopFailed(ILogger logger, string reason);

    [LoggerMessage(115, LogLevel.Error, "Protection failed: {Reason}")]
    public static partial void ProtectionFailed(ILogger logger, string reason, Exception exception);

    [LoggerMessage(116, LogLevel.Error, "Epoch {Epoch} failed inside the pause; resuming the guest")]
    public static partial void EpochFailedResuming(ILogger logger, ulong epoch);

    [LoggerMessage(117, LogLevel.Critical, "Could not resume the guest after epoch {Epoch} failed: {Reason}")]
    public static partial void ResumeFailed(ILogger logger, ulong epoch, string reason);

    [LoggerMessage(118, LogLevel.Debug, "VM is {Status}, not running: no checkpoint this time")]
    public static partial void SkippedNotRunning(ILogger logger, string status);

    [LoggerMessage(119, LogLevel.Error, "Digest mode: the backup did not confirm RAM digest of epoch {Epoch}")]
    public static partial void DigestNotVerified(ILogger logger, ulong epoch);

    [LoggerMessage(120, LogLevel.Information, "The guest powered itself off: protection ends without failover")]
    public static partial void GuestShutdown(ILogger logger);

    [LoggerMessage(121, LogLevel.Error, "QEMU is gone ({Reason})")]
    public static partial void QemuGone(ILogger logger, string reason);

    [LoggerMessage(122, LogLevel.Warning, "Closing the replication stream failed: {Reason}")]
    public static partial void LinkCloseFailed(ILogger logger, string reason);

    [LoggerMessage(123, LogLevel.Warning, "FAULT INJECTION: cutting the replication stream in epoch {Epoch} after {Sent} of {Total} frames")]
    public static partial void FaultStreamCut(ILogger logger, ulong epoch, int sent, int total);

    [LoggerMessage(124, LogLevel.Information, "Control: {Change}")]
    public static partial void ControlChange(ILogger logger, string change);
}
