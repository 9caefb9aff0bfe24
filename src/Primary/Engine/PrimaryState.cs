namespace McGrpc.Primary.Engine;

/// <summary>States of the primary's protection, as shown in status (lower case).</summary>
internal enum PrimaryState
{
    /// <summary>Connecting to QEMU and checking the VM.</summary>
    Starting,

    /// <summary>Not protecting; waiting for Migrate.</summary>
    Idle,

    /// <summary>Opening the first replication stream to the backup.</summary>
    Connecting,

    /// <summary>Initial full copy (pre-copy rounds, then epoch 0).</summary>
    Syncing,

    /// <summary>The backup holds an acked checkpoint; epochs run.</summary>
    Protected,

    /// <summary>Backup lost; output held, reconnecting.</summary>
    Degraded,

    /// <summary>Backup lost for longer than the timeout; output released, running unprotected, reconnecting.</summary>
    Unprotected,

    /// <summary>The backup took over: this copy of the VM was stopped and must not run on.</summary>
    Fenced,

    /// <summary>A fault that needs an operator (QEMU gone, VM unsupported).</summary>
    Failed,
}
