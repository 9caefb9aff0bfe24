using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Output;

/// <summary>Log events of the userspace output buffer, ids 3150-3199.</summary>
internal static partial class UserspaceOutputLog
{
    [LoggerMessage(EventId = 3150, Level = LogLevel.Information,
        Message = "Userspace output buffer attached to netdev {Netdev} ({Type}, NIC {Nic}): filters {InjectFilter} (inject) and {CaptureFilter} (capture); output passes through until the first barrier")]
    public static partial void Attached(ILogger logger, string netdev, string type, string nic, string injectFilter, string captureFilter);

    [LoggerMessage(EventId = 3151, Level = LogLevel.Warning,
        Message = "Removed {Filters} filter(s) and {Chardevs} chardev(s) left by an earlier mc-primary ({Ids}); while they stayed, QEMU dropped the guest's output")]
    public static partial void StaleRemoved(ILogger logger, int filters, int chardevs, string ids);

    [LoggerMessage(EventId = 3152, Level = LogLevel.Debug, Message = "Barrier {Epoch}: {HeldPackets} packets held")]
    public static partial void Barrier(ILogger logger, ulong epoch, long heldPackets);

    [LoggerMessage(EventId = 3153, Level = LogLevel.Information, Message = "Released everything held ({Packets} packets); output passes through until the next barrier")]
    public static partial void ReleasedAll(ILogger logger, int packets);

    [LoggerMessage(EventId = 3154, Level = LogLevel.Information, Message = "Userspace output buffer detached from netdev {Netdev}; QEMU's networking is as before")]
    public static partial void Detached(ILogger logger, string netdev);

    [LoggerMessage(EventId = 3155, Level = LogLevel.Warning,
        Message = "Detached while holding {Packets} unacked packets: they are discarded, and the capture filters stay with closed connections, so QEMU drops the guest's output (and logs \"filter redirector send failed\") until mc-primary attaches again. To let the guest talk without protection: object-del {Filters}")]
    public static partial void LeftFenced(ILogger logger, int packets, string filters);

    [LoggerMessage(EventId = 3156, Level = LogLevel.Warning, Message = "The {Side} connection of netdev {Netdev}'s filters broke ({Reason}); replacing the filters")]
    public static partial void ConnectionBroken(ILogger logger, string side, string netdev, string reason);

    [LoggerMessage(EventId = 3157, Level = LogLevel.Warning,
        Message = "Output buffer full ({FootprintBytes} of {MaxBytes} bytes held or waiting for QEMU): dropped {NewDrops} guest packets ({TotalDrops} since start); the guest sees loss. Raise Output:Userspace:MaxHeldBytes or shorten the delay")]
    public static partial void Dropped(ILogger logger, long footprintBytes, long maxBytes, long newDrops, long totalDrops);

    [LoggerMessage(EventId = 3158, Level = LogLevel.Information, Message = "Replaced the filters of netdev {Netdev} (attempt {Attempt}): {InjectFilter}, {CaptureFilter}; {Requeued} packets waiting to be injected")]
    public static partial void Repaired(ILogger logger, string netdev, int attempt, string injectFilter, string captureFilter, int requeued);

    [LoggerMessage(EventId = 3159, Level = LogLevel.Error, Message = "Replacing the filters of netdev {Netdev} failed (attempt {Attempt}); retrying in {Interval}")]
    public static partial void RepairFailed(ILogger logger, string netdev, int attempt, TimeSpan interval, Exception exception);

    [LoggerMessage(EventId = 3160, Level = LogLevel.Warning, Message = "Removing {What} from QEMU failed; remove it by hand")]
    public static partial void RemoveFailed(ILogger logger, string what, Exception exception);

    [LoggerMessage(EventId = 3161, Level = LogLevel.Warning,
        Message = "Netdev {Netdev}: {Packets} released packets were not written back to QEMU within {Timeout} before detaching; they are dropped")]
    public static partial void DrainTimedOut(ILogger logger, string netdev, int packets, TimeSpan timeout);

    [LoggerMessage(EventId = 3162, Level = LogLevel.Debug, Message = "QEMU's end of the capture connection of {Netdev} has a {Bytes}-byte send buffer")]
    public static partial void SocketBuffer(ILogger logger, string netdev, int bytes);

    [LoggerMessage(EventId = 3163, Level = LogLevel.Information, Message = "QEMU is gone; not replacing the filters of netdev {Netdev}")]
    public static partial void QemuGone(ILogger logger, string netdev);
}
