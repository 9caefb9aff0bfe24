using System.Diagnostics;
using McGrpc.Shared.Native.Netlink;

namespace McGrpc.Primary.Output;

/// <summary>
/// Turns the epoch loop's barriers and acks into plug actions, within what
/// sch_plug can express. The plug counts packets in only two slots:
/// "current" (since the last TCQ_PLUG_BUFFER) and "last" (closed, waiting for
/// TCQ_PLUG_RELEASE_ONE). BUFFER overwrites "last"; RELEASE_ONE lets out as
/// many packets from the head of the queue as "last" counted, and empties it.
/// <para>
/// So a BUFFER sent while an earlier closed epoch is still unreleased would
/// make the kernel forget that epoch's count: its packets would stay queued
/// until release-indefinite, each later release letting out older packets in
/// place of newer ones. (Sending RELEASE_ONE once per barrier does not help:
/// the second one releases an empty slot.) Hence a barrier becomes a BUFFER
/// only while "last" is empty. A barrier that finds "last" occupied (more
/// than one epoch in flight) is coalesced: its packets stay in "current",
/// are closed by the next barrier that finds "last" empty and let out by that
/// barrier's ack. Output is then held up to one epoch longer than needed,
/// never shorter (invariant I1), and nothing is stranded.
/// </para>
/// The sender and the queue-length reader are the seam: the buffer passes
/// rtnetlink calls, tests pass a model of sch_plug. Not thread-safe; the
/// owner serialises calls.
/// </summary>
internal sealed class PlugEpochDriver
{
    /// <summary>How long the first barrier may spend getting the pass-through queue empty.</summary>
    public static readonly TimeSpan DefaultSettleTimeout = TimeSpan.FromMilliseconds(50);

    private static readonly TimeSpan SettlePause = TimeSpan.FromMilliseconds(1);

    private readonly Action<PlugAction> _send;
    private readonly Func<uint> _queueLength;
    private readonly TimeSpan _settleTimeout;
    private ulong? _lastBarrier;

    /// <param name="send">Sends one action to the plug; throws when the kernel refuses.</param>
    /// <param name="queueLength">Reads how many packets the plug queues right now.</param>
    /// <param name="settleTimeout">Bound on the first barrier's wait for an empty queue.</param>
    public PlugEpochDriver(Action<PlugAction> send, Func<uint> queueLength, TimeSpan? settleTimeout = null)
    {
        _send = send;
        _queueLength = queueLength;
        _settleTimeout = settleTimeout ?? DefaultSettleTimeout;
    }

    /// <summary>Whether output is held (a barrier came since attach or since the last release-all).</summary>
    public bool Holding { get; private set; }

    /// <summary>The barrier that closed the kernel's "last" slot, while it waits for its ack.</summary>
    public ulong? PendingRelease { get; private set; }

    public PlugBarrierOutcome Barrier(ulong epoch)
    {
        if (_lastBarrier is { } last && epoch <= last)
        {
            throw new ArgumentOutOfRangeException(nameof(epoch), epoch, $"Barriers must increase; the last one was {last}.");
        }

        _lastBarrier = epoch;
        if (!Holding)
        {
            // Passing through counts nothing, so the epoch this closes is
            // empty: nothing to release later, and "last" stays free.
            var settled = StartHolding();
            Holding = true;
            return settled ? PlugBarrierOutcome.HoldingStarted : PlugBarrierOutcome.HoldingStartedUnsettled;
        }

        if (PendingRelease is not null)
        {
            return PlugBarrierOutcome.Coalesced;
        }

        _send(PlugAction.Buffer);
        PendingRelease = epoch;
        return PlugBarrierOutcome.EpochClosed;
    }

    /// <summary>The ack of <paramref name="epoch"/>; returns the barrier whose kernel epoch it let out, if any.</summary>
    public ulong? Release(ulong epoch)
    {
        if (PendingRelease is not { } pending || epoch < pending)
        {
            return null;
        }

        _send(PlugAction.ReleaseOne);
        PendingRelease = null;
        return pending;
    }

    /// <summary>TCQ_PLUG_RELEASE_INDEFINITE: everything out, pass through until the next barrier. False when not holding.</summary>
    public bool ReleaseAll()
    {
        if (!Holding)
        {
            return false;
        }

        _send(PlugAction.ReleaseIndefinite);
        Holding = false;
        PendingRelease = null;
        _lastBarrier = null;
        return true;
    }

    /// <summary>
    /// From pass-through to holding. A packet still queued in the plug when
    /// BUFFER throttles it was enqueued while passing through, so no epoch
    /// counts it: it would sit at the head of the queue, and every release
    /// would let it out in place of the last packet of the epoch being
    /// released, leaving that many packets one release behind for good (for
    /// ever, if the guest then goes quiet). The guest is stopped during a
    /// barrier, so every packet anywhere was sent before it and may go out:
    /// if the queue is not empty right after BUFFER, let it all out and try
    /// again, for a bounded time.
    /// </summary>
    private bool StartHolding()
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(_settleTimeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            _send(PlugAction.Buffer);
            if (_queueLength() == 0)
            {
                return true;
            }

            if (Stopwatch.GetTimestamp() >= deadline)
            {
                return false;
            }

            _send(PlugAction.ReleaseIndefinite);
            Thread.Sleep(SettlePause);
        }
    }
}
