using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;

namespace McGrpc.Backup.Replication;

/// <summary>
/// The session-level rules the backup applies to a primary's frames, apart
/// from any engine state so that tests and the fuzzer check exactly what the
/// backup enforces: Hello must describe this backup's VM, a running session
/// carries only epoch frames, and epoch numbers strictly increase.
/// </summary>
internal static class EpochRules
{
    /// <summary>Longest session id a Hello may carry (the primary sends 32 hex digits).</summary>
    public const int MaxSessionIdLength = 64;

    /// <summary>
    /// What is wrong with <paramref name="hello"/> for a backup of VM
    /// <paramref name="vmId"/> with <paramref name="ramSize"/> bytes of RAM in
    /// <paramref name="pageSize"/> pages; empty when it may open a session.
    /// </summary>
    public static IReadOnlyList<string> HelloProblems(Hello hello, string vmId, long ramSize, int pageSize)
    {
        var problems = new List<string>();
        if (hello.ProtocolVersion != FrameLimits.ProtocolVersion)
        {
            problems.Add($"protocol version {hello.ProtocolVersion}, this backup speaks {FrameLimits.ProtocolVersion}");
        }

        if (hello.VmId != vmId)
        {
            problems.Add($"VM id '{PeerText.Printable(hello.VmId)}', this backup protects '{vmId}'");
        }

        if (hello.RamSize != (ulong)ramSize)
        {
            problems.Add($"RAM size {hello.RamSize:#,0} bytes, the backup QEMU has {ramSize:#,0}");
        }

        if (hello.PageSize != (uint)pageSize)
        {
            problems.Add($"page size {hello.PageSize}, the backup uses {pageSize}");
        }

        if (string.IsNullOrEmpty(hello.SessionId) || hello.SessionId.Length > MaxSessionIdLength || !hello.SessionId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            problems.Add($"a missing, oversized or non-alphanumeric session id (1..{MaxSessionIdLength} letters, digits, '-' or '_')");
        }

        return problems;
    }

    /// <summary>
    /// The epoch a frame of a running session belongs to. Hello comes once, at
    /// the start; anything else that is not an epoch frame is refused.
    /// Heartbeat and Goodbye carry no epoch: null.
    /// </summary>
    public static ulong? EpochOf(PrimaryFrame frame) => frame.BodyCase switch
    {
        PrimaryFrame.BodyOneofCase.Pages => frame.Pages.Epoch,
        PrimaryFrame.BodyOneofCase.DeviceState => frame.DeviceState.Epoch,
        PrimaryFrame.BodyOneofCase.Commit => frame.Commit.Epoch,
        PrimaryFrame.BodyOneofCase.Heartbeat or PrimaryFrame.BodyOneofCase.Goodbye => null,
        PrimaryFrame.BodyOneofCase.Hello => throw new FrameFormatException("A second Hello arrived in a running session; Hello comes once, first."),
        _ => throw new FrameFormatException($"Unexpected {frame.BodyCase} frame in a running session."),
    };

    /// <summary>
    /// Decides how the first frame of a new epoch may open it. A session that
    /// cannot resume must start with a full copy numbered above anything
    /// applied before. A resumed session continues with the epoch right after
    /// the applied checkpoint; a number further ahead can only be a full copy
    /// (a correct primary never skips an incremental epoch: it jumps only when
    /// it cannot continue and copies everything again). Anything at or below
    /// the checkpoint is refused. Throws <see cref="FrameFormatException"/>.
    /// </summary>
    /// <param name="epoch">The epoch number of the frame.</param>
    /// <param name="expectFull">The session cannot resume: a full copy must come.</param>
    /// <param name="lastApplied">The last applied epoch, or null when none was ever applied.</param>
    public static EpochKind Open(ulong epoch, bool expectFull, ulong? lastApplied)
    {
        // ulong.MaxValue has no successor: accepting it would let the next
        // epoch number wrap to 0 and pass as "the next one".
        if (epoch == ulong.MaxValue)
        {
            throw new FrameFormatException($"Epoch {epoch} is out of range.");
        }

        if (lastApplied is not { } last)
        {
            if (!expectFull)
            {
                throw new FrameFormatException($"Epoch {epoch} arrived as incremental but the backup holds no checkpoint to add it to.");
            }

            return EpochKind.Full;
        }

        if (epoch <= last)
        {
            throw new FrameFormatException(expectFull
                ? $"Full copy epoch {epoch} is not after the last applied epoch {last}; epochs must increase."
                : $"Epoch {epoch} arrived but epoch {last + 1} is the next one after the applied checkpoint {last}; epochs must increase.");
        }

        return expectFull || epoch > last + 1 ? EpochKind.Full : EpochKind.Incremental;
    }
}
