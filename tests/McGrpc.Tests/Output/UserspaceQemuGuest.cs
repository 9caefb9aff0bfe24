using System.Net;
using McGrpc.Shared.Qmp;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Output;

/// <summary>
/// One test guest on QEMU user networking (slirp) for the userspace buffer's
/// own tests: udpseq sends a datagram every 10 ms to the host (10.0.2.2 is the
/// host's loopback), where <see cref="Observer"/> counts them. The buffer
/// talks QMP on the daemon socket; the test stops and resumes the guest on
/// the other.
/// </summary>
public sealed class UserspaceQemuGuest : IAsyncLifetime
{
    internal TestVm Vm { get; private set; } = null!;

    internal UdpSeqObserver Observer { get; private set; } = null!;

    internal QmpClient BufferQmp { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Observer = UdpSeqObserver.Bind(IPAddress.Loopback);
        Vm = await TestVm.StartAsync(new TestVmOptions
        {
            Name = "userspacevm",
            Run = "udpseq",
            ExtraAppend = $"mc.ip=10.0.2.15/24 mc.gw=10.0.2.2 mc.udpseq.port={Observer.Port} mc.udpseq.interval_ms=10 mc.loglevel=1",
            // A second NIC, silent, on a netdev of its own: the buffer must hold every NIC's output.
            ExtraArgs =
            [
                "-netdev", "user,id=net0", "-device", "e1000,netdev=net0,romfile=,autonegotiation=off",
                "-netdev", "user,id=quiet1", "-device", "e1000,netdev=quiet1,romfile=,autonegotiation=off,mac=52:54:00:12:34:99",
            ],
        });
        await Vm.WaitForSerialAsync(l => l.Contains("GUEST READY", StringComparison.Ordinal), TimeSpan.FromSeconds(180), "GUEST READY");
        BufferQmp = await QmpClient.ConnectAsync(Vm.DaemonQmpSocket, null, null, CancellationToken.None);
        await Observer.WaitForCountAsync(10, TimeSpan.FromSeconds(60), "udpseq before any filter");
    }

    public async Task DisposeAsync()
    {
        await BufferQmp.DisposeAsync();
        await Vm.DisposeAsync();
        Observer.Dispose();
    }
}
