using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using McGrpc.Primary.Output;
using McGrpc.Shared.Native;
using McGrpc.Shared.Native.Netlink;
using Microsoft.Extensions.Logging.Abstractions;

namespace McGrpc.Tests.Output;

/// <summary>
/// The rtnetlink client against the real kernel, on qdiscs this kernel has
/// (pfifo, ingress) and an IFB, inside a private network namespace.
/// </summary>
public sealed class KernelNetlinkTests : IDisposable
{
    private readonly KernelTestNamespace _ns = new();

    public void Dispose() => _ns.Dispose();

    [Fact]
    public void Creates_finds_raises_and_deletes_an_ifb_link()
    {
        Assert.Null(_ns.Client.FindDevice("mcifb0"));

        var created = _ns.Client.CreateLink("mcifb0", "ifb");
        Assert.Equal("mcifb0", created.Name);
        Assert.Equal("ifb", created.Kind);
        Assert.False(created.IsUp);
        Assert.True(created.Index > 0);
        Assert.Equal(created.Index, _ns.Client.GetInterfaceIndex("mcifb0"));

        _ns.Client.SetLinkUp(created, up: true);
        Assert.True(_ns.Client.GetDevice("mcifb0").IsUp);

        _ns.Client.DeleteLink(created);
        Assert.Null(_ns.Client.FindDevice("mcifb0"));
    }

    [Fact]
    public void Root_qdisc_is_added_dumped_changed_and_deleted()
    {
        var ifb = _ns.Client.CreateLink("mcifb0", "ifb");
        var handle = TcHandle.Make(1, 0);

        _ns.Client.ReplaceRootQdisc(ifb, handle, "pfifo", FifoLimit(77));
        var root = Assert.Single(_ns.Client.DumpQdiscs(ifb), qdisc => qdisc.IsRoot);
        Assert.Equal("pfifo", root.Kind);
        Assert.Equal(handle, root.Handle);
        Assert.Equal(ifb.Index, root.InterfaceIndex);
        Assert.Equal(77u, MemoryMarshal.Read<uint>(root.Options));

        // RTM_NEWQDISC without NLM_F_CREATE on the same handle: what `tc qdisc change` does.
        _ns.Client.ChangeQdisc(ifb, TcHandle.Root, handle, "pfifo", FifoLimit(99));
        var changed = _ns.Client.GetQdisc(ifb, TcHandle.Root, handle);
        Assert.Equal("pfifo", changed.Kind);
        Assert.Equal(99u, MemoryMarshal.Read<uint>(changed.Options));

        _ns.Client.DeleteQdisc(ifb, TcHandle.Root, handle);
        Assert.DoesNotContain(_ns.Client.DumpQdiscs(ifb), qdisc => qdisc.Handle == handle);
    }

    [Fact]
    public void Dump_lists_only_the_asked_device()
    {
        var first = _ns.Client.CreateLink("mcifb0", "ifb");
        var second = _ns.Client.CreateLink("mcifb1", "ifb");
        _ns.Client.ReplaceRootQdisc(first, TcHandle.Make(1, 0), "pfifo", FifoLimit(10));
        _ns.Client.ReplaceRootQdisc(second, TcHandle.Make(2, 0), "bfifo", FifoLimit(20000));

        Assert.All(_ns.Client.DumpQdiscs(first), qdisc => Assert.Equal(first.Index, qdisc.InterfaceIndex));
        Assert.Equal("bfifo", _ns.Client.FindRootQdisc(second)?.Kind);
    }

    [Fact]
    public void Unknown_interface_is_a_netlink_exception_naming_it()
    {
        var exception = Assert.Throws<NetlinkException>(() => _ns.Client.GetDevice("mcnosuch0"));

        Assert.Equal(Errors.ENODEV, exception.Errno);
        Assert.StartsWith("RTM_GETLINK mcnosuch0 failed: ENODEV (No such device)", exception.Message);
        Assert.Null(_ns.Client.FindDevice("mcnosuch0"));
    }

