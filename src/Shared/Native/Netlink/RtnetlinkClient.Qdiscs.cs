using System.Runtime.InteropServices;
using static McGrpc.Shared.Native.Netlink.NetlinkConstants;

namespace McGrpc.Shared.Native.Netlink;

internal sealed partial class RtnetlinkClient
{
    /// <summary>
    /// Adds a qdisc (NLM_F_CREATE|NLM_F_EXCL: fails with EEXIST when one is
    /// there) or, with <paramref name="replace"/>, adds or replaces it
    /// (NLM_F_CREATE|NLM_F_REPLACE). Note the kernel's rule: replacing a qdisc
    /// that has the same handle and kind only changes its options.
    /// </summary>
    public void AddQdisc(NetDevice device, uint parent, uint handle, string kind, ReadOnlySpan<byte> options, bool replace)
    {
        var flags = (ushort)(NlmFCreate | (replace ? NlmFReplace : NlmFExcl));
        var copy = options.ToArray();
        Execute(
            $"RTM_NEWQDISC {kind} on {device.Name}",
            sequence => RtnetlinkMessages.NewQdisc(sequence, flags, device.Index, parent, handle, kind, copy),
            errno => CreateQdiscHint(errno, kind, device));
    }

    /// <summary>Adds or replaces the root qdisc of <paramref name="device"/>.</summary>
    public void ReplaceRootQdisc(NetDevice device, uint handle, string kind, ReadOnlySpan<byte> options) =>
        AddQdisc(device, TcHandle.Root, handle, kind, options, replace: true);

    /// <summary>Changes the options of an existing qdisc (tc qdisc change); ENOENT when it is not there.</summary>
    public void ChangeQdisc(NetDevice device, uint parent, uint handle, string kind, ReadOnlySpan<byte> options)
    {
        var copy = options.ToArray();
        Execute(
            $"RTM_NEWQDISC {kind} change on {device.Name}",
            sequence => RtnetlinkMessages.NewQdisc(sequence, 0, device.Index, parent, handle, kind, copy),
            errno => ChangeQdiscHint(errno, kind, handle, device));
    }

    /// <summary>Deletes a qdisc; the kernel then puts the device's default qdisc back.</summary>
    public void DeleteQdisc(NetDevice device, uint parent, uint handle, string? kind = null)
    {
        Execute(
            $"RTM_DELQDISC {kind ?? TcHandle.Format(handle)} on {device.Name}",
            sequence => RtnetlinkMessages.DeleteQdisc(sequence, device.Index, parent, handle, kind),
            errno => errno switch
            {
                Errors.ENOENT or Errors.EINVAL => $"no qdisc {TcHandle.Format(handle)} under {TcHandle.Format(parent)} on {device.Name}",
                _ => PermissionHint(errno),
            });
    }

    /// <summary>The qdiscs of <paramref name="device"/> with their options and counters.</summary>
    public List<QdiscInfo> DumpQdiscs(NetDevice device)
    {
        var all = Dump<QdiscInfo>(
            $"RTM_GETQDISC dump on {device.Name}",
            sequence => RtnetlinkMessages.DumpQdiscs(sequence, device.Index),
            TryParseQdisc);
        all.RemoveAll(qdisc => qdisc.InterfaceIndex != device.Index);
        return all;
    }

    /// <summary>
    /// One qdisc with its counters, without dumping every device's qdiscs.
    /// EINVAL when the qdisc at <paramref name="parent"/> has another handle.
    /// </summary>
    public QdiscInfo GetQdisc(NetDevice device, uint parent, uint handle)
    {
        var operation = $"RTM_GETQDISC {TcHandle.Format(handle)} on {device.Name}";
        var found = Dump<QdiscInfo>(
            operation,
            sequence => RtnetlinkMessages.GetQdisc(sequence, device.Index, parent, handle),
            TryParseQdisc,
            errno => errno is Errors.EINVAL or Errors.ENOENT ? $"no qdisc {TcHandle.Format(handle)} under {TcHandle.Format(parent)} on {device.Name}" : PermissionHint(errno));
        return found.Count == 1 ? found[0] : throw new NetlinkException(operation, 0, hint: $"expected one qdisc in the reply, got {found.Count}");
    }

    /// <summary>The root qdisc of <paramref name="device"/>, if the dump shows one.</summary>
    public QdiscInfo? FindRootQdisc(NetDevice device) => DumpQdiscs(device).Find(qdisc => qdisc.IsRoot);

    internal static string? CreateQdiscHint(int errno, string kind, NetDevice device) => errno switch
    {
        // qdisc_create answers ENOENT with "Specified qdisc kind is unknown".
        Errors.ENOENT => $"is sch_{kind} available? (modprobe sch_{kind})",
        Errors.EEXIST => $"{device.Name} already has such a qdisc",
        Errors.ENODEV => $"{device.Name} is gone",
        _ => PermissionHint(errno),
    };

