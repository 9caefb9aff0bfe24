namespace McGrpc.Shared.Native.Netlink;

/// <summary>One filter from an RTM_GETTFILTER dump.</summary>
/// <param name="InterfaceIndex">The device whose qdisc holds the filter.</param>
/// <param name="Parent">The qdisc or class it hangs from.</param>
/// <param name="Handle">The filter handle (for u32: ht:bucket:node; 0 for the hash table entry).</param>
/// <param name="Priority">The priority (tc's "pref").</param>
/// <param name="Protocol">The ethertype it matches, host byte order (0x0003 is ETH_P_ALL).</param>
/// <param name="Kind">The classifier: "u32", "matchall", "flower"...</param>
/// <param name="Mirred">Every mirred action attached to this filter.</param>
internal sealed record TcFilterInfo(
    int InterfaceIndex,
    uint Parent,
    uint Handle,
    ushort Priority,
    ushort Protocol,
    string Kind,
    IReadOnlyList<MirredAction> Mirred);