    [Fact]
    public void Unknown_qdisc_kind_says_which_module_to_load()
    {
        var ifb = _ns.Client.CreateLink("mcifb0", "ifb");

        var exception = Assert.Throws<NetlinkException>(
            () => _ns.Client.ReplaceRootQdisc(ifb, TcHandle.Make(1, 0), "mcnosuchq", []));

        Assert.Equal(Errors.ENOENT, exception.Errno);
        Assert.Equal("Specified qdisc kind is unknown", exception.KernelMessage);
        Assert.Equal(
            "RTM_NEWQDISC mcnosuchq on mcifb0 failed: ENOENT (No such file or directory): "
            + "kernel says \"Specified qdisc kind is unknown\" — is sch_mcnosuchq available? (modprobe sch_mcnosuchq)",
            exception.Message);
    }

    [Fact]
    public void Changing_a_qdisc_that_is_not_there_fails_instead_of_creating_one()
    {
        var ifb = _ns.Client.CreateLink("mcifb0", "ifb");

        var exception = Assert.Throws<NetlinkException>(
            () => _ns.Client.ChangeQdisc(ifb, TcHandle.Root, TcHandle.Make(1, 0), "pfifo", FifoLimit(5)));

        Assert.Equal(Errors.ENOENT, exception.Errno);
        Assert.Contains("there is no pfifo qdisc 1: at the root of mcifb0", exception.Message);
        Assert.DoesNotContain(_ns.Client.DumpQdiscs(ifb), qdisc => qdisc.Kind == "pfifo");
    }

    [Fact]
    public void Unknown_link_kind_is_a_netlink_exception()
    {
        var exception = Assert.Throws<NetlinkException>(() => _ns.Client.CreateLink("mcx0", "mcnosuchkind"));

        Assert.Contains("RTM_NEWLINK mcx0 type mcnosuchkind failed", exception.Message);
        Assert.Null(_ns.Client.FindDevice("mcx0"));
    }

    [Fact]
    public void Ingress_redirect_filter_is_added_dumped_and_deleted()
    {
        var ifb = _ns.Client.CreateLink("mcifb0", "ifb");
        var lo = _ns.Loopback();
        _ns.Client.AddIngressQdisc(lo);
        _ns.Client.AddIngressRedirect(lo, ifb, 0x4D43);

        var filters = _ns.Client.DumpFilters(lo, TcHandle.IngressFilters);
        var redirect = Assert.Single(filters, filter => filter.Mirred.Count > 0);
        Assert.Equal("u32", redirect.Kind);
        Assert.Equal(0x4D43, redirect.Priority);
        Assert.Equal(0x0003, redirect.Protocol);
        var action = Assert.Single(redirect.Mirred);
        Assert.True(action.IsEgressRedirect);
        Assert.Equal(ifb.Index, action.TargetIndex);

        _ns.Client.DeleteFilter(lo, TcHandle.IngressFilters, 0x4D43, "u32");
        Assert.Empty(_ns.Client.DumpFilters(lo, TcHandle.IngressFilters));
        _ns.Client.DeleteIngressQdisc(lo);
        Assert.DoesNotContain(_ns.Client.DumpQdiscs(lo), qdisc => qdisc.Kind == "ingress");
    }

    [Fact]
    public async Task Host_setup_sends_the_taps_traffic_through_the_ifb_root_qdisc_and_removes_it_again()
    {
        // Loopback stands in for the guest's tap: what arrives on its ingress
        // must pass the IFB's root qdisc (here a pfifo, the plug's stand-in).
        var lo = _ns.Loopback();
        var options = new KernelOutputBufferOptions { IfbDevice = "mcifb0", GuestTap = "lo", SetUpHostNetworking = true };
        var setup = new KernelHostSetup(_ns.Client, options, NullLogger.Instance);
        var ifb = setup.PrepareIfb();
        Assert.True(ifb.IsUp);
        Assert.Equal("ifb", ifb.Kind);
        _ns.Client.ReplaceRootQdisc(ifb, TcHandle.Make(1, 0), "pfifo", FifoLimit(1000));
        setup.PrepareRedirect(ifb);

        using var receiver = _ns.Namespace.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        using var sender = _ns.Namespace.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        receiver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        const int Datagrams = 20;
        var payload = new byte[100];
        for (var i = 0; i < Datagrams; i++)
        {
            payload[0] = (byte)i;
            sender.SendTo(payload, receiver.LocalEndPoint!);
        }

        var buffer = new byte[2048];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        for (var i = 0; i < Datagrams; i++)
        {
            var received = await receiver.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            Assert.Equal(100, received);
            Assert.Equal((byte)i, buffer[0]);
        }

        var stats = _ns.Client.GetQdisc(ifb, TcHandle.Root, TcHandle.Make(1, 0)).Stats;
        Assert.True(stats.Packets >= Datagrams, $"the IFB's root qdisc let out {stats.Packets} packets, expected at least {Datagrams}");
        Assert.True(stats.Bytes >= Datagrams * 128UL, $"the IFB's root qdisc let out {stats.Bytes} bytes");
        Assert.Equal(0u, stats.QueueLength);
        Assert.Equal(0u, stats.Drops);

        setup.RemoveRedirect();
        setup.RemoveIfb();
        Assert.Null(_ns.Client.FindDevice("mcifb0"));
        Assert.DoesNotContain(_ns.Client.DumpQdiscs(lo), qdisc => qdisc.Kind == "ingress");
    }

