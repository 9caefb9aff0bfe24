using McGrpc.Shared;

namespace McGrpc.Backup.Engine;

/// <summary>A failover request that cannot be honoured, or a failover that went wrong.</summary>
internal sealed class FailoverException : McGrpcException
{
    public FailoverException(string message, bool precondition = true, Exception? innerException = null)
        : base(message, innerException)
    {
        Precondition = precondition;
    }

    /// <summary>True when the request was refused before anything was done.</summary>
    public bool Precondition { get; }
}
