using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Tracking;

/// <summary>Log events of the dirty trackers and their selection (ids 2000-2099).</summary>
internal static partial class TrackingLog
{
    [LoggerMessage(EventId = 2000, Level = LogLevel.Information, Message = "Dirty tracker {Tracker} selected (option {Option}) in {ElapsedMs:0.0} ms")]
    public static partial void TrackerSelected(ILogger logger, string tracker, string option, double elapsedMs);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Dirty tracker {Tracker} not used: {Reason}")]
    public static partial void TrackerRejected(ILogger logger, string tracker, string reason);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Error, Message = "Dirty tracker {Tracker} was forced but does not work here: {Reason}")]
    public static partial void ForcedTrackerUnavailable(ILogger logger, string tracker, string reason);

    [LoggerMessage(EventId = 2010, Level = LogLevel.Information, Message = "uffd-wp: userfaultfd injected into QEMU {Pid} through thread {ThreadId} in {ElapsedMs:0.0} ms ({Skipped} threads skipped); QEMU holds no copy")]
    public static partial void UffdInjected(ILogger logger, int pid, int threadId, double elapsedMs, int skipped);

    [LoggerMessage(EventId = 2011, Level = LogLevel.Debug, Message = "uffd-wp: skipped a thread of QEMU {Pid}: {Reason}")]
    public static partial void UffdThreadSkipped(ILogger logger, int pid, string reason);

    [LoggerMessage(EventId = 2012, Level = LogLevel.Debug, Message = "uffd-wp: registered QEMU {Pid} range 0x{Address:x}+{Length} for async write-protect (kernel features 0x{Features:x})")]
    public static partial void UffdRegistered(ILogger logger, int pid, ulong address, long length, ulong features);

    [LoggerMessage(EventId = 2013, Level = LogLevel.Debug, Message = "uffd-wp: write-protected all {Pages} pages in {ElapsedMs:0.000} ms")]
    public static partial void UffdArmed(ILogger logger, long pages, double elapsedMs);

    [LoggerMessage(EventId = 2014, Level = LogLevel.Trace, Message = "uffd-wp: harvest {Pages} pages in {Ranges} ranges, {Calls} PAGEMAP_SCAN calls, {ElapsedMs:0.000} ms")]
    public static partial void UffdHarvested(ILogger logger, long pages, int ranges, int calls, double elapsedMs);

    [LoggerMessage(EventId = 2015, Level = LogLevel.Information, Message = "uffd-wp: released QEMU {Pid}; no write-protection left on its RAM")]
    public static partial void UffdReleased(ILogger logger, int pid);

    [LoggerMessage(EventId = 2016, Level = LogLevel.Warning, Message = "uffd-wp: unregistering QEMU {Pid} failed; closing the userfaultfd drops the protection anyway")]
    public static partial void UffdUnregisterFailed(ILogger logger, int pid, Exception exception);

    [LoggerMessage(EventId = 2017, Level = LogLevel.Warning, Message = "uffd-wp: setting up tracking of QEMU {Pid} failed after injection; the userfaultfd is closed and QEMU runs as before")]
    public static partial void UffdSetupFailed(ILogger logger, int pid, Exception exception);

    [LoggerMessage(EventId = 2030, Level = LogLevel.Debug, Message = "soft-dirty: cleared the soft-dirty bits of QEMU {Pid}")]
    public static partial void SoftDirtyArmed(ILogger logger, int pid);

    [LoggerMessage(EventId = 2031, Level = LogLevel.Trace, Message = "soft-dirty: harvest {Pages} pages in {Ranges} ranges, {ElapsedMs:0.000} ms")]
    public static partial void SoftDirtyHarvested(ILogger logger, long pages, int ranges, double elapsedMs);
}
