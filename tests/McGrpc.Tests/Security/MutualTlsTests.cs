using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using McGrpc.Primary.Replication;
using McGrpc.Protos.Control;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Hosting;
using McGrpc.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace McGrpc.Tests.Security;

/// <summary>
/// Mutual TLS against a real mc-backup: only a client whose certificate
/// chains to the configured CA gets as far as Hello; every other client is
/// refused in the TLS handshake, before the backup reads a frame. And the
/// primary's side: it accepts only a backup certificate from the CA that
/// names the target.
/// </summary>
public sealed class MutualTlsTests : IClassFixture<SecureBackup>
{
    private readonly SecureBackup _backup;

    public MutualTlsTests(SecureBackup backup)
    {
        _backup = backup;
    }

    [Fact]
    public async Task Primary_with_a_certificate_from_the_CA_gets_its_hello_answered()
    {
        var (replies, error) = await _backup.ReplicateAsync([new PrimaryFrame { Hello = _backup.Hello("tlsok") }, Goodbye()]);
        Assert.True(error is null, $"the right certificate was refused: {error?.Status}\n{_backup.Diagnostics()}");
        Assert.Equal(BackupFrame.BodyOneofCase.HelloReply, Assert.Single(replies).BodyCase);
    }

    [Fact]
    public async Task Client_without_a_certificate_is_refused_before_any_frame()
        => await AssertRefusedAsync(null, "the peer presented no certificate");

    // Each refusal is logged with the reason; the tests look for its distinctive parts.

    [Fact]
    public async Task Client_with_a_self_signed_certificate_is_refused()
    {
        var selfSigned = TestPki.Shared.SelfSigned("selfsigned", ["primary.test"], [IPAddress.Loopback]);
        await AssertRefusedAsync(selfSigned.Certificate, "'CN=selfsigned' (issuer 'CN=selfsigned') is not acceptable:", "not issued by the configured CA");
    }

    [Fact]
    public async Task Client_with_a_certificate_from_another_CA_is_refused()
    {
        var other = new TestPki(Directory.CreateTempSubdirectory("mcgrpc-pki-other-").FullName, "Another CA");
        await AssertRefusedAsync(other.Primary.Certificate, "(issuer 'CN=Another CA') is not acceptable:", "not issued by the configured CA");
    }

    [Fact]
    public async Task Client_with_an_expired_certificate_from_the_CA_is_refused()
    {
        var expired = TestPki.Shared.Issue("expired", ["primary.test"], [IPAddress.Loopback], DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddDays(-1));
        await AssertRefusedAsync(expired.Certificate, "'CN=expired' (issuer 'CN=McGrpc test CA') is not acceptable:", "expired or not yet valid");
    }

    [Fact]
    public async Task Client_certificate_not_meant_for_clients_is_refused()
    {
        var serverOnly = TestPki.Shared.Issue("serveronly", ["primary.test"], [IPAddress.Loopback], clientAuth: false);
        await AssertRefusedAsync(serverOnly.Certificate, "'CN=serveronly' (issuer 'CN=McGrpc test CA') is not acceptable:", "extended key usage does not allow this purpose");
    }