    [Fact]
    public void Host_setup_adds_its_redirect_under_an_existing_clsact_qdisc_and_removes_only_the_filter()
    {
        var lo = _ns.Loopback();
        _ns.Client.AddQdisc(lo, TcHandle.IngressParent, TcHandle.IngressQdisc, "clsact", [], replace: false);
        var options = new KernelOutputBufferOptions { IfbDevice = "mcifb0", GuestTap = "lo", SetUpHostNetworking = true };
        var setup = new KernelHostSetup(_ns.Client, options, NullLogger.Instance);
        var ifb = setup.PrepareIfb();

        setup.PrepareRedirect(ifb);
        var redirect = Assert.Single(_ns.Client.DumpFilters(lo, TcHandle.IngressFilters), filter => filter.Mirred.Count > 0);
        Assert.Equal(KernelHostSetup.FilterPriority, redirect.Priority);

        setup.RemoveRedirect();
        setup.RemoveIfb();
        Assert.Empty(_ns.Client.DumpFilters(lo, TcHandle.IngressFilters));
        Assert.Contains(_ns.Client.DumpQdiscs(lo), qdisc => qdisc.Kind == "clsact");
        Assert.Null(_ns.Client.FindDevice("mcifb0"));
    }

    [Fact]
    public void Host_setup_verification_names_a_missing_redirect_and_accepts_an_operator_made_one()
    {
        var lo = _ns.Loopback();
        var ifb = _ns.Client.CreateLink("mcifb0", "ifb");
        _ns.Client.SetLinkUp(ifb, up: true);
        _ns.Client.AddIngressQdisc(lo);
        var options = new KernelOutputBufferOptions { IfbDevice = "mcifb0", GuestTap = "lo" };
        var setup = new KernelHostSetup(_ns.Client, options, NullLogger.Instance);

        var missing = Assert.Throws<KernelOutputBufferException>(() => setup.PrepareRedirect(setup.PrepareIfb()));
        Assert.Contains("no filter on lo's ingress redirects to mcifb0", missing.Message);

        _ns.Client.AddIngressRedirect(lo, ifb, 7);
        setup.PrepareRedirect(setup.PrepareIfb());
        setup.RemoveRedirect(); // created nothing, so removes nothing
        Assert.Single(_ns.Client.DumpFilters(lo, TcHandle.IngressFilters), filter => filter.Mirred.Count > 0);
    }

    [Fact]
    public void Requests_after_dispose_fail_fast()
    {
        var client = RtnetlinkClient.Open(_ns.Namespace);
        client.Dispose();

        Assert.Throws<ObjectDisposedException>(() => client.GetDevice("lo"));
    }

    [Fact]
    public void A_client_opened_in_a_namespace_sees_only_that_namespace()
    {
        _ns.Client.CreateLink("mcifb7", "ifb");
        using var other = new KernelTestNamespace();

        Assert.NotNull(_ns.Client.FindDevice("mcifb7"));
        Assert.Null(other.Client.FindDevice("mcifb7"));
    }

    private static byte[] FifoLimit(uint limit) => BitConverter.GetBytes(limit); // struct tc_fifo_qopt { __u32 limit; }
}
