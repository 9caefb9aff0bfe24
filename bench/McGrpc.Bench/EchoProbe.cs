using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace McGrpc.Bench;

/// <summary>
/// Request/response round trips to the guest's echo port (tcpserve, guest
/// port 5001): one TCP connection with TCP_NODELAY, a small message, wait for
/// all of it to come back. Between two requests it waits a random time
/// (uniform up to <c>maxThink</c>), so requests fall at every point of the
/// checkpoint cycle instead of locking onto it: back-to-back requests would
/// each be answered right after an ack and sample one phase only.
/// </summary>
internal static class EchoProbe
{
    public const int MessageBytes = 64;

    public static async Task<LatencyResult> MeasureAsync(IPEndPoint echo, int count, TimeSpan maxThink, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using (var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            connect.CancelAfter(TimeSpan.FromSeconds(30));
            await socket.ConnectAsync(echo, connect.Token);
        }

        var request = new byte[MessageBytes];
        var reply = new byte[MessageBytes];
        var random = new Random(12345);
        var rtts = new List<double>(count);

        // The first exchanges warm up the connection (slow start, ARP, the guest's scheduler).
        for (var i = -3; i < count; i++)
        {
            random.NextBytes(request);
            var started = Stopwatch.GetTimestamp();
            await socket.SendAsync(request, SocketFlags.None, cancellationToken);
            var received = 0;
            while (received < MessageBytes)
            {
                var read = await socket.ReceiveAsync(reply.AsMemory(received), SocketFlags.None, cancellationToken);
                if (read == 0)
                {
                    throw new IOException($"The guest's echo port closed the connection after {rtts.Count} round trips.");
                }

                received += read;
            }

            var rtt = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (!reply.AsSpan().SequenceEqual(request))
            {
                throw new IOException("The echo came back different from what was sent.");
            }

            if (i >= 0)
            {
                rtts.Add(rtt);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(random.NextDouble() * maxThink.TotalMilliseconds), cancellationToken);
        }

        return new LatencyResult(rtts);
    }
}
