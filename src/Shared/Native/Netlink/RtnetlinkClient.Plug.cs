namespace McGrpc.Shared.Native.Netlink;

internal sealed partial class RtnetlinkClient
{
    /// <summary>
    /// Adds or replaces the root plug qdisc of <paramref name="device"/>. On a
    /// kernel without sch_plug this fails with ENOENT ("Specified qdisc kind
    /// is unknown").
    /// </summary>
    public void CreatePlugQdisc(NetDevice device, uint handle, uint limitBytes)
    {
        Execute(
            $"RTM_NEWQDISC plug on {device.Name}",
            sequence => PlugQdisc.EncodeCreate(sequence, device.Index, handle, limitBytes),
            errno => CreateQdiscHint(errno, PlugQdisc.Kind, device));
    }

    /// <summary>Sends one action to the root plug qdisc <paramref name="handle"/> of <paramref name="device"/>.</summary>
    public void ChangePlugQdisc(NetDevice device, uint handle, PlugAction action, uint limitBytes = 0)
    {
        Execute(
            $"RTM_NEWQDISC plug {Describe(action)} on {device.Name}",
            sequence => PlugQdisc.EncodeChange(sequence, device.Index, handle, action, limitBytes),
            errno => ChangeQdiscHint(errno, PlugQdisc.Kind, handle, device));
    }

    private static string Describe(PlugAction action) => action switch
    {
        PlugAction.Buffer => "buffer",
        PlugAction.ReleaseOne => "release_one",
        PlugAction.ReleaseIndefinite => "release_indefinite",
        PlugAction.Limit => "limit",
        _ => action.ToString(),
    };
}
