using System.Diagnostics;
using McGrpc.Primary.Output;
using McGrpc.Protos.Control;
using McGrpc.Shared.Hosting;

namespace McGrpc.Primary.Engine;

/// <summary>
/// What the control API can do to the engine. Every refusal is a
/// <see cref="ControlException"/> thrown before anything changed.
/// </summary>
internal sealed partial class PrimaryEngine
{
    public const string CapabilityMc = "mc";
    public const string CapabilityNetDisable = "mc-net-disable";
    public const string CapabilityDiskDisable = "mc-disk-disable";
    public const int MinDelayMs = 1;
    public const int MaxDelayMs = 60000;

    /// <summary>How long Cancel waits for the session to wind down (goodbye sent, output released) before it answers anyway.</summary>
    private static readonly TimeSpan CancelWait = TimeSpan.FromSeconds(15);

    private static readonly Dictionary<string, string> CapabilityDescriptions = new(StringComparer.Ordinal)
    {
        [CapabilityMc] = "micro-checkpointing: Migrate starts continuous protection (off by default, as in QEMU)",
        [CapabilityNetDisable] = "do not hold the guest's network output until its checkpoint is acked (for measuring only: a failover can then contradict what clients saw)",
        [CapabilityDiskDisable] = "do not protect disks: allows protecting a VM with a writable disk, which is only safe when both hosts share the disk image",
    };

    // Capability changes that start or stop the output buffer await it; one at a time.
    private readonly SemaphoreSlim _capabilityGate = new(1, 1);
    private TaskCompletionSource _delayChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyList<Capability> GetCapabilities()
    {
        lock (_lock)
        {
            return
            [
                new Capability { Name = CapabilityMc, Enabled = _mc, Description = CapabilityDescriptions[CapabilityMc] },
                new Capability { Name = CapabilityNetDisable, Enabled = _netDisable, Description = CapabilityDescriptions[CapabilityNetDisable] },
                new Capability { Name = CapabilityDiskDisable, Enabled = _diskDisable, Description = CapabilityDescriptions[CapabilityDiskDisable] },
            ];
        }
    }

