using McGrpc.Backup;
using McGrpc.Primary;
using McGrpc.Shared.Hosting;
using Microsoft.Extensions.Configuration;

namespace McGrpc.Tests.Control;

/// <summary>Where the control and metrics listeners bind when nobody says otherwise: loopback only.</summary>
public sealed class ControlDefaultsTests
{
    [Fact]
    public void Control_listeners_default_to_loopback()
    {
        var primary = ListenAddress.Parse(new PrimaryOptions().Control, "--control");
        var backup = ListenAddress.Parse(new BackupOptions().Control, "--control");
        Assert.True(primary.IsLoopbackOrUnix, $"mc-primary control listens on {primary}");
        Assert.True(backup.IsLoopbackOrUnix, $"mc-backup control listens on {backup}");
        Assert.Equal("127.0.0.1:7100", primary.ToString());
        Assert.Equal("127.0.0.1:7101", backup.ToString());
    }

    [Fact]
    public void Metrics_listener_defaults_to_loopback_on_the_control_port_plus_1000()
    {
        var empty = new ConfigurationBuilder().Build();
        var metrics = DaemonHost.MetricsAddress(empty, ListenAddress.Parse("127.0.0.1:7100", "--control"));
        Assert.Equal("127.0.0.1:8100", metrics!.ToString());

        // Even when the control API is opened to the network, metrics stay on loopback unless configured.
        metrics = DaemonHost.MetricsAddress(empty, ListenAddress.Parse("0.0.0.0:7101", "--control"));
        Assert.Equal("127.0.0.1:8101", metrics!.ToString());

        // A unix control socket has no port to add to: metrics only where configured.
        Assert.Null(DaemonHost.MetricsAddress(empty, ListenAddress.Parse("unix:/run/mc.sock", "--control")));
        var off = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Metrics:Listen"] = "off" }).Build();
        Assert.Null(DaemonHost.MetricsAddress(off, ListenAddress.Parse("127.0.0.1:7100", "--control")));
    }
}
