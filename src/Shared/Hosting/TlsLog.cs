using Microsoft.Extensions.Logging;

namespace McGrpc.Shared.Hosting;

/// <summary>Transport-security log messages of both daemons; event ids 950-969.</summary>
internal static partial class TlsLog
{
    [LoggerMessage(950, LogLevel.Warning, "INSECURE: replication runs WITHOUT TLS (--insecure-plaintext): checkpoints carry the VM's whole memory in clear, and anyone who reaches the replication port can write into the VM. Use this only for tests and demos.")]
    public static partial void ReplicationPlaintext(ILogger logger);

    [LoggerMessage(951, LogLevel.Information, "Replication uses mutual TLS: this daemon is '{Subject}' (valid until {NotAfter:yyyy-MM-dd}), peers must chain to {CaCount} CA certificate(s) from {CaFile}{PeerName}")]
    public static partial void ReplicationTls(ILogger logger, string subject, DateTime notAfter, int caCount, string caFile, string peerName);

    [LoggerMessage(952, LogLevel.Warning, "INSECURE: the control API listens on {Address} without TLS (--control-insecure-plaintext): anyone who reaches it can fail the VM over or stop protection")]
    public static partial void ControlPlaintext(ILogger logger, string address);

    [LoggerMessage(953, LogLevel.Information, "Control API on {Address} uses TLS; client certificates {Mode}")]
    public static partial void ControlTls(ILogger logger, string address, string mode);

    [LoggerMessage(954, LogLevel.Warning, "Refused a {Listener} connection from {Remote} before reading anything: {Reason}")]
    public static partial void PeerRefused(ILogger logger, string listener, string remote, string reason);

    [LoggerMessage(955, LogLevel.Warning, "Refused the backup at {Target}: {Reason}")]
    public static partial void ServerRefused(ILogger logger, string target, string reason);

    [LoggerMessage(956, LogLevel.Warning, "TLS set-up: {Problem}")]
    public static partial void SetupWarning(ILogger logger, string problem);
}
