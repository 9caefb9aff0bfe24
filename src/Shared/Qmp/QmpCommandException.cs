namespace McGrpc.Shared.Qmp;

/// <summary>QEMU answered a command with <c>{"error": {"class": ..., "desc": ...}}</c>.</summary>
public sealed class QmpCommandException : QmpException
{
    public QmpCommandException(string command, string errorClass, string description)
        : base($"QMP {command} failed: {errorClass}: {description}")
    {
        Command = command;
        ErrorClass = errorClass;
        Description = description;
    }

    /// <summary>The command QEMU refused, e.g. <c>migrate</c>.</summary>
    public string Command { get; }

    /// <summary>
    /// QEMU's error class. Almost everything is <c>GenericError</c>; the others are
    /// <c>CommandNotFound</c>, <c>DeviceNotActive</c>, <c>DeviceNotFound</c> and <c>KVMMissingCap</c>.
    /// </summary>
    public string ErrorClass { get; }

    /// <summary>QEMU's human-readable description.</summary>
    public string Description { get; }
}
