using McGrpc.Shared;

namespace McGrpc.Backup.Engine;

/// <summary>The backup will not take a replication stream; the gRPC edge reports it as FAILED_PRECONDITION.</summary>
internal sealed class ReplicationRefusedException : McGrpcException
{
    public ReplicationRefusedException(string message, bool failedOver = false)
        : base(message)
    {
        FailedOver = failedOver;
    }

    /// <summary>The refusal is because this backup runs the VM now.</summary>
    public bool FailedOver { get; }
}
