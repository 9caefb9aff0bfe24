namespace McGrpc.Shared.Qmp;

/// <summary>Base of every failure talking to QEMU over QMP.</summary>
public class QmpException : McGrpcException
{
    public QmpException(string message)
        : base(message)
    {
    }

    public QmpException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
