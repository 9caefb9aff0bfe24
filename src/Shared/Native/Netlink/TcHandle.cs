using System.Buffers.Binary;

namespace McGrpc.Shared.Native.Netlink;

/// <summary>Traffic-control handles (major:minor in one 32-bit word) and the special parents.</summary>
internal static class TcHandle
{
    /// <summary>TC_H_ROOT: the parent of a device's root (egress) qdisc.</summary>
    public const uint Root = 0xFFFF_FFFF;

    /// <summary>TC_H_INGRESS: the parent of the ingress qdisc.</summary>
    public const uint IngressParent = 0xFFFF_FFF1;

    /// <summary>ffff: — the handle the ingress qdisc always has.</summary>
    public const uint IngressQdisc = 0xFFFF_0000;

    /// <summary>
    /// ffff:fff2 (TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)): where
    /// <c>tc filter show dev X ingress</c> looks; finds the ingress filters of
    /// both an ingress and a clsact qdisc.
    /// </summary>
    public const uint IngressFilters = 0xFFFF_FFF2;

    public static uint Make(ushort major, ushort minor) => ((uint)major << 16) | minor;

    /// <summary>As tc prints it: "root", "ingress", "1:", "1:a".</summary>
    public static string Format(uint handle) => handle switch
    {
        Root => "root",
        IngressParent => "ingress",
        _ when (handle & 0xFFFF) == 0 => $"{handle >> 16:x}:",
        _ => $"{handle >> 16:x}:{handle & 0xFFFF:x}",
    };

    /// <summary>tcm_info of a filter: priority in the high half, the protocol in network byte order in the low half.</summary>
    public static uint FilterInfo(ushort priority, ushort protocol) =>
        ((uint)priority << 16) | HostToNetwork(protocol);

    public static ushort FilterPriority(uint info) => (ushort)(info >> 16);

    public static ushort FilterProtocol(uint info) => HostToNetwork((ushort)(info & 0xFFFF));

    private static ushort HostToNetwork(ushort value) =>
        BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(value) : value;
}
