namespace McGrpc.Shared.Native.Netlink;

/// <summary>A network interface as RTM_GETLINK describes it.</summary>
/// <param name="Index">The interface index (ifindex).</param>
/// <param name="Name">The interface name.</param>
/// <param name="Kind">The rtnl link kind ("ifb", "veth", "tun", "bridge"...), null for physical devices and loopback.</param>
/// <param name="IsUp">Whether IFF_UP is set (administratively up).</param>
internal sealed record NetDevice(int Index, string Name, string? Kind, bool IsUp)
{
    public override string ToString() => Name;
}
