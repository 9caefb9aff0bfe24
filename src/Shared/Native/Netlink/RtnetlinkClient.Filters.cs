using System.Runtime.InteropServices;
using static McGrpc.Shared.Native.Netlink.NetlinkConstants;

namespace McGrpc.Shared.Native.Netlink;

internal sealed partial class RtnetlinkClient
{
    /// <summary>
    /// Adds the ingress qdisc to <paramref name="device"/> (tc qdisc add dev X ingress).
    /// EEXIST when it already has one, or has a clsact qdisc.
    /// </summary>
    public void AddIngressQdisc(NetDevice device) =>
        AddQdisc(device, TcHandle.IngressParent, TcHandle.IngressQdisc, "ingress", [], replace: false);

    /// <summary>Deletes the ingress qdisc of <paramref name="device"/> and with it every ingress filter.</summary>
    public void DeleteIngressQdisc(NetDevice device) =>
        DeleteQdisc(device, TcHandle.IngressParent, TcHandle.IngressQdisc, "ingress");

    /// <summary>
    /// Redirects everything arriving on <paramref name="from"/> to the egress
    /// of <paramref name="to"/> with a u32 filter at <paramref name="priority"/>
    /// on <paramref name="from"/>'s ingress, which needs an ingress or clsact qdisc.
    /// </summary>
    public void AddIngressRedirect(NetDevice from, NetDevice to, ushort priority)
    {
        Execute(
            $"RTM_NEWTFILTER u32 redirect {from.Name} -> {to.Name}",
            sequence => RtnetlinkMessages.NewIngressRedirectFilter(sequence, from.Index, priority, to.Index),
            errno => errno switch
            {
                // "TC classifier not found" / "Failed to load TC action module"
                Errors.ENOENT or Errors.EOPNOTSUPP => "are cls_u32 and act_mirred available? (modprobe cls_u32 act_mirred)",
                Errors.EINVAL => $"is there an ingress or clsact qdisc on {from.Name}, and no other classifier at priority {priority}?",
                Errors.EEXIST => $"{from.Name} already has a filter at priority {priority}",
                _ => PermissionHint(errno),
            });
    }

    /// <summary>Deletes every filter at <paramref name="priority"/> (all protocols) under <paramref name="parent"/>.</summary>
    public void DeleteFilter(NetDevice device, uint parent, ushort priority, string kind)
    {
        Execute(
            $"RTM_DELTFILTER {kind} prio {priority} on {device.Name}",
            sequence => RtnetlinkMessages.DeleteFilter(sequence, device.Index, parent, priority, EthPAll, kind),
            PermissionHint);
    }

    /// <summary>
    /// The filters of <paramref name="device"/> under <paramref name="parent"/>
    /// (<see cref="TcHandle.IngressFilters"/> for its ingress). ENOENT or
    /// EINVAL when there is no such qdisc.
    /// </summary>
    public List<TcFilterInfo> DumpFilters(NetDevice device, uint parent)
    {
        var all = Dump<TcFilterInfo>(
            $"RTM_GETTFILTER dump on {device.Name} {TcHandle.Format(parent)}",
            sequence => RtnetlinkMessages.DumpFilters(sequence, device.Index, parent),
            TryParseFilter);
        all.RemoveAll(filter => filter.InterfaceIndex != device.Index);
        return all;
    }

    private static bool TryParseFilter(in NetlinkMessageHeader header, ReadOnlySpan<byte> payload, out TcFilterInfo filter)
    {
        filter = null!;
        if (header.Type != RtmNewTfilter || payload.Length < TcMessageLength)
        {
            return false;
        }

        var index = MemoryMarshal.Read<int>(payload[4..]);
        var handle = MemoryMarshal.Read<uint>(payload[8..]);
        var parent = MemoryMarshal.Read<uint>(payload[12..]);
        var info = MemoryMarshal.Read<uint>(payload[16..]);
        var attributes = payload[TcMessageLength..];
        var kind = NetlinkAttributeReader.TryFind(attributes, TcaKind, out var kindBytes)
            ? NetlinkAttributeReader.ReadString(kindBytes)
            : string.Empty;
        var mirred = new List<MirredAction>();
        if (NetlinkAttributeReader.TryFind(attributes, TcaOptions, out var options))
        {
            // Each classifier keeps its action table under its own attribute
            // number (TCA_U32_ACT 7, TCA_MATCHALL_ACT 2, TCA_FLOWER_ACT 3...);
            // rather than know them all, look at every attribute for one shaped
            // like an action table.
            var reader = new NetlinkAttributeReader(options);
            while (reader.TryRead(out _, out var candidate))
            {
                CollectMirred(candidate, mirred);
            }
        }

        filter = new TcFilterInfo(index, parent, handle, TcHandle.FilterPriority(info), TcHandle.FilterProtocol(info), kind, mirred);
        return true;
    }

    /// <summary>
    /// An action table is a run of nested attributes (numbered by order), each
    /// holding TCA_ACT_KIND and TCA_ACT_OPTIONS; mirred's options hold
    /// TCA_MIRRED_PARMS, struct tc_mirred { tc_gen (5 x 32 bits); int eaction; __u32 ifindex; }.
    /// </summary>
    private static void CollectMirred(ReadOnlySpan<byte> table, List<MirredAction> found)
    {
        var actions = new NetlinkAttributeReader(table);
        var parsed = new List<MirredAction>();
        while (actions.TryRead(out _, out var action))
        {
            if (!NetlinkAttributeReader.TryFind(action, TcaActKind, out var kind))
            {
                return;
            }

            if (NetlinkAttributeReader.ReadString(kind) != "mirred"
                || !NetlinkAttributeReader.TryFind(action, TcaActOptions, out var options)
                || !NetlinkAttributeReader.TryFind(options, TcaMirredParms, out var parameters)
                || parameters.Length < 28)
            {
                continue;
            }

            parsed.Add(new MirredAction(MemoryMarshal.Read<int>(parameters[20..]), MemoryMarshal.Read<int>(parameters[24..])));
        }

        if (actions.AtEnd)
        {
            found.AddRange(parsed);
        }
    }
}
