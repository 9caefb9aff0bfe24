using System.Runtime.InteropServices;
using static McGrpc.Shared.Native.Netlink.NetlinkConstants;

namespace McGrpc.Shared.Native.Netlink;

internal sealed partial class RtnetlinkClient
{
    /// <summary>The device called <paramref name="name"/>, or null when there is none.</summary>
    public NetDevice? FindDevice(string name)
    {
        try
        {
            return GetDevice(name);
        }
        catch (NetlinkException exception) when (exception.Errno == Errors.ENODEV)
        {
            return null;
        }
    }

    /// <summary>The device called <paramref name="name"/>; ENODEV when there is none.</summary>
    public NetDevice GetDevice(string name)
    {
        var found = Dump<NetDevice>($"RTM_GETLINK {name}", sequence => RtnetlinkMessages.GetLink(sequence, name), TryParseLink);
        return found.Count == 1
            ? found[0]
            : throw new NetlinkException($"RTM_GETLINK {name}", 0, hint: $"expected one link in the reply, got {found.Count}");
    }

    /// <summary>Resolves an interface name to its index in this client's namespace (if_nametoindex over netlink).</summary>
    public int GetInterfaceIndex(string name) => GetDevice(name).Index;

    /// <summary>Creates a link that needs nothing but a name and a kind ("ifb", "dummy") and returns it, still down.</summary>
    public NetDevice CreateLink(string name, string kind)
    {
        Execute(
            $"RTM_NEWLINK {name} type {kind}",
            sequence => RtnetlinkMessages.NewLink(sequence, name, kind),
            errno => errno switch
            {
                Errors.EOPNOTSUPP => $"the kernel has no \"{kind}\" link type (modprobe {kind}, or CONFIG_{kind.ToUpperInvariant()})",
                Errors.EEXIST => $"an interface called {name} already exists",
                Errors.EPERM => "needs CAP_NET_ADMIN",
                _ => null,
            });
        return GetDevice(name);
    }

    public void SetLinkUp(NetDevice device, bool up)
    {
        Execute(
            $"RTM_NEWLINK {device.Name} {(up ? "up" : "down")}",
            sequence => RtnetlinkMessages.SetLinkUp(sequence, device.Index, up),
            PermissionHint);
    }

    public void DeleteLink(NetDevice device)
    {
        Execute($"RTM_DELLINK {device.Name}", sequence => RtnetlinkMessages.DeleteLink(sequence, device.Index), PermissionHint);
    }

    private static string? PermissionHint(int errno) => errno == Errors.EPERM ? "needs CAP_NET_ADMIN" : null;

    private static bool TryParseLink(in NetlinkMessageHeader header, ReadOnlySpan<byte> payload, out NetDevice device)
    {
        device = null!;
        if (header.Type != RtmNewLink || payload.Length < IfInfoMessageLength)
        {
            return false;
        }

        var index = MemoryMarshal.Read<int>(payload[4..]);
        var flags = MemoryMarshal.Read<uint>(payload[8..]);
        var attributes = payload[IfInfoMessageLength..];
        var name = NetlinkAttributeReader.TryFind(attributes, IflaIfname, out var nameBytes)
            ? NetlinkAttributeReader.ReadString(nameBytes)
            : string.Empty;
        string? kind = null;
        if (NetlinkAttributeReader.TryFind(attributes, IflaLinkinfo, out var linkInfo)
            && NetlinkAttributeReader.TryFind(linkInfo, IflaInfoKind, out var kindBytes))
        {
            kind = NetlinkAttributeReader.ReadString(kindBytes);
        }

        device = new NetDevice(index, name, kind, (flags & IffUp) != 0);
        return true;
    }
}
