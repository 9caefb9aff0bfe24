using Grpc.Core;
using Grpc.Net.Client;
using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Control;

/// <summary>
/// mc-primary and mc-backup on QEMUs that boot nothing (see <see cref="IdleQemu"/>):
/// the primary's VM has a writable disk and its control API is a unix socket;
/// the backup's is TCP on loopback. Both have a metrics listener. Nothing is
/// protected unless a test starts it (towards a port nobody listens on).
/// </summary>
public sealed class IdleDaemons : IAsyncLifetime
{
    public const string VmName = "idlevm";

    private GrpcChannel? _primaryChannel;
    private GrpcChannel? _backupChannel;

    internal IdleQemu PrimaryQemu { get; private set; } = null!;

    internal IdleQemu BackupQemu { get; private set; } = null!;

    internal DaemonProcess PrimaryDaemon { get; private set; } = null!;

    internal DaemonProcess BackupDaemon { get; private set; } = null!;

    internal string PrimaryControlSocket { get; private set; } = string.Empty;

    internal int PrimaryMetricsPort { get; private set; }

    internal int BackupControlPort { get; private set; }

    internal int BackupMetricsPort { get; private set; }

    internal int ReplicationPort { get; private set; }

    /// <summary>A loopback port nobody listens on: Migrate there stays "connecting".</summary>
    internal int DeadPort { get; private set; }

    internal GrpcChannel PrimaryChannel => _primaryChannel!;

    internal GrpcChannel BackupChannel => _backupChannel!;

    /// <summary>The primary's status before any test changed anything.</summary>
    internal PrimaryStatus InitialPrimaryStatus { get; private set; } = null!;

    internal BackupStatus InitialBackupStatus { get; private set; } = null!;

    internal PrimaryControl.PrimaryControlClient Primary { get; private set; } = null!;

    internal BackupControl.BackupControlClient Backup { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        try
        {
            await StartAsync();
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    private async Task StartAsync()
    {
        var qemus = await Task.WhenAll(
            IdleQemu.StartAsync(VmName, writableDisk: true, incoming: false),
            IdleQemu.StartAsync(VmName, writableDisk: false, incoming: true));
        (PrimaryQemu, BackupQemu) = (qemus[0], qemus[1]);
        PrimaryControlSocket = Path.Combine(PrimaryQemu.Directory, "control.sock");
        PrimaryMetricsPort = FreePort.Next();
        BackupControlPort = FreePort.Next();
        BackupMetricsPort = FreePort.Next();
        ReplicationPort = FreePort.Next();
        DeadPort = FreePort.Next();
        PrimaryDaemon = DaemonProcess.StartPrimary(
            "--qmp", PrimaryQemu.QmpSocket, "--control", $"unix:{PrimaryControlSocket}", "--metrics", $"127.0.0.1:{PrimaryMetricsPort}", "--reconnect-interval", "200", "--insecure-plaintext");
        BackupDaemon = DaemonProcess.StartBackup(
            "--qmp", BackupQemu.QmpSocket, "--listen", $"127.0.0.1:{ReplicationPort}", "--control", $"127.0.0.1:{BackupControlPort}", "--metrics", $"127.0.0.1:{BackupMetricsPort}", "--insecure-plaintext");
        _primaryChannel = ControlChannels.Unix(PrimaryControlSocket);
        _backupChannel = ControlChannels.Tcp(BackupControlPort);
        Primary = new PrimaryControl.PrimaryControlClient(_primaryChannel);
        Backup = new BackupControl.BackupControlClient(_backupChannel);
        await Wait.UntilAsync(async () => await TryAsync(async () => (await Primary.QueryStatusAsync(new QueryStatusRequest())).State) is "idle" || PrimaryDaemon.HasExited, TimeSpan.FromSeconds(60), () => $"mc-primary did not become idle.\n{Diagnostics()}", 100);
        await Wait.UntilAsync(async () => await TryAsync(async () => (await Backup.QueryStatusAsync(new QueryStatusRequest())).State) is "waiting" || BackupDaemon.HasExited, TimeSpan.FromSeconds(60), () => $"mc-backup did not become ready.\n{Diagnostics()}", 100);
        if (PrimaryDaemon.HasExited || BackupDaemon.HasExited)
        {
            throw new InvalidOperationException($"A daemon exited at start.\n{Diagnostics()}");
        }

        InitialPrimaryStatus = await Primary.QueryStatusAsync(new QueryStatusRequest());
        InitialBackupStatus = await Backup.QueryStatusAsync(new QueryStatusRequest());
    }

    /// <summary>Brings the primary to not protecting, with the given capabilities.</summary>
    internal async Task ResetPrimaryAsync(bool mc, bool diskDisable = false)
    {
        var status = await Primary.QueryStatusAsync(new QueryStatusRequest());
        if (status.State is not "idle")
        {
            status = await Primary.CancelAsync(new CancelRequest());
            Assert.True(status.State == "idle", $"Cancel did not end protection: {status}\n{Diagnostics()}");
        }

        await Primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc-disk-disable", Enabled = diskDisable });
        await Primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc", Enabled = mc });
        await Primary.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = 100 });
    }

    /// <summary>Starts protection towards <see cref="DeadPort"/>: the primary stays "connecting", a session in progress.</summary>
    internal async Task StartHopelessProtectionAsync()
    {
        var status = await Primary.QueryStatusAsync(new QueryStatusRequest());
        if (status.State is "connecting")
        {
            return;
        }

        await ResetPrimaryAsync(mc: true, diskDisable: true);
        status = await Primary.MigrateAsync(new MigrateRequest { Target = $"tcp:127.0.0.1:{DeadPort}" });
        Assert.Equal("connecting", status.State);
    }

    internal string Diagnostics()
        => $"--- primary QEMU ---\n{PrimaryQemu?.Output}\n{PrimaryDaemon?.Diagnostics()}\n--- backup QEMU ---\n{BackupQemu?.Output}\n{BackupDaemon?.Diagnostics()}";

    public async Task DisposeAsync()
    {
        _primaryChannel?.Dispose();
        _backupChannel?.Dispose();
        foreach (var disposable in new IAsyncDisposable?[] { PrimaryDaemon, BackupDaemon, PrimaryQemu, BackupQemu })
        {
            if (disposable is not null)
            {
                await disposable.DisposeAsync();
            }
        }
    }

    private static async Task<string?> TryAsync(Func<Task<string>> call)
    {
        try
        {
            return await call();
        }
        catch (RpcException)
        {
            return null;
        }
    }
}
