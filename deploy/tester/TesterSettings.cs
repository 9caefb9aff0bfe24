using System.Globalization;

namespace McGrpc.ComposeTester;

/// <summary>
/// Settings of the compose tester, read from environment variables (set in
/// docker-compose.yml). Every default fits the compose file of this repository.
/// </summary>
internal sealed class TesterSettings
{
    /// <summary>MC_PRIMARY_CONTROL: mc-primary's control API. Default http://primary:7100.</summary>
    public required Uri PrimaryControl { get; init; }

    /// <summary>MC_BACKUP_CONTROL: mc-backup's control API. Default http://backup:7101.</summary>
    public required Uri BackupControl { get; init; }

    /// <summary>MC_BACKUP_TARGET: what the tester passes to Migrate. Default tcp:backup:7000.</summary>
    public required string BackupTarget { get; init; }

    /// <summary>MC_GUEST_ADDRESS: the guest's IPv4 address (no prefix). Required.</summary>
    public required string GuestAddress { get; init; }

    /// <summary>MC_ECHO_PORT: the guest's TCP echo port (tcpserve). Default 5001.</summary>
    public int EchoPort { get; init; } = 5001;

    /// <summary>MC_SEQ_PORT: the guest's verified duplex stream port (tcpserve). Default 5002.</summary>
    public int SeqPort { get; init; } = 5002;

    /// <summary>MC_LOG_DIR: where the hosts write their logs (&lt;dir&gt;/primary, &lt;dir&gt;/backup). Default /logs.</summary>
    public string LogDir { get; init; } = "/logs";

    /// <summary>MC_DELAY_MS: checkpoint delay set before protection. Default 100.</summary>
    public uint DelayMs { get; init; } = 100;

    /// <summary>MC_PROTECTED_SECONDS: how long traffic runs under protection before the kill. Default 8.</summary>
    public int ProtectedSeconds { get; init; } = 8;

    /// <summary>
    /// MC_TCP_MUST_SURVIVE: auto (default: required when mc-primary reports an
    /// output buffer), true or false. Without output commit a TCP connection
    /// can stall after failover, so then a stall is only reported.
    /// </summary>
    public string TcpMustSurvive { get; init; } = "auto";

    /// <summary>MC_SEQ_RATE: bytes per second the tester sends and reads on the stream. Default 131072.</summary>
    public int SeqRate { get; init; } = 128 * 1024;

    /// <summary>MC_TIMEOUT_SCALE: multiplies every timeout (slow machines). Default 1.</summary>
    public double TimeoutScale { get; init; } = 1;

    /// <summary>MC_DOCKER_SOCKET: the Docker Engine socket used to kill the primary. Default /var/run/docker.sock.</summary>
    public string DockerSocket { get; init; } = "/var/run/docker.sock";

    /// <summary>MC_KILL_SERVICE: the compose service killed to simulate a host failure. Default primary.</summary>
    public string KillService { get; init; } = "primary";

    /// <summary>MC_EXPECT_TCP_BYTES: bytes each direction must advance in each phase. Default 65536.</summary>
    public long ExpectTcpBytes { get; init; } = 64 * 1024;

    public TimeSpan Scaled(double seconds) => TimeSpan.FromSeconds(seconds * TimeoutScale);

    public static TesterSettings FromEnvironment()
    {
        var guest = Get("MC_GUEST_ADDRESS", "");
        if (guest.Length == 0)
        {
            throw new ArgumentException("MC_GUEST_ADDRESS is not set: give the guest's IPv4 address.");
        }

        return new TesterSettings
        {
            PrimaryControl = new Uri(Get("MC_PRIMARY_CONTROL", "http://primary:7100")),
            BackupControl = new Uri(Get("MC_BACKUP_CONTROL", "http://backup:7101")),
            BackupTarget = Get("MC_BACKUP_TARGET", "tcp:backup:7000"),
            GuestAddress = guest.Split('/')[0],
            EchoPort = GetInt("MC_ECHO_PORT", 5001),
            SeqPort = GetInt("MC_SEQ_PORT", 5002),
            LogDir = Get("MC_LOG_DIR", "/logs"),
            DelayMs = (uint)GetInt("MC_DELAY_MS", 100),
            ProtectedSeconds = GetInt("MC_PROTECTED_SECONDS", 8),
            TcpMustSurvive = Get("MC_TCP_MUST_SURVIVE", "auto") switch
            {
                "" => "auto",
                var v and ("auto" or "true" or "false") => v,
                var v => throw new ArgumentException($"MC_TCP_MUST_SURVIVE must be auto, true or false, not '{v}'."),
            },
            SeqRate = GetInt("MC_SEQ_RATE", 128 * 1024),
            TimeoutScale = double.Parse(Get("MC_TIMEOUT_SCALE", "1"), CultureInfo.InvariantCulture),
            DockerSocket = Get("MC_DOCKER_SOCKET", "/var/run/docker.sock"),
            KillService = Get("MC_KILL_SERVICE", "primary"),
            ExpectTcpBytes = GetInt("MC_EXPECT_TCP_BYTES", 64 * 1024),
        };
    }

    private static string Get(string name, string fallback)
    {
        var value = Environment.GetEnvironmentVariable(name);
        return string.IsNullOrWhiteSpace(value) ? fallback : value.Trim();
    }

    private static int GetInt(string name, int fallback)
    {
        var value = Get(name, "");
        if (value.Length == 0)
        {
            return fallback;
        }

        return int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) && parsed > 0
            ? parsed
            : throw new ArgumentException($"{name} must be a positive integer, not '{value}'.");
    }
}
