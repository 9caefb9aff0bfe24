namespace McGrpc.Shared.Native.Netlink;

/// <summary>One qdisc from an RTM_GETQDISC dump.</summary>
/// <param name="InterfaceIndex">The device it is attached to.</param>
/// <param name="Handle">Its handle (major:0); 0 for a default qdisc the kernel attached itself.</param>
/// <param name="Parent">Its parent: <see cref="TcHandle.Root"/>, <see cref="TcHandle.IngressParent"/> or a class.</param>
/// <param name="Kind">"pfifo", "plug", "ingress"...</param>
/// <param name="Options">The raw TCA_OPTIONS payload (kind-specific struct), empty when the qdisc dumps none.</param>
/// <param name="Stats">Its counters.</param>
internal sealed record QdiscInfo(int InterfaceIndex, uint Handle, uint Parent, string Kind, byte[] Options, QdiscStats Stats)
{
    public bool IsRoot => Parent == TcHandle.Root;
}
