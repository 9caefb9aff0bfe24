namespace McGrpc.Primary.Output;

/// <summary>What a barrier did to the plug (see <see cref="PlugEpochDriver"/>).</summary>
internal enum PlugBarrierOutcome
{
    /// <summary>The plug passed through until now and holds from here on, with an empty queue.</summary>
    HoldingStarted,

    /// <summary>
    /// Holds from here on, but packets queued while it passed through would
    /// not drain in time; they are let out one release late (never early).
    /// </summary>
    HoldingStartedUnsettled,

    /// <summary>TCQ_PLUG_BUFFER closed a kernel epoch; the ack of this barrier lets it out.</summary>
    EpochClosed,

    /// <summary>The kernel's one closed-epoch slot is taken; this barrier's output joins the next kernel epoch.</summary>
    Coalesced,
}
