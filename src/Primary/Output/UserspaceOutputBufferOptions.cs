namespace McGrpc.Primary.Output;

/// <summary>
/// Options of the userspace output buffer (<see cref="UserspaceOutputBuffer"/>),
/// bound from the <c>Output:Userspace</c> configuration section. See
/// docs/output-commit.md.
/// </summary>
internal sealed class UserspaceOutputBufferOptions
{
    public const string SectionName = "Output:Userspace";

    /// <summary>
    /// The netdevs to hold output on (QEMU <c>-netdev ...,id=ID</c>), separated
    /// by commas. Default null: every netdev that a guest NIC sends through,
    /// found with HMP <c>info network</c> when the buffer starts. A VM with
    /// several NICs needs all of them held, or output commit has a hole.
    /// </summary>
    public string? Netdevs { get; set; }

    /// <summary>
    /// Bound on the memory of held packets plus packets released but not yet
    /// written back to QEMU, in bytes (rented buffers, so a 60-byte packet
    /// counts as a pool bucket). A packet beyond it is dropped and counted
    /// (log event 3157): the guest sees loss, never early output, and QEMU is
    /// never stalled. Size it for the guest's peak output rate times the time
    /// one epoch's output is held (delay plus transfer plus ack).
    /// Default 67108864 (64 MiB).
    /// </summary>
    public long MaxHeldBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// Sets <c>vnet_hdr_support=on</c> on the filters, so frames carry the
    /// netdev's vnet header length. Packets are held and re-injected as the
    /// same bytes either way; only tools that parse them need it. Default false.
    /// </summary>
    public bool VnetHeaderSupport { get; set; }

    /// <summary>
    /// Socket send buffer given to QEMU's end of the capture connection
    /// (SO_SNDBUFFORCE, else SO_SNDBUF capped by net.core.wmem_max). QEMU
    /// writes captured packets with a blocking write in its main loop, so this
    /// is how long mc-primary's reader may lag (a GC pause) before the guest
    /// and QMP freeze. Default 4194304 (4 MiB).
    /// </summary>
    public int SocketBufferBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// On a clean detach, how long to wait for packets already released to be
    /// written back to QEMU before removing the inject filter. Default 2 seconds.
    /// </summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// After a filter connection breaks while QEMU lives, how long to wait
    /// between attempts to replace the filters. Default 1 second.
    /// </summary>
    public TimeSpan RepairInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The configured netdev ids, or null for "every netdev with a NIC".</summary>
    public IReadOnlyList<string>? NetdevList()
        => string.IsNullOrWhiteSpace(Netdevs)
            ? null
            : Netdevs.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
