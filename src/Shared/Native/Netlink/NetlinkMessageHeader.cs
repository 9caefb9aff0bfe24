namespace McGrpc.Shared.Native.Netlink;

/// <summary>struct nlmsghdr of a received message.</summary>
internal readonly record struct NetlinkMessageHeader(uint Length, ushort Type, ushort Flags, uint Sequence, uint PortId);
