using Grpc.Core;
using Grpc.Net.Client;
using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Bench;

/// <summary>
/// A protected pair around an already running guest: a fresh incoming backup
/// QEMU, mc-backup and mc-primary. Disposing stops the backup side first, so
/// nothing fails over, and leaves the guest running for the next measurement.
/// </summary>
internal sealed class BenchPair : IAsyncDisposable
{
    private readonly GrpcChannel _primaryChannel;
    private readonly GrpcChannel _backupChannel;

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

    public static async Task<BenchPair> StartAsync(TestVm guest, IEnumerable<string> primaryArgs, IEnumerable<string> backupArgs)
    {
        var backup = await TestVm.StartAsync(guest.Options with { Incoming = true });
        var replication = FreePort.Next();
        var backupControl = FreePort.Next();
        var primaryControl = FreePort.Next();
        var backupDaemon = DaemonProcess.StartBackup(
        [
            "--qmp", backup.DaemonQmpSocket, "--listen", $"127.0.0.1:{replication}", "--control", $"127.0.0.1:{backupControl}", "--metrics", "off",
            .. backupArgs,
        ]);
        await Wait.UntilAsync(() => backupDaemon.OutputContains("waiting for the primary"), TimeSpan.FromSeconds(60), () => backupDaemon.Diagnostics(), 100);
        var primaryDaemon = DaemonProcess.StartPrimary(
        [
            "--qmp", guest.DaemonQmpSocket, "--target", $"tcp:127.0.0.1:{replication}", "--control", $"127.0.0.1:{primaryControl}", "--metrics", "off",
            .. primaryArgs,
        ]);
        var pair = new BenchPair(backup, backupDaemon, primaryDaemon, primaryControl, backupControl);
        try
        {
            await Wait.UntilAsync(
                async () => (await pair.TryStatusAsync())?.State == "protected",
                TimeSpan.FromMinutes(5),
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

    public async ValueTask DisposeAsync()
    {
        await BackupDaemon.DisposeAsync();
        await Backup.DisposeAsync();
        await PrimaryDaemon.DisposeAsync();
        _primaryChannel.Dispose();
        _backupChannel.Dispose();
    }
}
