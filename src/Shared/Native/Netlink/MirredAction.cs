namespace McGrpc.Shared.Native.Netlink;

/// <summary>A mirred action found in a filter: what it does (TCA_EGRESS_REDIR...) and to which device.</summary>
internal readonly record struct MirredAction(int Action, int TargetIndex)
{
    /// <summary>
    /// A redirect hands the packet over; a mirror sends a copy and lets the
    /// original go on, which would bypass any buffering on the target.
    /// </summary>
    public bool IsEgressRedirect => Action == NetlinkConstants.TcaEgressRedir;

    public string Describe() => Action switch
    {
        NetlinkConstants.TcaEgressRedir => "egress redirect",
        NetlinkConstants.TcaEgressMirror => "egress mirror",
        NetlinkConstants.TcaIngressRedir => "ingress redirect",
        NetlinkConstants.TcaIngressMirror => "ingress mirror",
        _ => $"mirred action {Action}",
    };
}
