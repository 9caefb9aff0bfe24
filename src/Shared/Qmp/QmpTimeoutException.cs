namespace McGrpc.Shared.Qmp;

/// <summary>A command got no reply, or an awaited event did not arrive, in time.</summary>
public sealed class QmpTimeoutException : QmpException
{
    private QmpTimeoutException(string message, string? command, string? eventName, TimeSpan timeout)
        : base(message)
    {
        Command = command;
        EventName = eventName;
        Timeout = timeout;
    }

    /// <summary>The command that got no reply; null when an event wait timed out.</summary>
    public string? Command { get; }

    /// <summary>The event that did not arrive; null when a command timed out.</summary>
    public string? EventName { get; }

    /// <summary>How long the caller waited.</summary>
    public TimeSpan Timeout { get; }

    public static QmpTimeoutException ForCommand(string command, TimeSpan timeout) =>
        new($"QMP {command} got no reply within {Describe(timeout)}.", command, eventName: null, timeout);

    public static QmpTimeoutException ForEvent(string eventName, TimeSpan timeout) =>
        new($"QMP event {eventName} did not arrive within {Describe(timeout)}.", command: null, eventName, timeout);

    private static string Describe(TimeSpan timeout) =>
        timeout.TotalSeconds >= 1 ? $"{timeout.TotalSeconds:0.###} s" : $"{timeout.TotalMilliseconds:0.###} ms";
}
