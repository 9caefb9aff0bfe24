namespace McGrpc.Shared.Qmp;

/// <summary>
/// The QMP connection could not be set up, or it ended: QEMU closed the socket, the socket broke,
/// QEMU sent something that is not QMP, or this client was disposed. Every command that was
/// waiting fails with it, and every later call fails at once.
/// </summary>
public sealed class QmpConnectionException : QmpException
{
    public QmpConnectionException(string message)
        : base(message)
    {
    }

    public QmpConnectionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
