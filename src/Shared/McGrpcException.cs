namespace McGrpc.Shared;

/// <summary>Base of every exception McGrpc throws on purpose.</summary>
public class McGrpcException : Exception
{
    public McGrpcException(string message)
        : base(message)
    {
    }

    public McGrpcException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
