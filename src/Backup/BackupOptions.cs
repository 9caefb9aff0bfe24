using McGrpc.Backup.Engine;
using McGrpc.Backup.Replication;
using McGrpc.Shared.Hosting;

namespace McGrpc.Backup;

/// <summary>Options of mc-backup, bound from the "Backup" configuration section and the command line.</summary>
internal sealed class BackupOptions
{
    public const string Section = "Backup";

    /// <summary>QMP unix socket of the backup QEMU, started with the primary's command line plus -incoming defer. Required.</summary>
    public string QmpSocket { get; set; } = string.Empty;

    /// <summary>The backup QEMU's guest-RAM file; optional, checked against what QEMU maps.</summary>
    public string? RamFile { get; set; }

    /// <summary>Name of the protected VM; the primary's Hello must carry the same. Default: QEMU's -name.</summary>
    public string? VmId { get; set; }

    /// <summary>Replication listener (HOST:PORT or unix:/path). Default 0.0.0.0:7000.</summary>
    public string Listen { get; set; } = "0.0.0.0:7000";

    /// <summary>Control API listener. Default 127.0.0.1:7101 (loopback only).</summary>
    public string Control { get; set; } = "127.0.0.1:7101";

    /// <summary>
    /// The primary is dead when no frame arrives for this long (ms). Default 2000:
    /// twenty of the primary's default 100 ms heartbeats, so late packets or a
    /// loaded host do not trigger a failover (measured on a 2-core host running
    /// two TCG guests: stalls of up to ~1 s happened), while detection stays far
    /// below the minutes TCP clients wait before giving up on a connection. A
    /// killed primary process or host resets the stream and is detected at once,
    /// whatever this value.
    /// </summary>
    public int HeartbeatTimeoutMs { get; set; } = 2000;

    /// <summary>
    /// After the stream breaks, wait this long (ms) for the primary to reconnect
    /// and resume before declaring it dead. Default 0: a broken stream means a
    /// dead primary (a killed process or host resets the connection), so fail over at once.
    /// </summary>
    public int StreamLossGraceMs { get; set; }

    /// <summary>auto (fail over when the primary is declared dead) or manual (wait for the Failover call). Default auto.</summary>
    public string FailoverPolicy { get; set; } = "auto";

    /// <summary>Memory for staging one epoch before it is applied (bytes). Default 0 = guest RAM size (an epoch can never need more).</summary>
    public long MaxStagingBytes { get; set; }

    /// <summary>Largest device-state stream accepted (bytes). Default 64 MiB.</summary>
    public long MaxDeviceStateBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// A full copy may send at most this many times guest RAM's page count
    /// (pre-copy rounds resend pages); more is refused as a runaway stream.
    /// Default 64, above mc-primary's default of one pass plus 30 rounds.
    /// </summary>
    public int MaxFullCopyPasses { get; set; } = EpochStager.DefaultFullCopyPasses;

    /// <summary>A replication stream that sends no Hello within this many ms is closed. Default 10000.</summary>
    public int HelloTimeoutMs { get; set; } = 10000;

    /// <summary>Unix socket QEMU listens on for the device state at failover. Default: a per-process path in the temp directory.</summary>
    public string? IncomingSocket { get; set; }

    public static readonly OptionDoc[] Docs =
    [
        new("--qmp", $"{Section}:QmpSocket", "(required)", "QMP unix socket of the backup QEMU (same command line as the primary plus -incoming defer)."),
        new("--ram-file", $"{Section}:RamFile", "found via QMP", "The backup QEMU's guest-RAM file; checked against what QEMU really maps."),
        new("--vm-id", $"{Section}:VmId", "QEMU's -name", "Name of the protected VM; must match the primary's."),
        new("--listen", $"{Section}:Listen", "0.0.0.0:7000", "Replication listener: HOST:PORT or unix:/path."),
        new("--control", $"{Section}:Control", "127.0.0.1:7101", "Control API listener: HOST:PORT or unix:/path."),
        new("--heartbeat-timeout", $"{Section}:HeartbeatTimeoutMs", "2000", "Primary dead when no frame arrives for this long (ms)."),
        new("--stream-loss-grace", $"{Section}:StreamLossGraceMs", "0", "After a broken stream, wait this long (ms) for the primary to resume before declaring it dead."),
        new("--failover-policy", $"{Section}:FailoverPolicy", "auto", "auto: fail over when the primary is declared dead; manual: wait for the Failover call."),
        new("--max-staging-bytes", $"{Section}:MaxStagingBytes", "guest RAM size", "Memory for staging one epoch before applying it."),
        new("--max-device-state-bytes", $"{Section}:MaxDeviceStateBytes", "67108864", "Largest device-state stream accepted."),
        new("--max-full-copy-passes", $"{Section}:MaxFullCopyPasses", "64", "A full copy may send at most this many times RAM's page count (raise it with mc-primary's --precopy-max-rounds)."),
        new("--hello-timeout", $"{Section}:HelloTimeoutMs", "10000", "Close a replication stream that sends no Hello within this many ms."),
        new("--incoming-socket", $"{Section}:IncomingSocket", "temp dir", "Unix socket QEMU listens on for the device state at failover."),
    ];

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(QmpSocket))
        {
            problems.Add("--qmp (Backup:QmpSocket) is required: the path of the backup QEMU's QMP unix socket.");
        }

        if (HeartbeatTimeoutMs <= 0)
        {
            problems.Add($"--heartbeat-timeout must be positive, not {HeartbeatTimeoutMs}.");
        }

        if (StreamLossGraceMs < 0)
        {
            problems.Add($"--stream-loss-grace must not be negative, not {StreamLossGraceMs}.");
        }

        if (!BackupEngine.IsFailoverPolicy(FailoverPolicy))
        {
            problems.Add($"--failover-policy must be auto or manual, not '{FailoverPolicy}'.");
        }

        if (MaxFullCopyPasses <= 0 || HelloTimeoutMs <= 0)
        {
            problems.Add($"--max-full-copy-passes and --hello-timeout must be positive, not {MaxFullCopyPasses} and {HelloTimeoutMs}.");
        }

        if (MaxStagingBytes < 0 || MaxDeviceStateBytes <= 0)
        {
            problems.Add("--max-staging-bytes must not be negative and --max-device-state-bytes must be positive.");
        }

        foreach (var (value, name) in new[] { (Listen, "--listen"), (Control, "--control") })
        {
            try
            {
                ListenAddress.Parse(value, name);
            }
            catch (FormatException e)
            {
                problems.Add(e.Message);
            }
        }

        return problems;
    }
}
