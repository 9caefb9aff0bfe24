using Grpc.Net.Client;
using McGrpc.Protos.Control;

namespace McGrpc.Tests.Infrastructure;

/// <summary>
/// One booted test guest for a whole collection of tests, protected again and
/// again: each scenario starts a fresh backup (an incoming QEMU boots nothing,
/// so it is cheap) and fresh daemons with the options it needs. After a
/// failover the backup VM, now running the guest, becomes the next primary,
/// which is also how an operator restores protection in production.
/// </summary>
public class GuestChain : IAsyncLifetime
{
    public const string VmName = "chainvm";

    private readonly List<IAsyncDisposable> _retired = [];

    internal TestVm Primary { get; private set; } = null!;

    internal TestVm? Backup { get; private set; }

    internal DaemonProcess? PrimaryDaemon { get; private set; }

    internal DaemonProcess? BackupDaemon { get; private set; }

    internal int ReplicationPort { get; private set; }

    internal PrimaryControl.PrimaryControlClient PrimaryControl { get; private set; } = null!;

    internal BackupControl.BackupControlClient BackupControl { get; private set; } = null!;

    internal int PrimaryControlPort { get; private set; }

    internal int BackupControlPort { get; private set; }

    private GrpcChannel? _primaryChannel;
    private GrpcChannel? _backupChannel;

    public async Task InitializeAsync()
    {
        Primary = await TestVm.StartAsync(await CreateVmOptionsAsync(null));
        await Primary.WaitForSerialAsync(l => l.Contains("GUEST READY", StringComparison.Ordinal), TimeSpan.FromSeconds(120), "GUEST READY");
    }

    /// <summary>
    /// Options of the chain's first VM (<paramref name="primary"/> null) or of
    /// a new incoming backup for <paramref name="primary"/>. A subclass can
    /// give each VM resources of its own (a tap device, for example).
    /// </summary>
    internal virtual Task<TestVmOptions> CreateVmOptionsAsync(TestVmOptions? primary)
        => Task.FromResult(primary is null ? new TestVmOptions { Name = VmName, Run = "counter,memverify" } : primary with { Incoming = true });

    /// <summary>
    /// Stops whatever protects the guest now (backup first, so nothing fails
    /// over), then starts a fresh backup and daemons and waits until the
    /// backup holds a checkpoint.
    /// </summary>
    internal async Task ProtectAsync(string[]? primaryArgs = null, string[]? backupArgs = null, bool waitProtected = true)
    {
        await TearDownProtectionAsync();
        Backup = await TestVm.StartAsync(await CreateVmOptionsAsync(Primary.Options));
        ReplicationPort = FreePort.Next();
        BackupControlPort = FreePort.Next();
        PrimaryControlPort = FreePort.Next();
        BackupDaemon = DaemonProcess.StartBackup(
        [
            "--qmp", Backup.DaemonQmpSocket, "--listen", $"127.0.0.1:{ReplicationPort}", "--control", $"127.0.0.1:{BackupControlPort}", "--metrics", "off",
            .. Security.TestPki.Shared.BackupArgs,
            .. backupArgs ?? [],
        ]);
        _backupChannel = GrpcChannel.ForAddress($"http://127.0.0.1:{BackupControlPort}");
        BackupControl = new BackupControl.BackupControlClient(_backupChannel);
        await Wait.UntilAsync(async () => await TryBackupStateAsync() is "waiting", TimeSpan.FromSeconds(30), () => $"mc-backup did not become ready.\n{Diagnostics()}", 100);

        PrimaryDaemon = StartPrimaryDaemon(primaryArgs);
        if (waitProtected)
        {
            await WaitProtectedAsync(TimeSpan.FromSeconds(90));
        }
    }

