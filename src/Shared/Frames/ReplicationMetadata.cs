namespace McGrpc.Shared.Frames;

/// <summary>Trailer the backup sets when it ends a replication call, so the primary can act on the reason.</summary>
internal static class ReplicationMetadata
{
    public const string ReasonKey = "mc-reason";

    /// <summary>The backup has resumed the VM and will never accept checkpoints again.</summary>
    public const string FailedOver = "failed-over";
}