    internal static string? ChangeQdiscHint(int errno, string kind, uint handle, NetDevice device) => errno switch
    {
        Errors.ENOENT => $"there is no {kind} qdisc {TcHandle.Format(handle)} at the root of {device.Name} any more; did something else remove or replace it?",
        Errors.EINVAL => $"the qdisc at the root of {device.Name} is not a {kind} qdisc, or it rejected the options",
        Errors.EEXIST => $"the root qdisc of {device.Name} has a different handle than {TcHandle.Format(handle)}",
        Errors.ENODEV => $"{device.Name} is gone",
        _ => PermissionHint(errno),
    };

    private static bool TryParseQdisc(in NetlinkMessageHeader header, ReadOnlySpan<byte> payload, out QdiscInfo qdisc)
    {
        qdisc = null!;
        if (header.Type != RtmNewQdisc || payload.Length < TcMessageLength)
        {
            return false;
        }

        var index = MemoryMarshal.Read<int>(payload[4..]);
        var handle = MemoryMarshal.Read<uint>(payload[8..]);
        var parent = MemoryMarshal.Read<uint>(payload[12..]);
        var attributes = payload[TcMessageLength..];
        var kind = string.Empty;
        byte[] options = [];
        QdiscStats stats = default;
        var reader = new NetlinkAttributeReader(attributes);
        var haveStats2 = false;
        while (reader.TryRead(out var type, out var value))
        {
            switch (type)
            {
                case TcaKind:
                    kind = NetlinkAttributeReader.ReadString(value);
                    break;
                case TcaOptions:
                    options = value.ToArray();
                    break;
                case TcaStats2:
                    stats = ParseStats2(value);
                    haveStats2 = true;
                    break;
                case TcaStats when !haveStats2:
                    stats = ParseLegacyStats(value);
                    break;
            }
        }

        qdisc = new QdiscInfo(index, handle, parent, kind, options, stats);
        return true;
    }

    /// <summary>
    /// TCA_STATS2: TCA_STATS_BASIC is struct gnet_stats_basic { __u64 bytes;
    /// __u32 packets; }, TCA_STATS_PKT64 a 64-bit packet count that newer
    /// kernels add, TCA_STATS_QUEUE struct gnet_stats_queue { __u32 qlen,
    /// backlog, drops, requeues, overlimits; }.
    /// </summary>
    private static QdiscStats ParseStats2(ReadOnlySpan<byte> nested)
    {
        ulong bytes = 0;
        ulong packets = 0;
        uint queueLength = 0, backlog = 0, drops = 0, requeues = 0, overlimits = 0;
        var reader = new NetlinkAttributeReader(nested);
        var havePackets64 = false;
        while (reader.TryRead(out var type, out var value))
        {
            switch (type)
            {
                case TcaStatsBasic when value.Length >= 12:
                    bytes = MemoryMarshal.Read<ulong>(value);
                    if (!havePackets64)
                    {
                        packets = MemoryMarshal.Read<uint>(value[8..]);
                    }

                    break;
                case TcaStatsPkt64 when value.Length >= 8:
                    packets = MemoryMarshal.Read<ulong>(value);
                    havePackets64 = true;
                    break;
                case TcaStatsQueue when value.Length >= 20:
                    queueLength = MemoryMarshal.Read<uint>(value);
                    backlog = MemoryMarshal.Read<uint>(value[4..]);
                    drops = MemoryMarshal.Read<uint>(value[8..]);
                    requeues = MemoryMarshal.Read<uint>(value[12..]);
                    overlimits = MemoryMarshal.Read<uint>(value[16..]);
                    break;
            }
        }

        return new QdiscStats(bytes, packets, queueLength, backlog, drops, requeues, overlimits);
    }

    /// <summary>
    /// TCA_STATS, struct tc_stats { __u64 bytes; __u32 packets, drops,
    /// overlimits, bps, pps, qlen, backlog; }, for kernels without TCA_STATS2.
    /// </summary>
    private static QdiscStats ParseLegacyStats(ReadOnlySpan<byte> value)
    {
        if (value.Length < 36)
        {
            return default;
        }

        return new QdiscStats(
            Bytes: MemoryMarshal.Read<ulong>(value),
            Packets: MemoryMarshal.Read<uint>(value[8..]),
            QueueLength: MemoryMarshal.Read<uint>(value[28..]),
            Backlog: MemoryMarshal.Read<uint>(value[32..]),
            Drops: MemoryMarshal.Read<uint>(value[12..]),
            Requeues: 0,
            Overlimits: MemoryMarshal.Read<uint>(value[16..]));
    }
}
