namespace McGrpc.Backup.Control;

/// <summary>Which question a <see cref="BackupHealthCheck"/> answers.</summary>
internal enum BackupHealthAspect
{
    /// <summary>The daemon works: connected to its QEMU and not failed.</summary>
    Daemon,

    /// <summary>The replication listener takes checkpoints (not after a failover).</summary>
    Replication,

    /// <summary>The backup holds a checkpoint it would resume from if the primary died now.</summary>
    Protection,
}
