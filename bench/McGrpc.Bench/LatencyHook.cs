using System.Net;

namespace McGrpc.Bench;

/// <summary>
/// Where the report gets round trips to the guest's echo port (tcpserve,
/// guest port 5001, forwarded to 127.0.0.1:<c>port</c> on the host): the
/// `latency` command's <see cref="EchoProbe"/>, so both commands measure the
/// same way. <see cref="Missing"/> says why not when no probe is wired in;
/// the report then says that latency was not measured (no number is made up).
/// </summary>
internal static class LatencyHook
{
    /// <summary>Upper bound of the random pause between two requests, as the latency command's default.</summary>
    private static readonly TimeSpan MaxThink = TimeSpan.FromMilliseconds(100);

    /// <summary>How round trips are measured, for the report.</summary>
    public static string Method(int count)
        => $"{count} round trips of {EchoProbe.MessageBytes} bytes on one TCP connection, a random pause of up to {MaxThink.TotalMilliseconds:F0} ms between two (so requests meet every point of the checkpoint cycle), measured by the `latency` command's probe";

    /// <summary>Why there is no probe, shown in the report; null when a probe is wired in.</summary>
    public static string? Missing => null;

    /// <summary><paramref name="count"/> round trips to 127.0.0.1:<paramref name="port"/>, or null without a probe.</summary>
    public static async Task<LatencyResult?> MeasureAsync(int port, int count, CancellationToken cancellationToken)
        => await EchoProbe.MeasureAsync(new IPEndPoint(IPAddress.Loopback, port), count, MaxThink, cancellationToken);
}
