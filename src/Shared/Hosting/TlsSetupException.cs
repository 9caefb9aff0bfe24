namespace McGrpc.Shared.Hosting;

/// <summary>The TLS configuration cannot be used (a file is missing, unreadable, expired or not PEM); the daemon does not start.</summary>
public sealed class TlsSetupException : McGrpcException
{
    public TlsSetupException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}
