using System.Diagnostics;
using System.Net.Sockets;

namespace McGrpc.ComposeTester.Guest;

/// <summary>
/// One connection to the guest's verified duplex stream (tcpserve seq port).
/// The tester sends byte i = (i*31 + (i&gt;&gt;11)) &amp; 0xff and checks every byte
/// the guest sends against j = (j*17 + (j&gt;&gt;13) + 5) &amp; 0xff; the guest checks
/// ours and prints "TCPSEQ ERROR" on a mismatch. Both directions are paced at
/// a fixed rate so the stream does not dominate the checkpoint size.
/// </summary>
internal sealed class SeqStream : IAsyncDisposable
{
    private const int TicksPerSecond = 20;

    private readonly Socket _socket;
    private readonly int _bytesPerTick;
    private readonly CancellationTokenSource _stop = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Lock _gate = new();
    private Task _sender = Task.CompletedTask;
    private Task _receiver = Task.CompletedTask;
    private long _sent;
    private long _received;
    private TimeSpan _lastReceive;
    private TimeSpan _longestGap;
    private string? _failure;

    private SeqStream(Socket socket, int bytesPerSecond)
    {
        _socket = socket;
        _bytesPerTick = Math.Max(1, bytesPerSecond / TicksPerSecond);
    }

    /// <summary>Bytes handed to the kernel so far (the guest may not have them yet).</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Bytes received from the guest and verified.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>How long ago the last byte arrived.</summary>
    public TimeSpan SinceLastReceive
    {
        get
        {
            lock (_gate)
            {
                return _clock.Elapsed - _lastReceive;
            }
        }
    }

    /// <summary>Longest time without a received byte, so far.</summary>
    public TimeSpan LongestGap
    {
        get
        {
            lock (_gate)
            {
                return _longestGap > _clock.Elapsed - _lastReceive ? _longestGap : _clock.Elapsed - _lastReceive;
            }
        }
    }

    /// <summary>Why the stream broke (a socket error or a wrong byte), or null.</summary>
    public string? Failure
    {
        get
        {
            lock (_gate)
            {
                return _failure;
            }
        }
    }

    public static byte ClientByte(ulong i) => (byte)((i * 31) + (i >> 11));

    public static byte GuestByte(ulong j) => (byte)((j * 17) + (j >> 13) + 5);

    public static async Task<SeqStream> OpenAsync(string host, int port, int bytesPerSecond, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var stream = new SeqStream(socket, bytesPerSecond);
        stream.Start();
        return stream;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        try
        {
            await Task.WhenAll(_sender, _receiver).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Closing the socket ends both loops; how they end no longer matters.
        }

        _stop.Dispose();
    }

    private void Start()
    {
        lock (_gate)
        {
            _lastReceive = _clock.Elapsed;
        }

        _sender = Task.Run(() => SendLoopAsync(_stop.Token));
        _receiver = Task.Run(() => ReceiveLoopAsync(_stop.Token));
    }

    private async Task SendLoopAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[_bytesPerTick];
        ulong offset = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1.0 / TicksPerSecond));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                for (var k = 0; k < buffer.Length; k++)
                {
                    buffer[k] = ClientByte(offset + (ulong)k);
                }

                var done = 0;
                while (done < buffer.Length)
                {
                    done += await _socket.SendAsync(buffer.AsMemory(done), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                }

                offset += (ulong)buffer.Length;
                Interlocked.Add(ref _sent, buffer.Length);
            }
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            Fail($"sending failed after {Sent:#,0} bytes: {e.Message}");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task ReceiveLoopAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[_bytesPerTick];
        ulong offset = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1.0 / TicksPerSecond));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                // One read per tick at most one tick's budget: the guest sends as fast
                // as we read, so this paces its direction too.
                var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    Fail($"the guest closed the stream after {Received:#,0} bytes");
                    return;
                }

                for (var k = 0; k < n; k++)
                {
                    var want = GuestByte(offset + (ulong)k);
                    if (buffer[k] != want)
                    {
                        Fail($"wrong byte from the guest at offset {offset + (ulong)k:#,0}: got {buffer[k]}, want {want}");
                        return;
                    }
                }

                offset += (ulong)n;
                Interlocked.Add(ref _received, n);
                lock (_gate)
                {
                    var now = _clock.Elapsed;
                    if (now - _lastReceive > _longestGap)
                    {
                        _longestGap = now - _lastReceive;
                    }

                    _lastReceive = now;
                }
            }
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            Fail($"receiving failed after {Received:#,0} bytes: {e.Message}");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private void Fail(string message)
    {
        lock (_gate)
        {
            _failure ??= message;
        }
    }
}
