namespace McGrpc.Backup.Replication;

/// <summary>How an epoch reaches guest RAM.</summary>
internal enum EpochKind
{
    /// <summary>Staged whole, applied only after its Commit checked out; RAM keeps the previous checkpoint until then.</summary>
    Incremental,

    /// <summary>The initial copy: validated chunk by chunk and written straight to RAM; no checkpoint exists until it is applied.</summary>
    Full,
}
