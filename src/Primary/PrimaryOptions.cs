using McGrpc.Shared.Hosting;

namespace McGrpc.Primary;

/// <summary>Options of mc-primary, bound from the "Primary" configuration section and the command line.</summary>
internal sealed class PrimaryOptions
{
    public const string Section = "Primary";

    /// <summary>QEMU's QMP unix socket (-qmp unix:PATH,server=on,wait=off). Required.</summary>
    public string QmpSocket { get; set; } = string.Empty;

    /// <summary>
    /// The guest-RAM file QEMU uses (mem-path of its memory-backend-file).
    /// Optional: found through QMP; when given it must be the same file.
    /// </summary>
    public string? RamFile { get; set; }

    /// <summary>Name of the protected VM; must equal the backup's. Default: QEMU's -name.</summary>
    public string? VmId { get; set; }

    /// <summary>
    /// Backup to protect to at start-up (tcp:HOST:PORT, http(s)://HOST:PORT);
    /// turns capability "mc" on. Default: none (wait for the Migrate call).
    /// </summary>
    public string? Target { get; set; }

    /// <summary>Checkpoint delay: milliseconds from one stop to the next. Default 100; 1..60000.</summary>
    public int DelayMs { get; set; } = 100;

    /// <summary>
    /// Epochs sent but not yet acked before the next stop waits (K). Default 4:
    /// enough to hide a network round trip at short delays, small enough to bound memory.
    /// </summary>
    public int MaxEpochsInFlight { get; set; } = 4;

    /// <summary>Control API listener (HOST:PORT or unix:/path). Default 127.0.0.1:7100 (loopback only).</summary>
    public string Control { get; set; } = "127.0.0.1:7100";

    /// <summary>Dirty tracker: auto (best that works here), uffd-wp, soft-dirty or compare. Default auto.</summary>
    public string Tracker { get; set; } = "auto";

    /// <summary>
    /// Output buffer back end: auto, userspace, kernel or none. Default auto:
    /// userspace when a guest NIC has a network backend, none when the VM has
    /// no NIC (nothing to hold). "none" lets the guest's output out before its
    /// checkpoint is acked, so a failover can contradict what clients saw.
    /// </summary>
    public string OutputBuffer { get; set; } = "auto";

    /// <summary>Options of the output buffer back ends, bound from the "Output" section (Output:Userspace, Output:Kernel).</summary>
    public Output.OutputBufferOptions Output { get; set; } = new();

    /// <summary>
    /// Test mode: hash all guest RAM at every stop and have the backup check it
    /// after applying. Lengthens every pause by a full RAM read. Default false.
    /// </summary>
    public bool DigestMode { get; set; }

    /// <summary>Heartbeat after this many idle milliseconds on the replication stream. Default 100.</summary>
    public int HeartbeatIntervalMs { get; set; } = 100;

    /// <summary>The backup is lost when an epoch stays unacked this long (ms). Default 3000.</summary>
    public int AckTimeoutMs { get; set; } = 3000;

    /// <summary>
    /// After losing the backup, hold the guest's output this long (ms) while
    /// trying to reconnect, then release it and run unprotected. Default 5000.
    /// Running on is a split-brain risk if only the link failed: see README.
    /// </summary>
    public int UnprotectedTimeoutMs { get; set; } = 5000;

    /// <summary>Pause between reconnect attempts (ms). Default 500.</summary>
    public int ReconnectIntervalMs { get; set; } = 500;

    /// <summary>Initial copy: stop for epoch 0 once a pre-copy round leaves at most this many dirty pages. Default 4096 (16 MiB).</summary>
    public int PrecopyStopPages { get; set; } = 4096;

    /// <summary>Initial copy: at most this many pre-copy rounds before stopping anyway. Default 30.</summary>
    public int PrecopyMaxRounds { get; set; } = 30;

    /// <summary>Unix socket QEMU sends device state to. Default: a per-process path in the temp directory.</summary>
    public string? DeviceStateSocket { get; set; }

    /// <summary>Upper bound of one device-state stream (bytes). Default 64 MiB; more means RAM is not being skipped.</summary>
    public long MaxDeviceStateBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Initial value of capability mc-net-disable. Default false.</summary>
    public bool NetDisable { get; set; }

    /// <summary>Initial value of capability mc-disk-disable. Default false.</summary>
    public bool DiskDisable { get; set; }

    /// <summary>Test-only fault injection; leave unset in production.</summary>
    public PrimaryFaultOptions Faults { get; set; } = new();

