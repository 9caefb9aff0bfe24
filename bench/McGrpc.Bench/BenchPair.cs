using Grpc.Core;
using Grpc.Net.Client;
using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Bench;

/// <summary>
/// A protected pair around an already running guest: a fresh incoming backup
/// QEMU, mc-backup and mc-primary. Disposing cancels protection, then stops
/// the backup side first, so nothing fails over, and leaves the guest running
/// for the next measurement.
/// After a failover, <see cref="ReleaseBackup"/> hands the backup VM (now
/// running the guest) to the caller instead.
/// </summary>
internal sealed class BenchPair : IAsyncDisposable
{
    private readonly GrpcChannel _primaryChannel;
    private readonly GrpcChannel _backupChannel;
    private bool _backupReleased;

    private BenchPair(TestVm backup, DaemonProcess backupDaemon, DaemonProcess primaryDaemon, int primaryControl, int backupControl)
    {
        Backup = backup;
        BackupDaemon = backupDaemon;
        PrimaryDaemon = primaryDaemon;
        _primaryChannel = GrpcChannel.ForAddress($"http://127.0.0.1:{primaryControl}");
        _backupChannel = GrpcChannel.ForAddress($"http://127.0.0.1:{backupControl}");
        Primary = new PrimaryControl.PrimaryControlClient(_primaryChannel);
        BackupControl = new BackupControl.BackupControlClient(_backupChannel);
    }

    public TestVm Backup { get; }

    public DaemonProcess BackupDaemon { get; }

    public DaemonProcess PrimaryDaemon { get; }

    public PrimaryControl.PrimaryControlClient Primary { get; }

    public BackupControl.BackupControlClient BackupControl { get; }

    /// <summary>Starts a backup QEMU, mc-backup and mc-primary around <paramref name="guest"/> and waits until the primary reports protected.</summary>
    /// <param name="guest">The running guest to protect.</param>
    /// <param name="primaryArgs">Extra mc-primary options.</param>
    /// <param name="backupArgs">Extra mc-backup options.</param>
    /// <param name="backupOptions">
    /// Changes the backup QEMU's options (besides -incoming), e.g. a netdev
    /// without the guest's host port forwards, which only one QEMU can bind.
    /// </param>
    public static async Task<BenchPair> StartAsync(TestVm guest, IEnumerable<string> primaryArgs, IEnumerable<string> backupArgs, Func<TestVmOptions, TestVmOptions>? backupOptions = null)
    {
        var options = guest.Options with { Incoming = true };
        var backup = await TestVm.StartAsync(backupOptions is null ? options : backupOptions(options) with { Incoming = true });
        var replication = FreePort.Next();
        var backupControl = FreePort.Next();
        var primaryControl = FreePort.Next();
        var backupDaemon = DaemonProcess.StartBackup(
        [
            "--qmp", backup.DaemonQmpSocket, "--listen", $"127.0.0.1:{replication}", "--control", $"127.0.0.1:{backupControl}", "--metrics", "off",
            .. DaemonSecurity.BackupArgs, .. backupArgs,
        ]);
        await Wait.UntilAsync(() => backupDaemon.OutputContains("waiting for the primary"), TimeSpan.FromSeconds(60), () => backupDaemon.Diagnostics(), 100);
        var primaryDaemon = DaemonProcess.StartPrimary(
        [
            "--qmp", guest.DaemonQmpSocket, "--target", $"tcp:127.0.0.1:{replication}", "--control", $"127.0.0.1:{primaryControl}", "--metrics", "off",
            .. DaemonSecurity.PrimaryArgs, .. primaryArgs,
        ]);
        var pair = new BenchPair(backup, backupDaemon, primaryDaemon, primaryControl, backupControl);
        try
        {
            await Wait.UntilAsync(
                async () =>
                {
                    var status = await pair.TryStatusAsync();
                    // A refused option (say, an output buffer this build lacks) ends in "failed" at once: say so instead of waiting out the timeout.
                    if (status?.State == "failed" || primaryDaemon.HasExited || backupDaemon.HasExited)
                    {
                        throw new BenchPairException(status?.StateReason is { Length: > 0 } reason ? reason : "a daemon exited", $"{primaryDaemon.Diagnostics()}\n{backupDaemon.Diagnostics()}");
                    }

                    return status?.State == "protected";
                },
                TimeSpan.FromMinutes(2),
                () => $"not protected.\n{primaryDaemon.Diagnostics()}\n{backupDaemon.Diagnostics()}",
                200);
        }
        catch
        {
            await pair.DisposeAsync();
            throw;
        }

        return pair;
    }

    public async Task<PrimaryStatus?> TryStatusAsync()
    {
        try
        {
            return await Primary.QueryStatusAsync(new QueryStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
        }
        catch (RpcException)
        {
            return null;
        }
    }

    /// <summary>One status per epoch (as far as WatchStatus delivers them) until <paramref name="count"/> new epochs were seen.</summary>
    public async Task<List<PrimaryStatus>> CollectEpochsAsync(int count, TimeSpan timeout)
    {
        var samples = new List<PrimaryStatus>();
        using var cancellation = new CancellationTokenSource(timeout);
        using var watch = Primary.WatchStatus(new WatchStatusRequest(), cancellationToken: cancellation.Token);
        ulong? first = null;
        ulong last = 0;
        try
        {
            await foreach (var status in watch.ResponseStream.ReadAllAsync(cancellation.Token))
            {
                if (status.State != "protected" || status.Stats is null || status.Epoch == last)
                {
                    continue;
                }

                first ??= status.Epoch;
                last = status.Epoch;
                samples.Add(status);
                if (status.Epoch >= first + (ulong)count)
                {
                    break;
                }
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled || cancellation.IsCancellationRequested)
        {
        }

        return samples;
    }

    /// <summary>The backup VM is the caller's from now on: disposing the pair no longer kills it.</summary>
    public TestVm ReleaseBackup()
    {
        _backupReleased = true;
        return Backup;
    }

    public async ValueTask DisposeAsync()
    {
        // Cancel first: the primary ends its epoch loop between two checkpoints,
        // says goodbye (the backup then waits instead of failing over) and leaves
        // the guest running. A kill alone can land inside a stop and leave the
        // guest paused for the next measurement.
        if (!PrimaryDaemon.HasExited)
        {
            try
            {
                await Primary.CancelAsync(new CancelRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
            }
            catch (RpcException)
            {
            }
        }

        await BackupDaemon.DisposeAsync();
        if (!_backupReleased)
        {
            await Backup.DisposeAsync();
        }

        await PrimaryDaemon.DisposeAsync();
        _primaryChannel.Dispose();
        _backupChannel.Dispose();
    }
}
