namespace McGrpc.Backup.Engine;

/// <summary>States of the backup, as shown in status (snake case).</summary>
internal enum BackupState
{
    /// <summary>Connecting to QEMU and checking the VM.</summary>
    Starting,

    /// <summary>No primary replicating.</summary>
    Waiting,

    /// <summary>Receiving a full copy; nothing to resume yet.</summary>
    Syncing,

    /// <summary>Holds an applied checkpoint; the primary is alive.</summary>
    Protected,

    /// <summary>The primary was declared dead; waiting for the operator (manual policy) or about to fail over.</summary>
    PrimaryLost,

    /// <summary>Resuming the VM from the last checkpoint.</summary>
    FailingOver,

    /// <summary>The VM runs here now. No checkpoint is accepted any more.</summary>
    FailedOver,

    /// <summary>A fault that needs an operator.</summary>
    Failed,
}
