using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Output;

/// <summary>Log events of the kernel output buffer, ids 3100-3149.</summary>
internal static partial class KernelOutputLog
{
    [LoggerMessage(EventId = 3100, Level = LogLevel.Information,
        Message = "Kernel output buffer attached: plug {Handle} at the root of {Ifb} (limit {LimitBytes} bytes, namespace {Namespace}); output passes through until the first barrier")]
    public static partial void Attached(ILogger logger, string ifb, string handle, uint limitBytes, string @namespace);

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "Host setup for output buffering: created {What}")]
    public static partial void Created(ILogger logger, string what);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Error, Message = "sch_plug is not available in kernel {KernelRelease}; the kernel output buffer cannot start")]
    public static partial void PlugUnavailable(ILogger logger, string kernelRelease, Exception exception);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Error, Message = "Host network setup for the kernel output buffer is incomplete: {Problem}")]
    public static partial void SetupIncomplete(ILogger logger, string problem);

    [LoggerMessage(EventId = 3104, Level = LogLevel.Debug, Message = "Barrier {Epoch}: plug on {Ifb} holds output from now on")]
    public static partial void HoldingStarted(ILogger logger, ulong epoch, string ifb);

    [LoggerMessage(EventId = 3105, Level = LogLevel.Debug, Message = "Barrier {Epoch}: plug on {Ifb} closed a kernel epoch; the ack of this epoch lets it out")]
    public static partial void BarrierSent(ILogger logger, ulong epoch, string ifb);

    [LoggerMessage(EventId = 3106, Level = LogLevel.Debug,
        Message = "Barrier {Epoch} joins the next kernel epoch: the plug still holds the epoch closed at barrier {Pending}, and sch_plug keeps only one closed epoch")]
    public static partial void BarrierCoalesced(ILogger logger, ulong epoch, ulong pending);

    [LoggerMessage(EventId = 3107, Level = LogLevel.Debug, Message = "Ack {Epoch}: released the kernel epoch closed at barrier {KernelEpoch} on {Ifb}")]
    public static partial void Released(ILogger logger, ulong epoch, ulong kernelEpoch, string ifb);

    [LoggerMessage(EventId = 3108, Level = LogLevel.Warning,
        Message = "The plug on {Ifb} dropped {NewDrops} packets at its {LimitBytes}-byte limit ({TotalDrops} since attach); the guest sees this as loss. Raise Output:Kernel:LimitBytes")]
    public static partial void PacketsDropped(ILogger logger, string ifb, uint newDrops, uint limitBytes, uint totalDrops);

    [LoggerMessage(EventId = 3109, Level = LogLevel.Information, Message = "Released everything held on {Ifb}; output passes through until the next barrier")]
    public static partial void ReleasedAll(ILogger logger, string ifb);

    [LoggerMessage(EventId = 3110, Level = LogLevel.Warning,
        Message = "Detached while still holding output: the plug on {Ifb} stays and keeps holding it (invariant I1). To let it out by hand: tc qdisc change dev {Ifb} root handle 1: plug release_indefinite")]
    public static partial void LeftHolding(ILogger logger, string ifb);

    [LoggerMessage(EventId = 3111, Level = LogLevel.Warning, Message = "Removing {What} failed; remove it by hand")]
    public static partial void RemoveFailed(ILogger logger, string what, Exception exception);

    [LoggerMessage(EventId = 3112, Level = LogLevel.Warning,
        Message = "The plug on {Ifb} still queued {Packets} packets ({Bytes} bytes) after {Timeout}; removing it drops them")]
    public static partial void DrainTimedOut(ILogger logger, string ifb, uint packets, uint bytes, TimeSpan timeout);

    [LoggerMessage(EventId = 3113, Level = LogLevel.Warning,
        Message = "{Ifb} already had a plug qdisc ({Packets} packets queued), left by an earlier run; replacing it drops them unsent")]
    public static partial void StalePlugReplaced(ILogger logger, string ifb, uint packets);

    [LoggerMessage(EventId = 3114, Level = LogLevel.Information, Message = "Kernel output buffer detached from {Ifb}")]
    public static partial void Detached(ILogger logger, string ifb);

    [LoggerMessage(EventId = 3115, Level = LogLevel.Warning, Message = "Reading the plug counters on {Ifb} failed")]
    public static partial void StatsFailed(ILogger logger, string ifb, Exception exception);

    [LoggerMessage(EventId = 3116, Level = LogLevel.Warning,
        Message = "Output:Kernel:GuestTap is not set, so nothing checks that the guest's traffic reaches {Ifb}; if it does not, output is not held at all")]
    public static partial void RedirectUnchecked(ILogger logger, string ifb);

    [LoggerMessage(EventId = 3117, Level = LogLevel.Debug, Message = "Found the ingress redirect {Tap} -> {Ifb} ({Kind} filter, pref {Priority})")]
    public static partial void RedirectFound(ILogger logger, string tap, string ifb, string kind, ushort priority);

    [LoggerMessage(EventId = 3118, Level = LogLevel.Error, Message = "The kernel output buffer failed; it refuses further barriers and releases")]
    public static partial void Faulted(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3119, Level = LogLevel.Warning,
        Message = "Barrier {Epoch}: plug on {Ifb} holds output from now on, but packets queued while it passed through did not drain within {Timeout}; as many packets as were left will go out one release late")]
    public static partial void HoldingStartedUnsettled(ILogger logger, ulong epoch, string ifb, TimeSpan timeout);
}
