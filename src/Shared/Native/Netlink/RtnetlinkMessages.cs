using System.Runtime.InteropServices;
using static McGrpc.Shared.Native.Netlink.NetlinkConstants;

namespace McGrpc.Shared.Native.Netlink;

/// <summary>
/// Encoders for the rtnetlink requests this project sends. Pure functions of
/// their arguments, so tests can compare them byte for byte with what
/// iproute2 sends for the same command. Every request except a dump asks for
/// an ack, so that success is confirmed rather than assumed.
/// </summary>
internal static class RtnetlinkMessages
{
    private const ushort RequestAck = NlmFRequest | NlmFAck;

    /// <summary>RTM_GETLINK by name (ip link show NAME).</summary>
    public static byte[] GetLink(uint sequence, string name)
    {
        var writer = new NetlinkMessageWriter(RtmGetLink, RequestAck, sequence);
        writer.WriteIfInfoMessage(0, 0, 0);
        writer.WriteAttribute(IflaExtMask, RtextFilterSkipStats);
        writer.WriteAttribute(IflaIfname, name);
        return writer.ToArray();
    }

    /// <summary>RTM_NEWLINK create-only (ip link add NAME type KIND).</summary>
    public static byte[] NewLink(uint sequence, string name, string kind)
    {
        var writer = new NetlinkMessageWriter(RtmNewLink, RequestAck | NlmFExcl | NlmFCreate, sequence);
        writer.WriteIfInfoMessage(0, 0, 0);
        writer.WriteAttribute(IflaIfname, name);
        var linkInfo = writer.BeginNested(IflaLinkinfo);
        writer.WriteAttribute(IflaInfoKind, kind);
        writer.EndNested(linkInfo);
        return writer.ToArray();
    }

    /// <summary>RTM_NEWLINK on an existing link changing only IFF_UP (ip link set NAME up/down).</summary>
    public static byte[] SetLinkUp(uint sequence, int interfaceIndex, bool up)
    {
        var writer = new NetlinkMessageWriter(RtmNewLink, RequestAck, sequence);
        writer.WriteIfInfoMessage(interfaceIndex, up ? IffUp : 0, IffUp);
        return writer.ToArray();
    }

    /// <summary>RTM_DELLINK (ip link del NAME).</summary>
    public static byte[] DeleteLink(uint sequence, int interfaceIndex)
    {
        var writer = new NetlinkMessageWriter(RtmDelLink, RequestAck, sequence);
        writer.WriteIfInfoMessage(interfaceIndex, 0, 0);
        return writer.ToArray();
    }

    /// <summary>
    /// RTM_NEWQDISC. With <paramref name="flags"/> 0 it changes the options of
    /// the existing qdisc at <paramref name="parent"/>/<paramref name="handle"/>
    /// (tc qdisc change); add NLM_F_CREATE|NLM_F_EXCL to add, or
    /// NLM_F_CREATE|NLM_F_REPLACE to add or replace.
    /// </summary>
    public static byte[] NewQdisc(uint sequence, ushort flags, int interfaceIndex, uint parent, uint handle, string kind, ReadOnlySpan<byte> options)
    {
        var writer = new NetlinkMessageWriter(RtmNewQdisc, (ushort)(RequestAck | flags), sequence);
        writer.WriteTcMessage(interfaceIndex, handle, parent, 0);
        writer.WriteAttribute(TcaKind, kind);
        if (!options.IsEmpty)
        {
            writer.WriteAttribute(TcaOptions, options);
        }

        return writer.ToArray();
    }

    /// <summary>RTM_DELQDISC (tc qdisc del dev X parent P handle H KIND).</summary>
    public static byte[] DeleteQdisc(uint sequence, int interfaceIndex, uint parent, uint handle, string? kind)
    {
        var writer = new NetlinkMessageWriter(RtmDelQdisc, RequestAck, sequence);
        writer.WriteTcMessage(interfaceIndex, handle, parent, 0);
        if (kind is not null)
        {
            writer.WriteAttribute(TcaKind, kind);
        }

        return writer.ToArray();
    }

