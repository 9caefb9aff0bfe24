using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using McGrpc.Shared.Qmp;

namespace McGrpc.Primary.Checkpoint;

/// <summary>
/// Captures QEMU's device state while the guest is stopped: a migration with
/// x-ignore-shared (RAM lives in the shared file and is skipped) to a unix
/// socket this daemon listens on. The stream is kept whole in memory.
/// </summary>
internal sealed class DeviceStateCapture : IAsyncDisposable
{
    private static readonly TimeSpan AcceptTimeout = TimeSpan.FromSeconds(5);

    private readonly QmpClient _qmp;
    private readonly string _socketPath;
    private readonly long _maxBytes;
    private readonly Socket _listener;
    private int _lastSize = 512 * 1024;

    private DeviceStateCapture(QmpClient qmp, string socketPath, long maxBytes, Socket listener)
    {
        _qmp = qmp;
        _socketPath = socketPath;
        _maxBytes = maxBytes;
        _listener = listener;
    }

    /// <summary>Listens on <paramref name="socketPath"/> and turns on the migration capabilities device-state capture needs.</summary>
    public static async Task<DeviceStateCapture> StartAsync(QmpClient qmp, string socketPath, long maxBytes, CancellationToken cancellationToken)
    {
        await qmp.MigrateSetCapabilitiesAsync(new Dictionary<string, bool> { ["x-ignore-shared"] = true, ["events"] = true }, cancellationToken).ConfigureAwait(false);
        File.Delete(socketPath);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            listener.Listen(4);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        return new DeviceStateCapture(qmp, socketPath, maxBytes, listener);
    }

    /// <summary>
    /// Runs one device-state migration of the stopped guest and returns once
    /// QEMU is in postmigrate, the state from which "cont" resumes it.
    /// </summary>
    public async Task<DeviceStateBlob> CaptureAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();

        // The accept must never outlive this call: a stale accept would steal
        // the next epoch's connection.
        using var acceptCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        acceptCancellation.CancelAfter(AcceptTimeout);
        var accept = _listener.AcceptAsync(acceptCancellation.Token).AsTask();
        Socket connection;
        try
        {
            await _qmp.MigrateAsync($"unix:{_socketPath}", cancellationToken).ConfigureAwait(false);
            connection = await accept.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await acceptCancellation.CancelAsync().ConfigureAwait(false);
            await accept.ContinueWith(static t => t.Exception, TaskScheduler.Default).ConfigureAwait(false);
            if (e is OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                throw new DeviceStateException($"QEMU did not connect to the device-state socket {_socketPath} within {AcceptTimeout.TotalSeconds} s.", e);
            }

            throw;
        }

        byte[] buffer;
        int length;
        using (connection)
        {
            (buffer, length) = await ReadToEndAsync(connection, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            await WaitForPostmigrateAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }

        _lastSize = Math.Max(length, 64 * 1024);
        return new DeviceStateBlob(buffer, length, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    public ValueTask DisposeAsync()
    {
        _listener.Dispose();
        File.Delete(_socketPath);
        return ValueTask.CompletedTask;
    }

    private async Task<(byte[] Buffer, int Length)> ReadToEndAsync(Socket connection, CancellationToken cancellationToken)
    {
        // Start a little above the last size so the usual stream fits without growing.
        var buffer = ArrayPool<byte>.Shared.Rent(_lastSize + (_lastSize / 4));
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length >= _maxBytes)
                    {
                        throw new DeviceStateException(
                            $"The device-state stream exceeded {_maxBytes:#,0} bytes: QEMU is sending guest RAM, so x-ignore-shared is not taking effect (memory-backend-file with share=on is required).");
                    }

                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await connection.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    return (buffer, length);
                }

                length += read;
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private async Task WaitForPostmigrateAsync(CancellationToken cancellationToken)
    {
        // The MIGRATION "completed" event comes before the run state turns
        // postmigrate, and "cont" before that would race QEMU's own state
        // change: poll the run state itself.
        var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 5;
        for (var attempt = 0; ; attempt++)
        {
            var status = await _qmp.QueryStatusAsync(cancellationToken).ConfigureAwait(false);
            if (status.Status == "postmigrate")
            {
                return;
            }

            if (attempt % 16 == 15)
            {
                var migration = await _qmp.QueryMigrateAsync(cancellationToken).ConfigureAwait(false);
                if (migration.Status is "failed" or "cancelled")
                {
                    throw new DeviceStateException($"QEMU's device-state migration {migration.Status}: {migration.ErrorDescription ?? "no reason given"}.");
                }
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new DeviceStateException($"QEMU did not reach postmigrate within 5 s after sending device state (run state '{status.Status}').");
            }

            if (attempt > 4)
            {
                await Task.Delay(1, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
