using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native.Netlink;

/// <summary>
/// Requests for the plug qdisc (net/sched/sch_plug.c). Every one is an
/// RTM_NEWQDISC whose TCA_OPTIONS is a struct tc_plug_qopt { int action;
/// __u32 limit; }. The kernel keeps exactly two epoch counters: BUFFER moves
/// the current epoch's packet count into "last" (overwriting what was there)
/// and starts a new one; RELEASE_ONE lets out "last"'s packets. Its limit is
/// in bytes of queued packet data; packets beyond it are dropped.
/// </summary>
internal static class PlugQdisc
{
    public const string Kind = "plug";
    public const int OptionsLength = 8;

    /// <summary>struct tc_plug_qopt.</summary>
    public static byte[] EncodeOptions(PlugAction action, uint limit)
    {
        var options = new byte[OptionsLength];
        MemoryMarshal.Write(options, (int)action);
        MemoryMarshal.Write(options.AsSpan(4), limit);
        return options;
    }

    /// <summary>
    /// Adds (or replaces) the plug as root qdisc of a device, as
    /// <c>tc qdisc replace dev X root handle H plug limit L</c>. plug_init reads
    /// only the limit; tc sends action TCQ_PLUG_LIMIT and so do we. A new plug
    /// starts out buffering.
    /// </summary>
    public static byte[] EncodeCreate(uint sequence, int interfaceIndex, uint handle, uint limitBytes) =>
        RtnetlinkMessages.NewQdisc(
            sequence,
            NetlinkConstants.NlmFCreate | NetlinkConstants.NlmFReplace,
            interfaceIndex,
            TcHandle.Root,
            handle,
            Kind,
            EncodeOptions(PlugAction.Limit, limitBytes));

    /// <summary>
    /// Changes the existing root plug, as <c>tc qdisc change dev X root handle H plug ACTION</c>
    /// (no NLM_F_CREATE: if the plug is gone this fails instead of creating a new one).
    /// </summary>
    public static byte[] EncodeChange(uint sequence, int interfaceIndex, uint handle, PlugAction action, uint limit = 0) =>
        RtnetlinkMessages.NewQdisc(sequence, 0, interfaceIndex, TcHandle.Root, handle, Kind, EncodeOptions(action, limit));

    /// <summary>TCQ_PLUG_BUFFER (tc's "block").</summary>
    public static byte[] EncodeBuffer(uint sequence, int interfaceIndex, uint handle) =>
        EncodeChange(sequence, interfaceIndex, handle, PlugAction.Buffer);

    /// <summary>TCQ_PLUG_RELEASE_ONE (tc's "release").</summary>
    public static byte[] EncodeReleaseOne(uint sequence, int interfaceIndex, uint handle) =>
        EncodeChange(sequence, interfaceIndex, handle, PlugAction.ReleaseOne);

    /// <summary>TCQ_PLUG_RELEASE_INDEFINITE (tc's "release_indefinite").</summary>
    public static byte[] EncodeReleaseIndefinite(uint sequence, int interfaceIndex, uint handle) =>
        EncodeChange(sequence, interfaceIndex, handle, PlugAction.ReleaseIndefinite);

    /// <summary>TCQ_PLUG_LIMIT (tc's "limit N"), in bytes.</summary>
    public static byte[] EncodeSetLimit(uint sequence, int interfaceIndex, uint handle, uint limitBytes) =>
        EncodeChange(sequence, interfaceIndex, handle, PlugAction.Limit, limitBytes);
}
