using McGrpc.Shared.Native.Netlink;
using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Output;

/// <summary>
/// The IFB device and the tap's ingress redirect that put the guest's output
/// through the plug. Verifies them, or creates what is missing when
/// <see cref="KernelOutputBufferOptions.SetUpHostNetworking"/> is on, and
/// remembers what it created so that exactly that is removed again.
/// </summary>
internal sealed class KernelHostSetup
{
    /// <summary>The pref of the redirect filter mc-primary creates ("MC"), so it can delete exactly that one.</summary>
    public const ushort FilterPriority = 0x4D43;

    private readonly RtnetlinkClient _client;
    private readonly KernelOutputBufferOptions _options;
    private readonly ILogger _logger;
    private NetDevice? _createdIfb;
    private NetDevice? _ingressCreatedOn;
    private NetDevice? _filterCreatedOn;

    public KernelHostSetup(RtnetlinkClient client, KernelOutputBufferOptions options, ILogger logger)
    {
        _client = client;
        _options = options;
        _logger = logger;
    }

    /// <summary>The commands an operator runs for the setup these options describe.</summary>
    public static string Commands(KernelOutputBufferOptions options)
    {
        var tap = options.GuestTap ?? "TAP";
        var ifb = options.IfbDevice;
        var exec = options.NetworkNamespace is { } ns && !ns.Contains('/') ? $"ip netns exec {ns} " : string.Empty;
        return $"{exec}ip link add {ifb} type ifb; {exec}ip link set {ifb} up; "
            + $"{exec}tc qdisc add dev {tap} ingress; "
            + $"{exec}tc filter add dev {tap} parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev {ifb}";
    }

    /// <summary>Finds the IFB device, checks that it is an ifb and up; creates or raises it when allowed.</summary>
    public NetDevice PrepareIfb()
    {
        var name = _options.IfbDevice;
        var ifb = _client.FindDevice(name);
        if (ifb is null)
        {
            if (!_options.SetUpHostNetworking)
            {
                throw Incomplete($"the IFB device {name} does not exist");
            }

            ifb = _client.CreateLink(name, "ifb");
            _createdIfb = ifb;
            KernelOutputLog.Created(_logger, $"IFB device {name}");
        }

        if (ifb.Kind != "ifb")
        {
            throw Incomplete($"{name} is a {ifb.Kind ?? "physical or loopback"} device, not an ifb; the plug must sit on an IFB that receives the tap's ingress");
        }

        if (!ifb.IsUp)
        {
            if (!_options.SetUpHostNetworking)
            {
                throw Incomplete($"the IFB device {name} is down (ip link set {name} up); a down IFB drops everything redirected to it");
            }

            _client.SetLinkUp(ifb, up: true);
            ifb = _client.GetDevice(name);
        }

        return ifb;
    }

    /// <summary>
    /// Makes sure everything arriving on the guest's tap is redirected to the
    /// IFB: an ingress (or clsact) qdisc on the tap with a filter whose mirred
    /// action is an egress redirect to the IFB. A mirror is not enough: the
    /// original packet would go on past the plug.
    /// </summary>
    public void PrepareRedirect(NetDevice ifb)
    {
        if (_options.GuestTap is not { } tapName)
        {
            KernelOutputLog.RedirectUnchecked(_logger, ifb.Name);
            return;
        }

        var tap = _client.FindDevice(tapName)
            ?? throw Incomplete($"the guest tap {tapName} does not exist (is QEMU running with -netdev tap,ifname={tapName}?)");
        var hasIngress = _client.DumpQdiscs(tap).Exists(qdisc => qdisc.Parent == TcHandle.IngressParent);
        var filters = hasIngress ? _client.DumpFilters(tap, TcHandle.IngressFilters) : [];
        var redirect = filters.Find(filter => filter.Mirred.Any(action => action.IsEgressRedirect && action.TargetIndex == ifb.Index));
        if (redirect is not null)
        {
            KernelOutputLog.RedirectFound(_logger, tap.Name, ifb.Name, redirect.Kind, redirect.Priority);
            return;
        }

        if (!_options.SetUpHostNetworking)
        {
            var mirror = filters.Exists(filter => filter.Mirred.Any(action => action.TargetIndex == ifb.Index));
            throw Incomplete(!hasIngress
                ? $"{tap.Name} has no ingress qdisc, so nothing redirects its traffic to {ifb.Name}"
                : mirror
                    ? $"{tap.Name} mirrors its ingress to {ifb.Name} instead of redirecting it; mirrored packets also go on unbuffered"
                    : $"no filter on {tap.Name}'s ingress redirects to {ifb.Name}");
        }

        if (!hasIngress)
        {
            _client.AddIngressQdisc(tap);
            _ingressCreatedOn = tap;
            KernelOutputLog.Created(_logger, $"ingress qdisc on {tap.Name}");
        }

        _client.AddIngressRedirect(tap, ifb, FilterPriority);
        _filterCreatedOn = tap;
        KernelOutputLog.Created(_logger, $"u32 redirect {tap.Name} -> {ifb.Name} (pref {FilterPriority})");
    }

    /// <summary>Removes the redirect this instance created (first, so nothing new reaches the IFB).</summary>
    public void RemoveRedirect()
    {
        if (_ingressCreatedOn is { } tap)
        {
            // Deleting the ingress qdisc takes its filters with it.
            TryRemove($"ingress qdisc on {tap.Name}", () => _client.DeleteIngressQdisc(tap));
        }
        else if (_filterCreatedOn is { } filtered)
        {
            TryRemove($"u32 redirect filter (pref {FilterPriority}) on {filtered.Name}", () => _client.DeleteFilter(filtered, TcHandle.IngressFilters, FilterPriority, "u32"));
        }

        _ingressCreatedOn = null;
        _filterCreatedOn = null;
    }

    /// <summary>Removes the IFB device if this instance created it.</summary>
    public void RemoveIfb()
    {
        if (_createdIfb is { } ifb)
        {
            TryRemove($"IFB device {ifb.Name}", () => _client.DeleteLink(ifb));
        }

        _createdIfb = null;
    }

    private void TryRemove(string what, Action remove)
    {
        try
        {
            remove();
        }
        catch (NetlinkException exception) when (exception.Errno is Shared.Native.Errors.ENODEV or Shared.Native.Errors.ENOENT)
        {
            // Already gone (the tap went away with its QEMU): nothing left to do.
        }
        catch (NetlinkException exception)
        {
            KernelOutputLog.RemoveFailed(_logger, what, exception);
        }
    }

    private KernelOutputBufferException Incomplete(string problem)
    {
        KernelOutputLog.SetupIncomplete(_logger, problem);
        return new KernelOutputBufferException(
            $"The kernel output buffer's host setup is incomplete: {problem}. "
            + $"Run: {Commands(_options)} (see docs/kernel-output-buffer.md), "
            + $"or set Output:Kernel:{nameof(KernelOutputBufferOptions.SetUpHostNetworking)}=true to let mc-primary do it.");
    }
}
