using System.Diagnostics;
using McGrpc.Shared;
using McGrpc.Shared.Native;
using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Tracking;

/// <summary>
/// Start-up probe: picks the best dirty tracker that really works for this VM
/// on this host, testing each mechanism rather than the kernel version.
/// </summary>
internal static class DirtyTrackerSelector
{
    public const string UffdWpName = "uffd-wp";
    public const string SoftDirtyName = "soft-dirty";
    public const string CompareName = "compare";

    private const string DiscardReason =
        "the VM has a RAM-discarding device (virtio-balloon or virtio-mem): discarded pages change without a write, which this tracker cannot see";

    /// <summary>Parses the option value: auto, uffd-wp, soft-dirty or compare.</summary>
    public static DirtyTrackerMode ParseMode(string value) => value.Trim().ToLowerInvariant() switch
    {
        "auto" => DirtyTrackerMode.Auto,
        UffdWpName => DirtyTrackerMode.UffdWp,
        SoftDirtyName => DirtyTrackerMode.SoftDirty,
        CompareName => DirtyTrackerMode.Compare,
        _ => throw new ArgumentException($"Unknown dirty tracker '{value}'; use auto, {UffdWpName}, {SoftDirtyName} or {CompareName}.", nameof(value)),
    };

    public static string NameOf(DirtyTrackerMode mode) => mode switch
    {
        DirtyTrackerMode.UffdWp => UffdWpName,
        DirtyTrackerMode.SoftDirty => SoftDirtyName,
        DirtyTrackerMode.Compare => CompareName,
        _ => "auto",
    };

    /// <summary>
    /// With <see cref="DirtyTrackerMode.Auto"/>: the first of uffd-wp, soft-dirty,
    /// compare that works, the others listed with the reason they were not chosen.
    /// A forced mode returns that tracker or throws <see cref="DirtyTrackerUnavailableException"/>.
    /// </summary>
    public static DirtyTrackerSelection Select(DirtyTrackerMode mode, DirtyTrackerTarget target, ILogger logger)
    {
        var clock = Stopwatch.StartNew();
        var order = mode == DirtyTrackerMode.Auto
            ? [DirtyTrackerMode.UffdWp, DirtyTrackerMode.SoftDirty, DirtyTrackerMode.Compare]
            : new[] { mode };
        var rejected = new List<TrackerRejection>();
        IDirtyTracker? chosen = null;
        foreach (var candidate in order)
        {
            var name = NameOf(candidate);
            if (chosen is not null)
            {
                // Not needed, but status should still say whether it would work.
                var reason = candidate == DirtyTrackerMode.Compare ? null : WhyNot(candidate, target);
                rejected.Add(new TrackerRejection(name, reason is null
                    ? $"works, but {chosen.Name} ranks higher"
                    : reason));
                continue;
            }

            var whyNot = TryCreate(candidate, target, logger, out chosen);
            if (whyNot is not null)
            {
                if (mode != DirtyTrackerMode.Auto)
                {
                    TrackingLog.ForcedTrackerUnavailable(logger, name, whyNot);
                    throw new DirtyTrackerUnavailableException(name, whyNot);
                }

                rejected.Add(new TrackerRejection(name, whyNot));
            }
        }

        foreach (var rejection in rejected)
        {
            TrackingLog.TrackerRejected(logger, rejection.Tracker, rejection.Reason);
        }

        // Compare always works, and a forced mode threw above.
        var tracker = chosen ?? throw new UnreachableException("No dirty tracker was created.");
        TrackingLog.TrackerSelected(logger, tracker.Name, NameOf(mode), clock.Elapsed.TotalMilliseconds);
        return new DirtyTrackerSelection(tracker, rejected);
    }

    private static string? TryCreate(DirtyTrackerMode mode, DirtyTrackerTarget target, ILogger logger, out IDirtyTracker? tracker)
    {
        tracker = null;
        var reason = WhyNot(mode, target);
        if (reason is not null)
        {
            return reason;
        }

        try
        {
            tracker = mode switch
            {
                DirtyTrackerMode.UffdWp => new UffdWpTracker(target.QemuPid, target.RamAddress, target.RamLength, target.PageSize, target.GuestRam, logger),
                DirtyTrackerMode.SoftDirty => new SoftDirtyTracker(target.QemuPid, target.RamAddress, target.RamLength, target.PageSize, target.GuestRam, logger),
                _ => new CompareTracker(target.GuestRam, target.PageSize, logger),
            };
            return null;
        }
        catch (McGrpcException e)
        {
            return mode == DirtyTrackerMode.UffdWp
                ? $"the kernel supports it, but attaching to QEMU {target.QemuPid} failed (QEMU left as it was): {e.Message}"
                : e.Message;
        }
        catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }

    /// <summary>Why <paramref name="mode"/> cannot work for this VM here, found without touching QEMU; null when it should.</summary>
    private static string? WhyNot(DirtyTrackerMode mode, DirtyTrackerTarget target) => mode switch
    {
        DirtyTrackerMode.UffdWp => target.HasRamDiscardingDevice ? DiscardReason : DirtyTrackingProbe.ProbeUffdWp(),
        DirtyTrackerMode.SoftDirty => target.HasRamDiscardingDevice ? DiscardReason : DirtyTrackingProbe.ProbeSoftDirty(),
        _ => null,
    };
}
