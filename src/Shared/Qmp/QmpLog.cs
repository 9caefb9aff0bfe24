using Microsoft.Extensions.Logging;

namespace McGrpc.Shared.Qmp;

/// <summary>Log messages of the QMP client; event ids 1000-1099.</summary>
internal static partial class QmpLog
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Connected to QMP at {SocketPath}: QEMU {Version}, pid {Pid}")]
    public static partial void Connected(ILogger logger, string socketPath, QmpGreeting version, int pid);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Debug, Message = "QMP {Command} #{Id} sent")]
    public static partial void CommandSent(ILogger logger, string command, long id);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Debug, Message = "QMP {Command} #{Id} answered in {ElapsedMs:0.000} ms")]
    public static partial void CommandCompleted(ILogger logger, string command, long id, double elapsedMs);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Debug, Message = "QMP {Command} #{Id} failed: {ErrorClass}: {Description}")]
    public static partial void CommandFailed(ILogger logger, string command, long id, string errorClass, string description);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "QMP {Command} #{Id} got no reply within {TimeoutMs} ms")]
    public static partial void CommandTimedOut(ILogger logger, string command, long id, double timeoutMs);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Error, Message = "QMP connection to {SocketPath} lost with {PendingCount} commands waiting: {Reason}")]
    public static partial void ConnectionLost(ILogger logger, Exception exception, string socketPath, int pendingCount, string reason);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Debug, Message = "QMP connection to {SocketPath} closed by this client")]
    public static partial void ConnectionClosed(ILogger logger, string socketPath);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Debug, Message = "QMP event {Event}")]
    public static partial void EventReceived(ILogger logger, string @event);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Warning, Message = "A QMP event subscriber fell {Capacity} events behind: dropped the oldest ({Event}), {DroppedCount} dropped so far")]
    public static partial void EventDropped(ILogger logger, int capacity, string @event, long droppedCount);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Debug, Message = "Ignoring QMP reply with id {Id}: no command is waiting for it (timed out or cancelled)")]
    public static partial void ReplyIgnored(ILogger logger, string id);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Warning, Message = "QMP error without an id (QEMU could not parse a command): {ErrorClass}: {Description}")]
    public static partial void ErrorWithoutId(ILogger logger, string errorClass, string description);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "A QMP event filter threw on {Event}; the subscription was ended")]
    public static partial void SubscriptionFilterFailed(ILogger logger, Exception exception, string @event);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Warning, Message = "Unexpected QMP message ignored: {Text}")]
    public static partial void UnexpectedMessage(ILogger logger, string text);
}
