using McGrpc.Protos.Replication;

namespace McGrpc.Fuzz;

/// <summary>
/// The frames of one epoch exactly as mc-primary sends them: page chunks,
/// device-state chunks, Commit. Nothing in an epoch's digest depends on its
/// number, so a recorded epoch can be replayed under any number.
/// </summary>
/// <param name="Epoch">The number it was recorded with.</param>
/// <param name="Full">A full copy (pre-copy rounds included) or an incremental epoch.</param>
/// <param name="Frames">Its frames, in send order; payloads are owned, not pooled.</param>
internal sealed record RecordedEpoch(ulong Epoch, bool Full, IReadOnlyList<PrimaryFrame> Frames)
{
    /// <summary>A copy of the frames carrying epoch number <paramref name="epoch"/>.</summary>
    public List<PrimaryFrame> As(ulong epoch)
    {
        var frames = new List<PrimaryFrame>(Frames.Count);
        foreach (var frame in Frames)
        {
            var copy = frame.Clone();
            switch (copy.BodyCase)
            {
                case PrimaryFrame.BodyOneofCase.Pages:
                    copy.Pages.Epoch = epoch;
                    break;
                case PrimaryFrame.BodyOneofCase.DeviceState:
                    copy.DeviceState.Epoch = epoch;
                    break;
                case PrimaryFrame.BodyOneofCase.Commit:
                    copy.Commit.Epoch = epoch;
                    break;
            }

            frames.Add(copy);
        }

        return frames;
    }
}
