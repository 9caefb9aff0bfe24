using System.IO.Hashing;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using McGrpc.Protos.Control;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Security;

/// <summary>
/// A real mc-backup over a real paused incoming QEMU (-incoming defer -S; no
/// guest boots), configured as in production: mutual TLS on the replication
/// port and a TLS control API on a non-loopback address that requires an
/// operator certificate. Failover is manual, so a closed test stream never
/// resumes the VM. Tests reach it with whatever certificate they want to try.
/// </summary>
public sealed class SecureBackup : IAsyncLifetime
{
    public const string VmName = "securevm";
    public const int MemoryMiB = 64;
    public const int HelloTimeoutMs = 2000;

    private GrpcChannel? _control;

    internal TestVm Qemu { get; private set; } = null!;

    internal DaemonProcess Daemon { get; private set; } = null!;

    internal int ReplicationPort { get; private set; }

    internal int ControlPort { get; private set; }

    internal IssuedCertificate Operator { get; private set; } = null!;

    internal long RamSize => MemoryMiB * 1024L * 1024;

    internal BackupControl.BackupControlClient Control { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var pki = TestPki.Shared;
        Operator = pki.Issue("operator", ["operator"], []);
        Qemu = await TestVm.StartAsync(new TestVmOptions { Name = VmName, MemoryMiB = MemoryMiB, Incoming = true });
        ReplicationPort = FreePort.Next();
        ControlPort = FreePort.Next();
        Daemon = DaemonProcess.StartBackup(
        [
            "--qmp", Qemu.DaemonQmpSocket, "--listen", $"127.0.0.1:{ReplicationPort}", "--control", $"0.0.0.0:{ControlPort}", "--metrics", "off",
            "--failover-policy", "manual", "--hello-timeout", HelloTimeoutMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            .. pki.BackupArgs,
        ]);
        _control = Channel(ControlPort, Operator.Certificate);
        Control = new BackupControl.BackupControlClient(_control);
        await Wait.UntilAsync(async () => await TryStateAsync() is "waiting", TimeSpan.FromSeconds(60), () => $"mc-backup did not become ready.\n{Diagnostics()}", 200);
    }

    public async Task DisposeAsync()
    {
        _control?.Dispose();
        if (Daemon is not null)
        {
            await Daemon.DisposeAsync();
        }

        if (Qemu is not null)
        {
            await Qemu.DisposeAsync();
        }
    }

    /// <summary>
    /// A channel to one of the backup's TLS ports, presenting
    /// <paramref name="clientCertificate"/> (none when null) and trusting
    /// whatever the backup presents: the tests judge the backup, not the client.
    /// </summary>
    internal static GrpcChannel Channel(int port, X509Certificate2? clientCertificate)
    {
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        if (clientCertificate is not null)
        {
            // Always send it, whatever CA names the server lists.
            handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate;
            handler.SslOptions.ClientCertificates = [clientCertificate];
        }

        return GrpcChannel.ForAddress($"https://127.0.0.1:{port}", new GrpcChannelOptions
        {
            HttpHandler = handler,
            MaxSendMessageSize = 8 * FrameLimits.MaxFrameBytes,
            MaxReceiveMessageSize = 8 * FrameLimits.MaxFrameBytes,
        });
    }

    internal GrpcChannel ReplicationChannel(X509Certificate2? clientCertificate) => Channel(ReplicationPort, clientCertificate);

    internal async Task<string?> TryStateAsync()
    {
        try
        {
            return (await Control.QueryStatusAsync(new QueryStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5))).State;
        }
        catch (RpcException)
        {
            return null;
        }
    }

    /// <summary>XxHash128 of the backup QEMU's RAM file, as QEMU would read it at failover.</summary>
    internal byte[] RamHash()
    {
        using var file = new FileStream(Qemu.RamFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var hash = new XxHash128();
        hash.Append(file);
        return hash.GetCurrentHash();
    }

    internal byte[] RamBytes()
    {
        using var file = new FileStream(Qemu.RamFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[RamSize];
        file.ReadExactly(bytes);
        return bytes;
    }

    internal Hello Hello(string session) => new()
    {
        ProtocolVersion = FrameLimits.ProtocolVersion,
        VmId = VmName,
        RamSize = (ulong)RamSize,
        PageSize = FrameLimits.PageSize,
        SessionId = session,
    };

    /// <summary>
    /// Sends <paramref name="frames"/> on one Replicate call with the primary's
    /// certificate, then ends the call; returns what the backup answered and
    /// how it ended the call (null status: it ended normally).
    /// </summary>
    internal async Task<(List<BackupFrame> Replies, RpcException? Error)> ReplicateAsync(IEnumerable<PrimaryFrame> frames, X509Certificate2? clientCertificate = null, bool complete = true)
    {
        using var channel = ReplicationChannel(clientCertificate ?? TestPki.Shared.Primary.Certificate);
        var client = new Replication.ReplicationClient(channel);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var call = client.Replicate(cancellationToken: cancel.Token);
        var replies = new List<BackupFrame>();
        var reader = Task.Run(async () =>
        {
            while (await call.ResponseStream.MoveNext(cancel.Token))
            {
                lock (replies)
                {
                    replies.Add(call.ResponseStream.Current);
                }
            }
        });
        try
        {
            foreach (var frame in frames)
            {
                await call.RequestStream.WriteAsync(frame, cancel.Token);
            }

            if (complete)
            {
                await call.RequestStream.CompleteAsync();
            }
        }
        catch (Exception e) when (e is RpcException or InvalidOperationException or IOException)
        {
            // The backup closed the call while frames were still going out; its status tells why.
        }

        try
        {
            await reader;
            return (replies, null);
        }
        catch (RpcException e)
        {
            return (replies, e);
        }
    }

    internal string Diagnostics() => $"{Daemon?.Diagnostics()}\n{Qemu?.Diagnostics("backup")}";
}