    public static readonly OptionDoc[] Docs =
    [
        new("--qmp", $"{Section}:QmpSocket", "(required)", "QEMU's QMP unix socket."),
        new("--ram-file", $"{Section}:RamFile", "found via QMP", "Guest-RAM file of QEMU's memory-backend-file; checked against what QEMU really maps."),
        new("--vm-id", $"{Section}:VmId", "QEMU's -name", "Name of the protected VM; must match the backup's."),
        new("--target", $"{Section}:Target", "none", "Backup to protect to at start-up: tcp:HOST:PORT or http(s)://HOST:PORT. Without it, wait for the Migrate control call."),
        new("--delay", $"{Section}:DelayMs", "100", "Checkpoint delay in milliseconds (1..60000)."),
        new("--max-in-flight", $"{Section}:MaxEpochsInFlight", "4", "Epochs sent but not acked before the next stop waits."),
        new("--control", $"{Section}:Control", "127.0.0.1:7100", "Control API listener: HOST:PORT or unix:/path."),
        new("--tracker", $"{Section}:Tracker", "auto", "Dirty tracker: auto, uffd-wp, soft-dirty or compare."),
        new("--output-buffer", $"{Section}:OutputBuffer", "auto", "Network output buffer: auto (userspace if the VM has a NIC, else none), userspace, kernel or none."),
        new("--digest", $"{Section}:DigestMode", "false", "Test mode: hash all guest RAM at every stop; the backup verifies it."),
        new("--heartbeat-interval", $"{Section}:HeartbeatIntervalMs", "100", "Heartbeat after this many idle ms."),
        new("--ack-timeout", $"{Section}:AckTimeoutMs", "3000", "Backup lost when an epoch stays unacked this long (ms)."),
        new("--unprotected-after", $"{Section}:UnprotectedTimeoutMs", "5000", "After losing the backup, hold output this long (ms), then run unprotected."),
        new("--reconnect-interval", $"{Section}:ReconnectIntervalMs", "500", "Pause between reconnect attempts (ms)."),
        new("--precopy-stop-pages", $"{Section}:PrecopyStopPages", "4096", "Initial copy: stop for epoch 0 when a round leaves at most this many dirty pages."),
        new("--precopy-max-rounds", $"{Section}:PrecopyMaxRounds", "30", "Initial copy: at most this many pre-copy rounds."),
        new("--device-state-socket", $"{Section}:DeviceStateSocket", "temp dir", "Unix socket QEMU sends device state to."),
        new("--net-disable", $"{Section}:NetDisable", "false", "Start with capability mc-net-disable on (no output buffering)."),
        new("--disk-disable", $"{Section}:DiskDisable", "false", "Start with capability mc-disk-disable on."),
        .. McGrpc.Primary.Output.OutputBufferOptions.Docs,
    ];

    /// <summary>Checks every value; returns the problems, empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(QmpSocket))
        {
            problems.Add("--qmp (Primary:QmpSocket) is required: the path of QEMU's QMP unix socket.");
        }

        if (DelayMs is < 1 or > 60000)
        {
            problems.Add($"--delay must be 1..60000 ms, not {DelayMs}.");
        }

        if (MaxEpochsInFlight is < 1 or > 64)
        {
            problems.Add($"--max-in-flight must be 1..64, not {MaxEpochsInFlight}.");
        }

        if (Tracker is not ("auto" or "uffd-wp" or "soft-dirty" or "compare"))
        {
            problems.Add($"--tracker must be auto, uffd-wp, soft-dirty or compare, not '{Tracker}'.");
        }

        if (OutputBuffer is not ("auto" or "none" or "userspace" or "kernel"))
        {
            problems.Add($"--output-buffer must be auto, userspace, kernel or none, not '{OutputBuffer}'.");
        }

        problems.AddRange(Output.Validate());

        if (Target is not null && !ReplicationTarget.TryParse(Target, out _, out var targetError))
        {
            problems.Add($"--target: {targetError}");
        }

        CheckPositive(problems, "--heartbeat-interval", HeartbeatIntervalMs);
        CheckPositive(problems, "--ack-timeout", AckTimeoutMs);
        CheckPositive(problems, "--unprotected-after", UnprotectedTimeoutMs);
        CheckPositive(problems, "--reconnect-interval", ReconnectIntervalMs);
        CheckPositive(problems, "--precopy-max-rounds", PrecopyMaxRounds);
        if (PrecopyStopPages < 0)
        {
            problems.Add("--precopy-stop-pages must not be negative.");
        }

        try
        {
            ListenAddress.Parse(Control, "--control");
        }
        catch (FormatException e)
        {
            problems.Add(e.Message);
        }

        return problems;
    }

    private static void CheckPositive(List<string> problems, string name, int value)
    {
        if (value <= 0)
        {
            problems.Add($"{name} must be positive, not {value}.");
        }
    }
}
