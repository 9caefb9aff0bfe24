namespace McGrpc.Shared.Native.Netlink;

/// <summary>
/// The generic counters every qdisc keeps (TCA_STATS2: gnet_stats_basic and
/// gnet_stats_queue). Bytes and packets count what the qdisc dequeued, i.e.
/// let out; queue length and backlog are what it holds now.
/// </summary>
internal readonly record struct QdiscStats(
    ulong Bytes,
    ulong Packets,
    uint QueueLength,
    uint Backlog,
    uint Drops,
    uint Requeues,
    uint Overlimits);
