using McGrpc.Shared.Frames;

namespace McGrpc.Primary.Replication;

/// <summary>
/// Frames queued for the replication stream. A batch of a normal epoch stays
/// owned by the engine (kept for a resend until acked); a pre-copy batch of a
/// full copy is disposed by the sender once written.
/// </summary>
/// <param name="Frames">The frames, in order.</param>
/// <param name="DisposeAfterSend">Return the batch's buffers as soon as it is written.</param>
/// <param name="Sent">Called with the milliseconds the writes took, once the last frame is written.</param>
internal sealed record OutboundBatch(EpochFrames Frames, bool DisposeAfterSend, Action<double>? Sent = null);