    internal DaemonProcess StartPrimaryDaemon(string[]? primaryArgs)
    {
        var daemon = DaemonProcess.StartPrimary(
        [
            "--qmp", Primary.DaemonQmpSocket, "--target", $"tcp:127.0.0.1:{ReplicationPort}", "--control", $"127.0.0.1:{PrimaryControlPort}", "--metrics", "off",
            .. Security.TestPki.Shared.PrimaryArgs,
            .. primaryArgs ?? [],
        ]);
        _primaryChannel?.Dispose();
        _primaryChannel = GrpcChannel.ForAddress($"http://127.0.0.1:{PrimaryControlPort}");
        PrimaryControl = new PrimaryControl.PrimaryControlClient(_primaryChannel);
        PrimaryDaemon = daemon;
        return daemon;
    }

    internal async Task WaitProtectedAsync(TimeSpan timeout)
    {
        await Wait.UntilAsync(
            async () => await TryPrimaryStateAsync() is "protected" && await TryBackupStateAsync() is "protected",
            timeout,
            () => $"the pair did not reach protected.\n{Diagnostics()}",
            100);
    }

    /// <summary>After a failover: the backup VM runs the guest and becomes the primary of the next scenario.</summary>
    internal async Task PromoteBackupAsync()
    {
        var promoted = Backup ?? throw new InvalidOperationException("No backup to promote.");
        await RetireDaemonsAsync();
        _retired.Add(Primary);
        Primary.Kill();
        Primary = promoted;
        Backup = null;
    }

    internal async Task<string?> TryPrimaryStateAsync()
    {
        try
        {
            return (await PrimaryControl.QueryStatusAsync(new QueryStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(2))).State;
        }
        catch (Grpc.Core.RpcException)
        {
            return null;
        }
    }

    internal async Task<string?> TryBackupStateAsync()
    {
        try
        {
            return (await BackupControl.QueryStatusAsync(new QueryStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(2))).State;
        }
        catch (Grpc.Core.RpcException)
        {
            return null;
        }
    }

    internal string Diagnostics()
    {
        var parts = new List<string> { Primary.Diagnostics("primary") };
        if (Backup is not null)
        {
            parts.Add(Backup.Diagnostics("backup"));
        }

        if (PrimaryDaemon is not null)
        {
            parts.Add(PrimaryDaemon.Diagnostics());
        }

        if (BackupDaemon is not null)
        {
            parts.Add(BackupDaemon.Diagnostics());
        }

        return string.Join('\n', parts);
    }

    public virtual async Task DisposeAsync()
    {
        await RetireDaemonsAsync();
        if (Backup is not null)
        {
            await Backup.DisposeAsync();
        }

        await Primary.DisposeAsync();
        foreach (var retired in _retired)
        {
            await retired.DisposeAsync();
        }

        _primaryChannel?.Dispose();
        _backupChannel?.Dispose();
    }

    private async Task TearDownProtectionAsync()
    {
        if (Backup is not null && BackupDaemon is not null && !Backup.HasExited && await TryBackupStateAsync() is "failed_over")
        {
            await PromoteBackupAsync();
        }

        // Backup side first: with no backup daemon there is nobody to fail over.
        if (BackupDaemon is not null)
        {
            await BackupDaemon.DisposeAsync();
            _retired.Add(BackupDaemon);
            BackupDaemon = null;
        }

        if (Backup is not null)
        {
            _retired.Add(Backup);
            Backup.Kill();
            Backup = null;
        }

        await RetireDaemonsAsync();
        if (Primary.HasExited)
        {
            throw new InvalidOperationException($"The guest's QEMU is gone; the chain cannot continue.\n{Primary.Diagnostics("primary")}");
        }
    }

    private async Task RetireDaemonsAsync()
    {
        foreach (var daemon in new[] { PrimaryDaemon, BackupDaemon })
        {
            if (daemon is not null)
            {
                await daemon.DisposeAsync();
                _retired.Add(daemon);
            }
        }

        PrimaryDaemon = null;
        BackupDaemon = null;
    }
}
