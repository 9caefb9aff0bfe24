using McGrpc.Shared.Native;
using McGrpc.Shared.Native.Netlink;

namespace McGrpc.Tests.Output;

/// <summary>
/// An anonymous network namespace with an rtnetlink client inside it. The
/// kernel deletes the namespace, and every interface, qdisc and filter a test
/// made in it, once both are closed, even if the test process dies first, so
/// nothing a test does can leak into the host's namespace.
/// </summary>
internal sealed class KernelTestNamespace : IDisposable
{
    public KernelTestNamespace()
    {
        Namespace = NetworkNamespace.CreateAnonymous();
        try
        {
            Client = RtnetlinkClient.Open(Namespace, TimeSpan.FromSeconds(5));
        }
        catch
        {
            Namespace.Dispose();
            throw;
        }
    }

    public NetworkNamespace Namespace { get; }

    public RtnetlinkClient Client { get; }

    /// <summary>Loopback, brought up (a fresh namespace has it down).</summary>
    public NetDevice Loopback()
    {
        var lo = Client.GetDevice("lo");
        if (!lo.IsUp)
        {
            Client.SetLinkUp(lo, up: true);
            lo = Client.GetDevice("lo");
        }

        return lo;
    }

    /// <summary>
    /// Whether this kernel can create a plug qdisc, found out on a scratch IFB
    /// in a namespace of its own.
    /// </summary>
    public static bool KernelHasPlug()
    {
        using var scratch = new KernelTestNamespace();
        var ifb = scratch.Client.CreateLink("mcprobe0", "ifb");
        try
        {
            scratch.Client.CreatePlugQdisc(ifb, 0x0001_0000, 1 << 20);
            return true;
        }
        catch (NetlinkException exception) when (exception.Errno == Errors.ENOENT)
        {
            return false;
        }
    }

    public void Dispose()
    {
        Client.Dispose();
        Namespace.Dispose();
    }
}
