using System.Diagnostics;
using System.Net.Sockets;

namespace McGrpc.Tests.Infrastructure;

/// <summary>
/// The client side of tcpserve's verified duplex stream (guest port 5002, see
/// tests/guest/README.md): sends byte i = (i*31 + (i>>11)) &amp; 0xff and checks
/// every received byte j against (j*17 + (j>>13) + 5) &amp; 0xff, both paced so a
/// TCG guest keeps up. Records the first mismatch and any socket error
/// instead of throwing, so a test can say what happened.
/// </summary>
internal sealed class SeqStreamClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly CancellationTokenSource _stopSending = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly int _bytesPerSecond;
    private readonly Task _sender;
    private readonly Task _receiver;
    private long _sent;
    private long _received;
    private long _lastReceiveTimestamp = Stopwatch.GetTimestamp();
    private long _mismatchAt = -1;
    private volatile string? _sendError;
    private volatile string? _receiveError;
    private volatile bool _eof;

    private SeqStreamClient(Socket socket, int bytesPerSecond)
    {
        _socket = socket;
        _bytesPerSecond = bytesPerSecond;
        _sender = Task.Run(SendLoopAsync);
        _receiver = Task.Run(ReceiveLoopAsync);
    }

    public long Sent => Interlocked.Read(ref _sent);

    public long Received => Interlocked.Read(ref _received);

    /// <summary>Offset of the first received byte that broke the pattern, or -1.</summary>
    public long MismatchAt => Interlocked.Read(ref _mismatchAt);

    public string? SendError => _sendError;

    public string? ReceiveError => _receiveError;

    public bool Eof => _eof;

    public TimeSpan SinceLastReceive => Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastReceiveTimestamp));

    public static async Task<SeqStreamClient> ConnectAsync(TestNetwork network, int bytesPerSecond = 200 * 1024)
    {
        var socket = await network.ConnectToGuestAsync(5002, TimeSpan.FromSeconds(60));
        return new SeqStreamClient(socket, bytesPerSecond);
    }

    public static byte ClientByte(long i) => (byte)((i * 31) + (i >> 11));

    public static byte GuestByte(long j) => (byte)((j * 17) + (j >> 13) + 5);

    public override string ToString()
        => $"sent {Sent}, received {Received}, mismatch at {MismatchAt}, send error {SendError ?? "none"}, receive error {ReceiveError ?? "none"}, eof {Eof}, last receive {SinceLastReceive.TotalSeconds:F1} s ago";

    /// <summary>Waits until both directions moved at least <paramref name="bytes"/> beyond the given marks.</summary>
    public Task WaitProgressAsync(long sentFrom, long receivedFrom, long bytes, TimeSpan timeout, Func<string> diagnostics)
        => Wait.UntilAsync(
            () => (Sent - sentFrom >= bytes && Received - receivedFrom >= bytes) || Failed,
            timeout,
            () => $"the stream did not move {bytes} bytes each way: {this}\n{diagnostics()}",
            100);

    public bool Failed => MismatchAt >= 0 || SendError is not null || ReceiveError is not null || Eof;

    /// <summary>Stops sending, shuts the sending side (the guest then closes), and reads until EOF.</summary>
    public async Task FinishAsync(TimeSpan timeout)
    {
        await _stopSending.CancelAsync();
        await _sender;
        if (SendError is null)
        {
            _socket.Shutdown(SocketShutdown.Send);
        }

        await Task.WhenAny(_receiver, Task.Delay(timeout));
    }

    public async ValueTask DisposeAsync()
    {
        await _stopSending.CancelAsync();
        await _abort.CancelAsync();
        _socket.Dispose();
        await Task.WhenAll(_sender, _receiver);
        _stopSending.Dispose();
        _abort.Dispose();
    }

    private async Task SendLoopAsync()
    {
        var chunk = new byte[4096];
        var started = Stopwatch.GetTimestamp();
        try
        {
            while (!_stopSending.IsCancellationRequested)
            {
                var offset = Sent;
                for (var k = 0; k < chunk.Length; k++)
                {
                    chunk[k] = ClientByte(offset + k);
                }

                var written = 0;
                while (written < chunk.Length)
                {
                    written += await _socket.SendAsync(chunk.AsMemory(written), SocketFlags.None, _stopSending.Token);
                    Interlocked.Exchange(ref _sent, offset + written);
                }

                var due = started + (long)((double)Sent / _bytesPerSecond * Stopwatch.Frequency);
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, _stopSending.Token);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            _sendError ??= e.Message;
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[16 * 1024];
        var started = Stopwatch.GetTimestamp();
        try
        {
            while (true)
            {
                var read = await _socket.ReceiveAsync(buffer, SocketFlags.None, _abort.Token);
                if (read == 0)
                {
                    _eof = true;
                    return;
                }

                var offset = Received;
                for (var k = 0; k < read; k++)
                {
                    if (buffer[k] != GuestByte(offset + k) && MismatchAt < 0)
                    {
                        Interlocked.Exchange(ref _mismatchAt, offset + k);
                    }
                }

                Interlocked.Exchange(ref _received, offset + read);
                Interlocked.Exchange(ref _lastReceiveTimestamp, Stopwatch.GetTimestamp());
                var due = started + (long)((double)Received / _bytesPerSecond * Stopwatch.Frequency);
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                if (wait > TimeSpan.Zero && !_stopSending.IsCancellationRequested)
                {
                    await Task.Delay(wait, _abort.Token);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            _receiveError ??= e.Message;
        }
    }
}