    /// <summary>
    /// RTM_GETQDISC for one qdisc: answered by its RTM_NEWQDISC and then the
    /// ack. The kernel sends the qdisc as a notification, which reaches the
    /// asker only with NLM_F_ECHO; without it there is just the ack.
    /// </summary>
    public static byte[] GetQdisc(uint sequence, int interfaceIndex, uint parent, uint handle)
    {
        var writer = new NetlinkMessageWriter(RtmGetQdisc, RequestAck | NlmFEcho, sequence);
        writer.WriteTcMessage(interfaceIndex, handle, parent, 0);
        return writer.ToArray();
    }

    /// <summary>
    /// RTM_GETQDISC dump. The kernel dumps the qdiscs of every device whatever
    /// the ifindex says; the client filters.
    /// </summary>
    public static byte[] DumpQdiscs(uint sequence, int interfaceIndex)
    {
        var writer = new NetlinkMessageWriter(RtmGetQdisc, NlmFRequest | NlmFDump, sequence);
        writer.WriteTcMessage(interfaceIndex, 0, 0, 0);
        return writer.ToArray();
    }

    /// <summary>
    /// RTM_NEWTFILTER: on the ingress of <paramref name="interfaceIndex"/>, a
    /// u32 filter matching every packet of every protocol (one key with mask
    /// 0) with a mirred action that redirects it to the egress of
    /// <paramref name="targetIndex"/>. The same bytes as
    /// <c>tc filter add dev X ingress protocol all prio P u32 match u32 0 0 action mirred egress redirect dev Y</c>.
    /// Parent ffff:fff2 rather than ffff: works under an ingress and a clsact
    /// qdisc alike. u32 rather than matchall because u32 is in every kernel
    /// config that has ingress filtering at all.
    /// </summary>
    public static byte[] NewIngressRedirectFilter(uint sequence, int interfaceIndex, ushort priority, int targetIndex)
    {
        var writer = new NetlinkMessageWriter(RtmNewTfilter, RequestAck | NlmFExcl | NlmFCreate, sequence);
        writer.WriteTcMessage(interfaceIndex, 0, TcHandle.IngressFilters, TcHandle.FilterInfo(priority, EthPAll));
        writer.WriteAttribute(TcaKind, "u32");
        var options = writer.BeginNested(TcaOptions);

        var actions = writer.BeginNested(TcaU32Act);
        var first = writer.BeginNested(1); // actions are numbered from 1, in order of execution
        writer.WriteAttribute(TcaActKind, "mirred");
        var actionOptions = writer.BeginNested(TcaActOptions, markNested: true);
        Span<byte> mirred = stackalloc byte[28];
        mirred.Clear();
        MemoryMarshal.Write(mirred[8..], TcActStolen); // tc_gen.action: the packet is consumed here
        MemoryMarshal.Write(mirred[20..], TcaEgressRedir); // eaction
        MemoryMarshal.Write(mirred[24..], targetIndex); // ifindex
        writer.WriteAttribute(TcaMirredParms, mirred);
        writer.EndNested(actionOptions);
        writer.EndNested(first);
        writer.EndNested(actions);

        // struct tc_u32_sel with one struct tc_u32_key: flags TC_U32_TERMINAL,
        // nkeys 1, and a key whose mask and value are 0, which every packet matches.
        Span<byte> selector = stackalloc byte[32];
        selector.Clear();
        selector[0] = TcU32Terminal;
        selector[2] = 1;
        writer.WriteAttribute(TcaU32Sel, selector);

        writer.EndNested(options);
        return writer.ToArray();
    }

    /// <summary>RTM_DELTFILTER of every filter at one priority (tc filter del dev X parent P prio N protocol all KIND).</summary>
    public static byte[] DeleteFilter(uint sequence, int interfaceIndex, uint parent, ushort priority, ushort protocol, string kind)
    {
        var writer = new NetlinkMessageWriter(RtmDelTfilter, RequestAck, sequence);
        writer.WriteTcMessage(interfaceIndex, 0, parent, TcHandle.FilterInfo(priority, protocol));
        writer.WriteAttribute(TcaKind, kind);
        return writer.ToArray();
    }

    /// <summary>RTM_GETTFILTER dump of one device's filters under <paramref name="parent"/>.</summary>
    public static byte[] DumpFilters(uint sequence, int interfaceIndex, uint parent)
    {
        var writer = new NetlinkMessageWriter(RtmGetTfilter, NlmFRequest | NlmFDump, sequence);
        writer.WriteTcMessage(interfaceIndex, 0, parent, 0);
        return writer.ToArray();
    }
}
