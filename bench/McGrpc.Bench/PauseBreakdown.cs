using McGrpc.Protos.Control;

namespace McGrpc.Bench;

/// <summary>
/// The parts of a pause (stop..cont) in the order they happen, as mc-primary
/// reports them per epoch. "rest" is the pause minus the other parts: waiting
/// for QEMU to reach postmigrate, QMP round trips not inside a part, and
/// scheduling on the host.
/// </summary>
internal static class PauseBreakdown
{
    public static IReadOnlyList<PausePart> Parts { get; } =
    [
        new("stop", s => s.StopMs),
        new("harvest", s => s.DirtyLogMs),
        new("copy", s => s.RamCopyMs),
        new("device state", s => s.DeviceStateMs),
        new("cont", s => s.ContMs),
        new("rest", Rest),
    ];

    public static double Rest(CheckpointStats s) => Math.Max(0, s.DowntimeMs - s.StopMs - s.DirtyLogMs - s.RamCopyMs - s.DeviceStateMs - s.ContMs);
}
