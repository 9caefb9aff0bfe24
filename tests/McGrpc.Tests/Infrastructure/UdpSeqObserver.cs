using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace McGrpc.Tests.Infrastructure;

/// <summary>
/// Receives the test guest's udpseq datagrams ("SEQ n\n") and keeps every
/// number with the time it arrived, in arrival order. Receives on its own
/// thread with a blocking socket, so a busy thread pool cannot delay arrivals
/// (their times are what the tests compare).
/// </summary>
internal sealed class UdpSeqObserver : IDisposable
{
    private readonly Socket _socket;
    private readonly List<(long Seq, long Timestamp)> _received = [];
    private readonly Thread _thread;
    private readonly Lock _lock = new();
    private int _malformed;

    /// <summary>Takes ownership of a bound UDP socket (bound in whatever network namespace it was made in).</summary>
    public UdpSeqObserver(Socket socket)
    {
        _socket = socket;
        _thread = new Thread(Receive) { IsBackground = true, Name = "udpseq observer" };
        _thread.Start();
    }

    public int Port => ((IPEndPoint)_socket.LocalEndPoint!).Port;

    public static UdpSeqObserver Bind(IPAddress address, int port = 0)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)
        {
            // A release of seconds of held output arrives as one burst of
            // hundreds of datagrams; the default 208 KiB would drop part of it
            // here, at the observer, and look like lost output.
            ReceiveBufferSize = 4 << 20,
        };
        socket.Bind(new IPEndPoint(address, port));
        return new UdpSeqObserver(socket);
    }

    public int Malformed => Volatile.Read(ref _malformed);

    /// <summary>A copy of what arrived so far.</summary>
    public List<(long Seq, long Timestamp)> Snapshot()
    {
        lock (_lock)
        {
            return [.. _received];
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _received.Count;
            }
        }
    }

    public long Last
    {
        get
        {
            lock (_lock)
            {
                return _received.Count == 0 ? 0 : _received[^1].Seq;
            }
        }
    }

    public Task WaitForCountAsync(int count, TimeSpan timeout, string what)
        => Wait.UntilAsync(() => Count >= count, timeout, () => $"{what}: {Count} datagrams arrived, wanted {count}.", 20);

    /// <summary>Numbers that arrived more than once.</summary>
    public static List<long> Duplicates(IEnumerable<(long Seq, long Timestamp)> received)
        => received.GroupBy(r => r.Seq).Where(g => g.Count() > 1).Select(g => g.Key).Order().ToList();

    /// <summary>Numbers missing between the first and the last that arrived.</summary>
    public static List<long> Gaps(IEnumerable<(long Seq, long Timestamp)> received)
    {
        var seen = received.Select(r => r.Seq).ToHashSet();
        if (seen.Count == 0)
        {
            return [];
        }

        var gaps = new List<long>();
        for (var n = seen.Min(); n <= seen.Max(); n++)
        {
            if (!seen.Contains(n))
            {
                gaps.Add(n);
            }
        }

        return gaps;
    }

    /// <summary>Short human description of a sequence for failure messages.</summary>
    public static string Describe(IReadOnlyList<(long Seq, long Timestamp)> received)
    {
        if (received.Count == 0)
        {
            return "nothing received";
        }

        var runs = new List<string>();
        var start = received[0].Seq;
        var previous = start;
        foreach (var (seq, _) in received.Skip(1))
        {
            if (seq != previous + 1)
            {
                runs.Add(start == previous ? $"{start}" : $"{start}-{previous}");
                start = seq;
            }

            previous = seq;
        }

        runs.Add(start == previous ? $"{start}" : $"{start}-{previous}");
        return $"{received.Count} datagrams, runs in arrival order: {string.Join(" ", runs.Take(40))}{(runs.Count > 40 ? " ..." : string.Empty)}";
    }

    public void Dispose()
    {
        _socket.Dispose();
        _thread.Join(TimeSpan.FromSeconds(5));
    }

    private void Receive()
    {
        var buffer = new byte[256];
        while (true)
        {
            int length;
            try
            {
                length = _socket.Receive(buffer);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            var now = Stopwatch.GetTimestamp();
            var text = Encoding.ASCII.GetString(buffer, 0, length);
            if (text.StartsWith("SEQ ", StringComparison.Ordinal) && long.TryParse(text.AsSpan(4).Trim(), out var seq))
            {
                lock (_lock)
                {
                    _received.Add((seq, now));
                }
            }
            else
            {
                Interlocked.Increment(ref _malformed);
            }
        }
    }
}
