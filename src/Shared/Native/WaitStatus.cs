namespace McGrpc.Shared.Native;

/// <summary>Decodes the status word of wait4/waitpid for a traced thread.</summary>
internal readonly record struct WaitStatus(int Raw)
{
    public const int Sigtrap = 5;

    /// <summary>PTRACE_EVENT_STOP: the stop that PTRACE_INTERRUPT (or a group stop) produces on a seized thread.</summary>
    public const int PtraceEventStop = 128;

    public bool Exited => (Raw & 0x7f) == 0;

    public bool Signaled => (Raw & 0x7f) != 0 && (Raw & 0x7f) != 0x7f;

    public bool Stopped => (Raw & 0xff) == 0x7f;

    /// <summary>The signal that stopped the thread (valid when <see cref="Stopped"/>).</summary>
    public int StopSignal => (Raw >> 8) & 0xff;

    /// <summary>The PTRACE_EVENT_* of a ptrace event stop, 0 for a signal-delivery stop.</summary>
    public int Event => (Raw >> 16) & 0xff;

    /// <summary>A stop in which the kernel is about to deliver <see cref="StopSignal"/> to the thread.</summary>
    public bool IsSignalDeliveryStop => Stopped && Event == 0;

    public override string ToString() => Stopped
        ? $"stopped by signal {StopSignal}{(Event != 0 ? $" (ptrace event {Event})" : string.Empty)}"
        : Exited ? $"exited with {(Raw >> 8) & 0xff}" : $"killed by signal {Raw & 0x7f}";
}
