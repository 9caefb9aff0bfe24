namespace McGrpc.Tests.Infrastructure;

/// <summary>
/// A <see cref="GuestChain"/> on a <see cref="TestNetwork"/>: every VM of
/// the chain (the first guest and each backup) gets its own tap in the
/// bridge, the guest has an e1000 NIC at <see cref="TestNetwork.GuestAddress"/>
/// and runs counter, udpseq (to <see cref="Observer"/> in the client
/// namespace) and tcpserve. After a failover QEMU's own announce moves the
/// guest's MAC to the backup's tap; nothing else changes for the client.
/// </summary>
public sealed class NetworkGuestChain : GuestChain
{
    public const int UdpPort = 7000;

    public NetworkGuestChain()
    {
        Network = TestNetwork.Create();
        try
        {
            Observer = Network.BindObserver(UdpPort);
        }
        catch
        {
            Network.Dispose();
            throw;
        }
    }

    internal TestNetwork Network { get; }

    /// <summary>Every udpseq datagram that reached the client namespace since the chain started.</summary>
    internal UdpSeqObserver Observer { get; }

    internal override Task<TestVmOptions> CreateVmOptionsAsync(TestVmOptions? primary)
    {
        var options = primary ?? new TestVmOptions
        {
            Name = "netchainvm",
            Run = "counter,udpseq,tcpserve",
            ExtraAppend = $"{TestNetwork.GuestAppend} mc.udpseq.host={TestNetwork.ClientAddress} mc.udpseq.port={UdpPort} mc.udpseq.interval_ms=10 mc.loglevel=1",
        };
        return Task.FromResult(options with { ExtraArgs = TestNetwork.QemuArgs(Network.AddTap()), Incoming = primary is not null });
    }

    /// <summary>
    /// kill -9 of mc-primary and the primary QEMU, both signals sent before
    /// either process is waited for. mc-primary goes first: a mc-primary that
    /// outlives its QEMU by the milliseconds QEMU takes to exit can see the QMP
    /// connection close and end protection with a goodbye, after which the
    /// backup rightly does not take over (see the report of issue 4).
    /// </summary>
    internal void KillPrimaryHostAtOnce()
    {
        foreach (var pid in new[] { PrimaryDaemon!.Pid, Primary.Pid })
        {
            try
            {
                using var process = System.Diagnostics.Process.GetProcessById(pid);
                process.Kill();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                // Already gone.
            }
        }

        PrimaryDaemon.Kill();
        Primary.Kill();
    }

    /// <summary>The tap device a VM of this chain is on.</summary>
    internal string TapOf(TestVm vm)
    {
        var netdev = vm.Options.ExtraArgs.Single(a => a.StartsWith("tap,", StringComparison.Ordinal));
        return netdev.Split(',').Single(p => p.StartsWith("ifname=", StringComparison.Ordinal))["ifname=".Length..];
    }

    public override async Task DisposeAsync()
    {
        try
        {
            await base.DisposeAsync();
        }
        finally
        {
            Observer.Dispose();
            Network.Dispose();
        }
    }
}
