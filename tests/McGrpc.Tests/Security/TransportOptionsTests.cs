using McGrpc.Shared.Hosting;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Security;

/// <summary>What the daemons accept as transport configuration, and what they refuse to start with.</summary>
public sealed class TransportOptionsTests
{
    private static readonly ListenAddress Loopback = ListenAddress.Parse("127.0.0.1:7101", "--control");
    private static readonly ListenAddress Public = ListenAddress.Parse("0.0.0.0:7101", "--control");
    private static readonly ListenAddress Unix = ListenAddress.Parse("unix:/run/mc/control.sock", "--control");

    [Fact]
    public void Replication_needs_certificates_unless_plaintext_is_asked_for()
    {
        var problem = Assert.Single(new TlsOptions().Validate(Loopback));
        Assert.Contains("--tls-ca, --tls-cert, --tls-key missing", problem, StringComparison.Ordinal);
        Assert.Contains("--insecure-plaintext", problem, StringComparison.Ordinal);
        Assert.Empty(new TlsOptions { InsecurePlaintext = true }.Validate(Loopback));
        Assert.Empty(new TlsOptions { InsecurePlaintext = true }.Validate(Unix));
    }

    [Fact]
    public void Control_api_off_loopback_needs_tls_or_the_explicit_plaintext_option()
    {
        var plaintext = new TlsOptions { InsecurePlaintext = true };
        Assert.True(plaintext.ControlUsesTls(Public));
        var problem = Assert.Single(plaintext.Validate(Public));
        Assert.Contains("is not on loopback", problem, StringComparison.Ordinal);
        Assert.Contains("--control-insecure-plaintext", problem, StringComparison.Ordinal);

        var explicitPlaintext = new TlsOptions { InsecurePlaintext = true, ControlInsecurePlaintext = true };
        Assert.Empty(explicitPlaintext.Validate(Public));
        Assert.False(explicitPlaintext.ControlUsesTls(Public));
        Assert.False(plaintext.ControlUsesTls(Loopback));
        Assert.False(plaintext.ControlUsesTls(Unix));
        Assert.Single(new TlsOptions { InsecurePlaintext = true, ControlClientCertificate = "sometimes" }.Validate(Loopback));
    }

    [Theory]
    [InlineData("tcp:10.0.0.2:7000", true, "https://10.0.0.2:7000/")]
    [InlineData("tcp:10.0.0.2:7000", false, "http://10.0.0.2:7000/")]
    [InlineData("tcp:[fd00::2]:7000", true, "https://[fd00::2]:7000/")]
    [InlineData("https://backup.example:7000", true, "https://backup.example:7000/")]
    [InlineData("http://10.0.0.2:7000", false, "http://10.0.0.2:7000/")]
    public void Tcp_targets_take_the_configured_transport(string value, bool tls, string address)
    {
        Assert.True(ReplicationTarget.TryParse(value, out var target, out var error), error);
        Assert.True(target!.Resolve(tls, out var resolved, out error), error);
        Assert.Equal(address, resolved.ToString());
    }

    [Theory]
    [InlineData("http://10.0.0.2:7000", true, "--insecure-plaintext")]
    [InlineData("https://10.0.0.2:7000", false, "asks for TLS")]
    public void An_explicit_scheme_must_agree_with_the_transport(string value, bool tls, string says)
    {
        Assert.True(ReplicationTarget.TryParse(value, out var target, out _));
        Assert.False(target!.Resolve(tls, out _, out var error));
        Assert.Contains(says, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Tcp_target_prints_as_given_and_names_its_host()
    {
        Assert.True(ReplicationTarget.TryParse("tcp:[fd00::2]:7000", out var target, out _));
        Assert.Equal("tcp:[fd00::2]:7000", target!.ToString());
        Assert.Equal("fd00::2", target.Host);
    }

    [Fact]
    public void Flag_switches_need_no_value()
    {
        var docs = TlsOptions.Docs.Concat([new OptionDoc("--listen", "Backup:Listen", "x", "y")]).ToList();
        Assert.Equal(["--insecure-plaintext", "true", "--listen", "x"], CommandLine.ExpandFlags(["--insecure-plaintext", "--listen", "x"], docs));
        Assert.Equal(["--listen", "x", "--insecure-plaintext", "true"], CommandLine.ExpandFlags(["--listen", "x", "--insecure-plaintext"], docs));
        Assert.Equal(["--insecure-plaintext", "false"], CommandLine.ExpandFlags(["--insecure-plaintext", "false"], docs));
        Assert.Contains("  --insecure-plaintext   (Tls:InsecurePlaintext", CommandLine.Help("mc-backup", "test", docs), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--listen", "127.0.0.1:0", "--tls-ca, --tls-cert, --tls-key missing: replication uses mutual TLS by default")]
    [InlineData("--control", "0.0.0.0:0", "is not on loopback, so it uses TLS")]
    public async Task Backup_refuses_to_start_with_an_insecure_transport_it_was_not_told_to_use(string option, string value, string says)
    {
        string[] args = option == "--control"
            ? ["--qmp", "/nonexistent/qmp.sock", "--control", value, "--metrics", "off", "--insecure-plaintext"]
            : ["--qmp", "/nonexistent/qmp.sock", "--listen", value, "--control", "127.0.0.1:0", "--metrics", "off"];
        await using var daemon = DaemonProcess.StartBackup(args);
        Assert.Equal(64, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        await Wait.UntilAsync(() => daemon.OutputContains(says), TimeSpan.FromSeconds(10), daemon.Diagnostics);
    }

    [Fact]
    public async Task Primary_refuses_a_plaintext_target_when_replication_uses_tls()
    {
        await using var daemon = DaemonProcess.StartPrimary(["--qmp", "/nonexistent/qmp.sock", "--target", "http://127.0.0.1:7000", "--control", "127.0.0.1:0", "--metrics", "off", .. TestPki.Shared.PrimaryArgs]);
        Assert.Equal(64, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        await Wait.UntilAsync(() => daemon.OutputContains("--target: http://127.0.0.1:7000 is plaintext but replication uses TLS"), TimeSpan.FromSeconds(10), daemon.Diagnostics);
    }

    [Fact]
    public async Task Daemon_with_an_unreadable_certificate_says_which_file()
    {
        await using var daemon = DaemonProcess.StartBackup(["--qmp", "/nonexistent/qmp.sock", "--control", "127.0.0.1:0", "--metrics", "off", "--tls-ca", TestPki.Shared.CaFile, "--tls-cert", "/nonexistent/backup.crt", "--tls-key", "/nonexistent/backup.key"]);
        Assert.Equal(64, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        await Wait.UntilAsync(() => daemon.OutputContains("--tls-cert /nonexistent/backup.crt"), TimeSpan.FromSeconds(10), daemon.Diagnostics);
    }
}
