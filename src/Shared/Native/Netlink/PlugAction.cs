namespace McGrpc.Shared.Native.Netlink;

/// <summary>tc_plug_qopt.action (linux/pkt_sched.h, "PLUG section").</summary>
internal enum PlugAction
{
    /// <summary>TCQ_PLUG_BUFFER: close the current epoch and start buffering a new one.</summary>
    Buffer = 0,

    /// <summary>TCQ_PLUG_RELEASE_ONE: let out the packets of the last closed epoch.</summary>
    ReleaseOne = 1,

    /// <summary>TCQ_PLUG_RELEASE_INDEFINITE: let out everything and pass through until the next Buffer.</summary>
    ReleaseIndefinite = 2,

    /// <summary>TCQ_PLUG_LIMIT: set the queue limit in bytes.</summary>
    Limit = 3,
}
