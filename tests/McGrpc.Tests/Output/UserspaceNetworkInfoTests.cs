using McGrpc.Primary.Output;

namespace McGrpc.Tests.Output;

/// <summary>Finding the netdevs to filter in HMP "info network" (QEMU 7.2 has no query-netdev). Samples are QEMU 7.2's own output.</summary>
public sealed class UserspaceNetworkInfoTests
{
    [Fact]
    public void Finds_the_backend_of_every_nic_including_legacy_hub_ports()
    {
        const string Info =
            "hub 0\r\n"
            + " \\ hub0port1: #net196: index=0,type=user,net=10.0.2.0,restrict=off\r\n"
            + " \\ hub0port0: e1000.0: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:56\r\n"
            + "e1000.1: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:57\r\n"
            + " \\ n1: index=0,type=tap,ifname=octap0,script=no,downscript=no\r\n"
            + "vn: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:58\r\n"
            + " \\ u2: index=0,type=user,net=10.0.2.0,restrict=off\r\n";
        Assert.Equal(
            [new QemuNetdev("hub0port0", "hubport", "e1000.0"), new QemuNetdev("n1", "tap", "e1000.1"), new QemuNetdev("u2", "user", "vn")],
            QemuNetworkInfo.ParseNicNetdevs(Info));
    }

    [Fact]
    public void Filter_lines_do_not_hide_the_nic_or_its_backend()
    {
        const string Info =
            "e1000.0: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:56\r\n"
            + "filters:\r\n"
            + "  - dump0: type=filter-dump,file=/tmp/x.pcap,maxlen=65536,position=tail,status=on,insert=behind,netdev=net0,queue=all\r\n"
            + " \\ net0: index=0,type=user,net=10.0.2.0,restrict=off\r\n"
            + "filters:\r\n"
            + "  - mcinj: type=filter-redirector,vnet_hdr_support=false,indev=mcin,outdev=,position=tail,status=on,insert=behind,netdev=net0,queue=rx\r\n";
        Assert.Equal([new QemuNetdev("net0", "user", "e1000.0")], QemuNetworkInfo.ParseNicNetdevs(Info));
    }

    [Fact]
    public void A_vm_without_nics_or_with_unconnected_ones_has_nothing_to_filter()
    {
        Assert.Empty(QemuNetworkInfo.ParseNicNetdevs(string.Empty));
        Assert.Empty(QemuNetworkInfo.ParseNicNetdevs("e1000.0: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:56\r\nnet9: index=0,type=user,net=10.0.2.0\r\n"));
    }
}
