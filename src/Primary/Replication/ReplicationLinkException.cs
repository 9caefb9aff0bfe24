using McGrpc.Shared;

namespace McGrpc.Primary.Replication;

/// <summary>The replication stream to the backup failed or was refused.</summary>
internal sealed class ReplicationLinkException : McGrpcException
{
    public ReplicationLinkException(string message, Exception? innerException = null, bool refused = false, bool backupFailedOver = false)
        : base(message, innerException)
    {
        Refused = refused;
        BackupFailedOver = backupFailedOver;
    }

    /// <summary>The backup resumed the VM: this primary's copy must not run on.</summary>
    public bool BackupFailedOver { get; }

    /// <summary>The backup refused the session on purpose (for example it has taken over the VM); retrying will not help.</summary>
    public bool Refused { get; }
}