    /// <summary>
    /// Turns a capability on or off. mc-net-disable takes effect at once while
    /// protecting: on releases everything held and stops holding; off holds
    /// output again from the next checkpoint on.
    /// </summary>
    public async Task SetCapabilityAsync(string name, bool enabled, CancellationToken cancellationToken)
    {
        if (!CapabilityDescriptions.ContainsKey(name))
        {
            throw new ControlException(ControlErrorKind.InvalidArgument, $"Unknown capability '{name}'; known: {string.Join(", ", CapabilityDescriptions.Keys)}.");
        }

        await _capabilityGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            IOutputBuffer? output = null;
            bool previous;
            lock (_lock)
            {
                var protecting = _protection is not null;
                switch (name)
                {
                    case CapabilityMc:
                        if (!enabled && protecting)
                        {
                            throw new ControlException(ControlErrorKind.FailedPrecondition, $"Protection is running (state {StateName(_state)}); call Cancel to stop it, then turn mc off.");
                        }

                        previous = _mc;
                        _mc = enabled;
                        break;
                    case CapabilityNetDisable:
                        previous = _netDisable;
                        // Only while output is being held: before the initial copy the copy
                        // starts it, and when running unprotected it stays released until
                        // the backup is back.
                        if (previous != enabled && _state is PrimaryState.Syncing or PrimaryState.Protected or PrimaryState.Degraded)
                        {
                            output = _output;
                        }

                        _netDisable = enabled;
                        break;
                    default:
                        if (!enabled && protecting && _vm.WritableDisks.Count > 0)
                        {
                            throw new ControlException(ControlErrorKind.FailedPrecondition, $"The protected VM has writable disks ({string.Join(", ", _vm.WritableDisks)}); mc-disk-disable cannot be turned off while protecting it. Call Cancel first.");
                        }

                        previous = _diskDisable;
                        _diskDisable = enabled;
                        break;
                }
            }

            if (output is not null)
            {
                try
                {
                    // Not the caller's token: a client that goes away must not leave the buffer half switched.
                    if (enabled)
                    {
                        await output.ReleaseAllAndStopAsync(CancellationToken.None).ConfigureAwait(false);
                    }
                    else
                    {
                        await output.StartAsync(CancellationToken.None).ConfigureAwait(false);
                    }
                }
                catch
                {
                    lock (_lock)
                    {
                        _netDisable = previous;
                    }

                    throw;
                }
            }

            if (previous != enabled)
            {
                PrimaryLog.ControlChange(_logger, $"capability {name} {(enabled ? "on" : "off")}");
                _stats.SetCapability(name, enabled);
                Changed?.Invoke();
            }
        }
        finally
        {
            _capabilityGate.Release();
        }
    }

    /// <summary>
    /// Sets the checkpoint delay. It counts from the last stop, also for the
    /// wait in progress: shortening it from 60 s to 100 ms does not leave the
    /// next checkpoint a minute away.
    /// </summary>
    public void SetDelay(uint delayMs)
    {
        if (delayMs is < MinDelayMs or > MaxDelayMs)
        {
            throw new ControlException(ControlErrorKind.InvalidArgument, $"delay_ms must be {MinDelayMs}..{MaxDelayMs} ms, not {delayMs}.");
        }

        TaskCompletionSource changed;
        int previous;
        lock (_lock)
        {
            previous = _delayMs;
            _delayMs = (int)delayMs;
            changed = _delayChanged;
            _delayChanged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
        if (previous != (int)delayMs)
        {
            PrimaryLog.ControlChange(_logger, $"checkpoint delay {delayMs} ms (was {previous} ms)");
            _stats.SetDelay((int)delayMs);
            Changed?.Invoke();
        }
    }

    /// <summary>Starts protection towards <paramref name="target"/>, as QEMU's <c>migrate tcp:HOST:PORT</c> with capability mc did.</summary>
    public void Migrate(string target)
    {
        if (!ReplicationTarget.TryParse(target, out var parsed, out var error))
        {
            throw new ControlException(ControlErrorKind.InvalidArgument, error);
        }

        if (_tls.TargetProblem(parsed!) is { } problem)
        {
            throw new ControlException(ControlErrorKind.InvalidArgument, problem);
        }

        PrimaryState previous;
        string reason;
        lock (_lock)
        {
            if (_state is PrimaryState.Starting or PrimaryState.Failed or PrimaryState.Fenced)
            {
                throw new ControlException(ControlErrorKind.FailedPrecondition, $"The daemon is {StateName(_state)} ({_stateReason}); it cannot protect now.");
            }

            if (_protection is not null)
            {
                throw new ControlException(ControlErrorKind.FailedPrecondition, $"Already protecting to {_target} (state {StateName(_state)}); call Cancel first.");
            }

            if (!_mc)
            {
                throw new ControlException(ControlErrorKind.FailedPrecondition, "Capability mc is off: turn it on first (SetCapability name=mc enabled=true), then Migrate.");
            }

            if (_vm.WritableDisks.Count > 0 && !_diskDisable)
            {
                throw new ControlException(
                    ControlErrorKind.FailedPrecondition,
                    $"The VM has writable disks ({string.Join(", ", _vm.WritableDisks)}) and McGrpc does not replicate disks yet: after a failover such a disk would not match the checkpointed memory. "
                    + "Until disk replication exists, the only safe disk is one on storage shared by both hosts: put the image there, then turn on mc-disk-disable (SetCapability name=mc-disk-disable enabled=true) and Migrate again.");
            }

            // Reserve the session now so a second Migrate is refused before the loop picks this one up.
            _protection = new CancellationTokenSource();
            _target = parsed!.ToString();

            // The state says so before this call returns; set under the lock, so the
            // session's own transitions (which take the lock) come after it.
            previous = _state;
            reason = $"starting protection to {_target}";
            _state = PrimaryState.Connecting;
            _stateReason = reason;
            _stateSinceUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            _protectRequests.Writer.TryWrite(new ProtectRequest(parsed, _protection));
        }

        PrimaryLog.ControlChange(_logger, $"migrate {parsed}");
        PrimaryLog.StateChanged(_logger, previous, PrimaryState.Connecting, reason);
        _stats.SetState(PrimaryState.Connecting);
        Changed?.Invoke();
    }

    /// <summary>
    /// Stops protection: the backup gets a goodbye (it waits, it does not fail
    /// over), held output is released and the VM runs on unprotected. Returns
    /// once the session has ended, or after <see cref="CancelWait"/>.
    /// </summary>
    public async Task CancelAsync(CancellationToken cancellationToken)
    {
        CancellationTokenSource? protection;
        lock (_lock)
        {
            protection = _protection;
            if (protection is null)
            {
                throw new ControlException(ControlErrorKind.FailedPrecondition, $"Not protecting (state {StateName(_state)}); nothing to cancel.");
            }
        }

        PrimaryLog.ControlChange(_logger, "cancel");
        try
        {
            protection.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The session ended by itself between the check and here.
        }

        await WaitUntilAsync(ProtectionEnded, CancelWait, cancellationToken).ConfigureAwait(false);
    }

    public PrimaryStatus GetStatus()
    {
        var status = new PrimaryStatus();
        IOutputBuffer? output;
        lock (_lock)
        {
            status.State = StateName(_state);
            status.StateReason = _stateReason;
            status.StateSinceUnixMs = _stateSinceUnixMs;
            status.VmId = _vm.VmId;
            status.Target = _target ?? string.Empty;
            status.ReplicationTls = _tls.ReplicationTls;
            status.Epoch = _nextEpoch == 0 ? 0 : _nextEpoch - 1;
            status.LastAckedEpoch = _window.HasAcked ? _window.LastAcked : 0;
            status.EpochsInFlight = (uint)_window.Count;
            status.DelayMs = (uint)_delayMs;
            status.Tracker = _tracker?.Name ?? string.Empty;
            status.TrackerReason = _trackerReason;
            status.OutputBuffer = _netDisable ? "none (mc-net-disable)" : _output?.Name ?? "none";
            status.DigestMode = _options.DigestMode;
            output = _output;
        }

        // Outside the lock: the kernel back end reads its counters over netlink,
        // and the epoch loop takes this lock inside the guest's pause.
        if (output is not null)
        {
            var held = output.Stats;
            status.HeldOutputPackets = (ulong)held.HeldPackets;
            status.HeldOutputBytes = (ulong)held.HeldBytes;
        }

        status.Capabilities.AddRange(GetCapabilities());
        status.Stats = _stats.ToProto();
        if (_stats.SyncProgress() is { } sync)
        {
            status.Sync = sync;
        }

        return status;
    }

    /// <summary>The state as status shows it.</summary>
    public static string StateName(PrimaryState state) => state.ToString().ToLowerInvariant();

    /// <summary>
    /// Waits until the checkpoint delay has passed since the last stop, the
    /// stream ended, or the caller gave up. A SetMcDelay during the wait
    /// counts at once.
    /// </summary>
    private async Task WaitForNextStopAsync(Task linkCompletion, CancellationToken cancellationToken)
    {
        while (!linkCompletion.IsCompleted && !cancellationToken.IsCancellationRequested)
        {
            Task delayChanged;
            lock (_lock)
            {
                delayChanged = _delayChanged.Task;
            }

            var due = _lastStopTimestamp + (long)(_delayMs * (Stopwatch.Frequency / 1000.0));
            var wait = Ms(Stopwatch.GetTimestamp(), due);
            if (wait <= 0.5)
            {
                return;
            }

            // Timers have millisecond ticks and may fire a little early: round
            // up, and look at the clock again rather than trust the timer.
            using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var elapsed = Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(wait)), timer.Token);
            await Task.WhenAny(elapsed, linkCompletion, delayChanged).ConfigureAwait(false);
            await timer.CancelAsync().ConfigureAwait(false);
        }
    }

    private bool ProtectionEnded()
    {
        lock (_lock)
        {
            return _protection is null
                && _state is not (PrimaryState.Connecting or PrimaryState.Syncing or PrimaryState.Protected or PrimaryState.Degraded or PrimaryState.Unprotected);
        }
    }

    /// <summary>Waits for <paramref name="condition"/>, woken by <see cref="Changed"/> and re-checked at least every 100 ms.</summary>
    private async Task<bool> WaitUntilAsync(Func<bool> condition, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var signal = new ChangeSignal(this);
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (!condition())
        {
            var left = Ms(Stopwatch.GetTimestamp(), deadline);
            if (left <= 0)
            {
                return false;
            }

            await signal.WaitAsync(TimeSpan.FromMilliseconds(Math.Min(100, left)), cancellationToken).ConfigureAwait(false);
        }

        return true;
    }
}
