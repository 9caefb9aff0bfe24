using System.Net.Sockets;
using System.Text;

namespace McGrpc.ComposeTester.Guest;

/// <summary>Opens a new connection to the guest's echo port and checks that a line comes back unchanged.</summary>
internal static class EchoProbe
{
    private static int _sequence;

    /// <summary>One attempt; throws on any failure or when the echo does not arrive within <paramref name="timeout"/>.</summary>
    public static async Task<TimeSpan> ProbeAsync(string host, int port, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        var started = Reporter.Elapsed;
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
        var line = Encoding.ASCII.GetBytes($"mc-compose-tester echo {Interlocked.Increment(ref _sequence)} {Guid.NewGuid():N}\n");
        await socket.SendAsync(line, SocketFlags.None, cts.Token).ConfigureAwait(false);
        var echoed = new byte[line.Length];
        var got = 0;
        while (got < echoed.Length)
        {
            var n = await socket.ReceiveAsync(echoed.AsMemory(got), SocketFlags.None, cts.Token).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException($"the guest closed the echo connection after {got} of {line.Length} bytes");
            }

            got += n;
        }

        if (!echoed.AsSpan().SequenceEqual(line))
        {
            throw new IOException($"the echo differs: sent '{Encoding.ASCII.GetString(line).TrimEnd()}', got '{Encoding.ASCII.GetString(echoed).TrimEnd()}'");
        }

        socket.Shutdown(SocketShutdown.Both);
        return Reporter.Elapsed - started;
    }
}
