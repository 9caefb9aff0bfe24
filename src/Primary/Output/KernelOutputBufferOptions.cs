namespace McGrpc.Primary.Output;

/// <summary>
/// Options of the kernel output buffer (<see cref="KernelPlugOutputBuffer"/>),
/// bound from the <c>Output:Kernel</c> configuration section. See
/// docs/kernel-output-buffer.md for the host setup they describe.
/// </summary>
internal sealed class KernelOutputBufferOptions
{
    public const string SectionName = "Output:Kernel";

    /// <summary>
    /// The IFB device that receives the guest tap's ingress and whose root
    /// qdisc becomes the plug. One per protected VM. Default "ifb0".
    /// </summary>
    public string IfbDevice { get; set; } = "ifb0";

    /// <summary>
    /// The tap device of the guest's NIC (QEMU's <c>-netdev tap,ifname=...</c>).
    /// When set, start-up checks (or, with <see cref="SetUpHostNetworking"/>,
    /// creates) the ingress redirect from this tap to <see cref="IfbDevice"/>;
    /// when null, start-up cannot tell whether the guest's traffic goes through
    /// the plug at all and says so in the log. Default null.
    /// </summary>
    public string? GuestTap { get; set; }

    /// <summary>
    /// When true, mc-primary creates what is missing itself over rtnetlink:
    /// the IFB device (brought up), an ingress qdisc on <see cref="GuestTap"/>,
    /// and a u32 filter that redirects all of the tap's ingress to the IFB;
    /// and removes what it created when it detaches. When false the operator
    /// runs the commands in docs/kernel-output-buffer.md and start-up only
    /// verifies them, naming what is missing. Default false.
    /// </summary>
    public bool SetUpHostNetworking { get; set; }

    /// <summary>
    /// The plug qdisc's limit in bytes of queued packet data (sch_plug counts
    /// bytes, not packets). Packets that arrive while the plug holds this much
    /// are dropped by the kernel; the guest sees loss, never early output.
    /// Size it for the guest's peak output rate times the time one epoch's
    /// output is held (epoch interval plus checkpoint transfer plus ack).
    /// Default 33554432 (32 MiB: about 250 ms of output at 1 Gbit/s).
    /// </summary>
    public uint LimitBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>
    /// The network namespace the tap and IFB live in: a name from
    /// <c>ip netns add</c> (looked up under /var/run/netns) or a path such as
    /// /proc/PID/ns/net. Default null: the daemon's own namespace.
    /// </summary>
    public string? NetworkNamespace { get; set; }

    /// <summary>How long one rtnetlink request waits for the kernel's answer. Default 2 seconds.</summary>
    public TimeSpan NetlinkTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// On detach, after everything was released, how long to wait for the
    /// plug to finish sending what it let out before removing it (removing a
    /// qdisc drops what it still queues). Default 5 seconds.
    /// </summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
