using System.Net.Sockets;
using McGrpc.Shared;
using McGrpc.Shared.Qmp;

namespace McGrpc.Backup.Failover;

/// <summary>
/// Turns the paused incoming QEMU into the running VM: migrate-incoming on a
/// unix socket QEMU listens on, the checkpoint's device state written into it
/// (RAM is already in the shared file: x-ignore-shared), then cont.
/// </summary>
internal static class FailoverRunner
{
    private static readonly TimeSpan CompletionTimeout = TimeSpan.FromSeconds(30);

    public static async Task RestoreAsync(QmpClient qmp, ReadOnlyMemory<byte> deviceState, string socketPath, CancellationToken cancellationToken)
    {
        File.Delete(socketPath);
        using var events = qmp.Subscribe(e => e.Name == "MIGRATION");
        await qmp.MigrateIncomingAsync($"unix:{socketPath}", cancellationToken).ConfigureAwait(false);

        using (var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
            for (var sent = 0; sent < deviceState.Length;)
            {
                sent += await socket.SendAsync(deviceState[sent..], SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }

            socket.Shutdown(SocketShutdown.Send);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CompletionTimeout);
        while (true)
        {
            // Events are the fast path; query-migrate covers an event that came before we listened.
            var migration = await qmp.QueryMigrateAsync(timeout.Token).ConfigureAwait(false);
            if (migration.Status == "completed")
            {
                break;
            }

            if (migration.Status is "failed" or "cancelled")
            {
                throw new McGrpcException($"The backup QEMU rejected the checkpoint's device state ({migration.Status}: {migration.ErrorDescription ?? "see QEMU's stderr"}). Is it started with exactly the primary's command line?");
            }

            try
            {
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
                wait.CancelAfter(TimeSpan.FromMilliseconds(20));
                await events.Reader.ReadAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!timeout.IsCancellationRequested)
            {
            }
        }

        var status = await qmp.QueryStatusAsync(cancellationToken).ConfigureAwait(false);
        if (!status.Running)
        {
            await qmp.ContAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
