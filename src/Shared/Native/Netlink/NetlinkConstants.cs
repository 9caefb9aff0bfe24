namespace McGrpc.Shared.Native.Netlink;

/// <summary>
/// Numbers from linux/netlink.h, linux/rtnetlink.h, linux/if_link.h,
/// linux/pkt_sched.h and linux/pkt_cls.h. They are kernel ABI and never change.
/// </summary>
internal static class NetlinkConstants
{
    public const int NetlinkRoute = 0;
    public const int SolNetlink = 270;
    public const int NetlinkCapAck = 10;
    public const int NetlinkExtAck = 11;

    public const int HeaderLength = 16;
    public const int AttributeHeaderLength = 4;
    public const int TcMessageLength = 20;
    public const int IfInfoMessageLength = 16;

    // Message types.
    public const ushort NlmsgNoop = 1;
    public const ushort NlmsgError = 2;
    public const ushort NlmsgDone = 3;
    public const ushort NlmsgOverrun = 4;
    public const ushort RtmNewLink = 16;
    public const ushort RtmDelLink = 17;
    public const ushort RtmGetLink = 18;
    public const ushort RtmNewQdisc = 36;
    public const ushort RtmDelQdisc = 37;
    public const ushort RtmGetQdisc = 38;
    public const ushort RtmNewTfilter = 44;
    public const ushort RtmDelTfilter = 45;
    public const ushort RtmGetTfilter = 46;

    // Request flags.
    public const ushort NlmFRequest = 0x1;
    public const ushort NlmFMulti = 0x2;
    public const ushort NlmFAck = 0x4;
    public const ushort NlmFEcho = 0x8;
    public const ushort NlmFDump = 0x300;
    public const ushort NlmFReplace = 0x100;
    public const ushort NlmFExcl = 0x200;
    public const ushort NlmFCreate = 0x400;

    // Flags on an NLMSG_ERROR reply.
    public const ushort NlmFCapped = 0x100;
    public const ushort NlmFAckTlvs = 0x200;
    public const ushort NlmsgerrAttrMsg = 1;

    // Attribute type bits that are not part of the type.
    public const ushort NlaFNested = 0x8000;
    public const ushort NlaTypeMask = 0x3fff;

    // Links.
    public const ushort IflaIfname = 3;
    public const ushort IflaLinkinfo = 18;
    public const ushort IflaExtMask = 29;
    public const ushort IflaInfoKind = 1;
    public const uint RtextFilterSkipStats = 1 << 3;
    public const uint IffUp = 0x1;

    // Traffic control messages.
    public const ushort TcaKind = 1;
    public const ushort TcaOptions = 2;
    public const ushort TcaStats = 3;
    public const ushort TcaStats2 = 7;
    public const ushort TcaStatsBasic = 1;
    public const ushort TcaStatsQueue = 3;
    public const ushort TcaStatsPkt64 = 8;

    // Actions (linux/pkt_cls.h, linux/tc_act/tc_mirred.h).
    public const ushort TcaActKind = 1;
    public const ushort TcaActOptions = 2;
    public const ushort TcaMirredParms = 2;
    public const int TcActStolen = 4;
    public const int TcaEgressRedir = 1;
    public const int TcaEgressMirror = 2;
    public const int TcaIngressRedir = 3;
    public const int TcaIngressMirror = 4;

    // u32 classifier.
    public const ushort TcaU32Sel = 5;
    public const ushort TcaU32Act = 7;
    public const byte TcU32Terminal = 1;

    public const ushort EthPAll = 0x0003;
}