    [Fact]
    public async Task Plaintext_client_is_refused_on_the_replication_port()
    {
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{_backup.ReplicationPort}");
        var client = new Replication.ReplicationClient(channel);
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = client.Replicate(deadline: DateTime.UtcNow.AddSeconds(20));
            await call.RequestStream.WriteAsync(new PrimaryFrame { Hello = _backup.Hello("plaintext") });
            await call.ResponseStream.MoveNext();
        });
        Assert.NotEqual(StatusCode.OK, error.StatusCode);
    }

    [Fact]
    public async Task Control_api_on_a_public_address_requires_an_operator_certificate()
    {
        Assert.Equal("waiting", (await _backup.Control.QueryStatusAsync(new QueryStatusRequest())).State);

        using var anonymous = SecureBackup.Channel(_backup.ControlPort, null);
        await Assert.ThrowsAsync<RpcException>(async () => await new BackupControl.BackupControlClient(anonymous).QueryStatusAsync(new QueryStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(20)));

        using var plaintext = GrpcChannel.ForAddress($"http://127.0.0.1:{_backup.ControlPort}");
        await Assert.ThrowsAsync<RpcException>(async () => await new BackupControl.BackupControlClient(plaintext).QueryStatusAsync(new QueryStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(20)));
    }

    [Fact]
    public async Task Primary_accepts_the_backup_only_with_a_certificate_from_its_CA_that_names_the_target()
    {
        var target = Target($"tcp:127.0.0.1:{_backup.ReplicationPort}");

        // Right CA, and the certificate names 127.0.0.1: the link opens.
        await AssertPrimaryLinkAsync(PrimarySettings(TestPki.Shared.CaFile), target, expectRefused: false);

        // A CA that did not issue the backup's certificate.
        var other = new TestPki(Directory.CreateTempSubdirectory("mcgrpc-pki-other-").FullName, "Another CA");
        await AssertPrimaryLinkAsync(PrimarySettings(other.CaFile), target, expectRefused: true);

        // The right CA, but the backup's certificate does not name what the primary expects.
        await AssertPrimaryLinkAsync(PrimarySettings(TestPki.Shared.CaFile, peerName: "backup.elsewhere.test"), target, expectRefused: true);

        // localhost is in the backup's certificate too.
        await AssertPrimaryLinkAsync(PrimarySettings(TestPki.Shared.CaFile), Target($"tcp:localhost:{_backup.ReplicationPort}"), expectRefused: false);

        // Plaintext http:// with TLS configured is refused without connecting.
        await AssertPrimaryLinkAsync(PrimarySettings(TestPki.Shared.CaFile), Target($"http://127.0.0.1:{_backup.ReplicationPort}"), expectRefused: true);
    }

    private async Task AssertRefusedAsync(X509Certificate2? certificate, params string[] logged)
    {
        var sessionsBefore = CountSessions();
        var rejectedBefore = (await _backup.Control.QueryStatusAsync(new QueryStatusRequest())).FramesRejected;
        using var channel = _backup.ReplicationChannel(certificate);
        var client = new Replication.ReplicationClient(channel);
        // The refusal reaches the client as a failed call or, when the server drops the
        // connection before the call's HTTP/2 stream starts, as the raw I/O error of the write.
        var error = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            using var call = client.Replicate(deadline: DateTime.UtcNow.AddSeconds(30));
            await call.RequestStream.WriteAsync(new PrimaryFrame { Hello = _backup.Hello("intruder") });
            await call.ResponseStream.MoveNext();
        });
        Assert.True(
            error is RpcException { StatusCode: StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown } or IOException,
            $"unexpected error {error}");

        await Wait.UntilAsync(
            () => _backup.Daemon.Output.Split('\n').Any(l => l.Contains("Refused a replication connection from 127.0.0.1:", StringComparison.Ordinal) && logged.All(part => l.Contains(part, StringComparison.Ordinal))),
            TimeSpan.FromSeconds(20),
            () => $"the backup did not log the refusal ({string.Join(" ... ", logged)}).\n{_backup.Diagnostics()}");

        // Refused in the handshake: no session, no frame read, nothing rejected at the frame level.
        var status = await _backup.Control.QueryStatusAsync(new QueryStatusRequest());
        Assert.Equal(sessionsBefore, CountSessions());
        Assert.Equal(rejectedBefore, status.FramesRejected);
        Assert.Equal("waiting", status.State);
    }

    private async Task AssertPrimaryLinkAsync(TlsSettings settings, ReplicationTarget target, bool expectRefused)
    {
        using var channel = ReplicationChannel.Create(target, settings, NullLogger.Instance);
        var client = new Replication.ReplicationClient(channel);
        Exception? error = null;
        try
        {
            using var call = client.Replicate(deadline: DateTime.UtcNow.AddSeconds(30));
            await call.RequestStream.WriteAsync(new PrimaryFrame { Hello = _backup.Hello("primaryside") });
            Assert.True(await call.ResponseStream.MoveNext());
            Assert.Equal(BackupFrame.BodyOneofCase.HelloReply, call.ResponseStream.Current.BodyCase);
            await call.RequestStream.WriteAsync(Goodbye());
            await call.RequestStream.CompleteAsync();
            while (await call.ResponseStream.MoveNext())
            {
            }
        }
        catch (RpcException e)
        {
            error = e;
        }

        if (expectRefused)
        {
            Assert.True(error is not null, $"the primary accepted the backup at {target}");
        }
        else
        {
            Assert.True(error is null, $"the primary refused the backup at {target}: {error?.Message}\n{_backup.Diagnostics()}");
        }
    }

    private static TlsSettings PrimarySettings(string caFile, string? peerName = null)
    {
        var options = new TlsOptions
        {
            CaFile = caFile,
            CertFile = TestPki.Shared.Primary.CertFile,
            KeyFile = TestPki.Shared.Primary.KeyFile,
            PeerName = peerName,
        };
        return TlsSettings.Load(options, ListenAddress.Parse("127.0.0.1:1", "--control"), PeerRole.Primary);
    }

    private static ReplicationTarget Target(string value)
    {
        Assert.True(ReplicationTarget.TryParse(value, out var target, out var error), error);
        return target!;
    }

    private int CountSessions() => _backup.Daemon.Output.Split('\n').Count(l => l.Contains("Primary session", StringComparison.Ordinal));

    private static PrimaryFrame Goodbye() => new() { Goodbye = new Goodbye { Reason = "test done" } };
}
