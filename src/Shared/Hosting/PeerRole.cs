namespace McGrpc.Shared.Hosting;

/// <summary>Which end of the replication link a daemon is: it decides the purpose its certificate must allow.</summary>
internal enum PeerRole
{
    /// <summary>mc-primary: a TLS client of the backup (clientAuth).</summary>
    Primary,

    /// <summary>mc-backup: the TLS server the primary connects to (serverAuth).</summary>
    Backup,
}
