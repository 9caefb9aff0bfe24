using McGrpc.Primary.Output;
using McGrpc.Protos.Control;
using McGrpc.Shared.Hosting;

namespace McGrpc.Primary.Engine;

internal sealed partial class PrimaryEngine
{
    public const string CapabilityMc = "mc";
    public const string CapabilityNetDisable = "mc-net-disable";
    public const string CapabilityDiskDisable = "mc-disk-disable";

    private static readonly Dictionary<string, string> CapabilityDescriptions = new()
    {
        [CapabilityMc] = "micro-checkpointing: Migrate starts continuous protection (off by default, as in QEMU)",
        [CapabilityNetDisable] = "do not hold the guest's network output until its checkpoint is acked (for measuring only: a failover can then contradict what clients saw)",
        [CapabilityDiskDisable] = "do not protect disks: allows protecting a VM with a writable disk, which is only safe when both hosts share the disk image",
    };

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

    public async Task SetCapabilityAsync(string name, bool enabled, CancellationToken cancellationToken)
    {
        IOutputBuffer? output = null;
        bool startOutput = false;
        lock (_lock)
        {
            var protecting = _protection is not null;
            switch (name)
            {
                case CapabilityMc:
                    if (!enabled && protecting)
                    {
                        throw new ControlException(ControlErrorKind.FailedPrecondition, "Protection is running; call Cancel to stop it, then turn mc off.");
                    }

                    _mc = enabled;
                    break;
                case CapabilityNetDisable:
                    if (_netDisable != enabled && protecting)
                    {
                        output = _output;
                        startOutput = !enabled;
                    }

                    _netDisable = enabled;
                    break;
                case CapabilityDiskDisable:
                    if (!enabled && protecting && _vm.WritableDisks.Count > 0)
                    {
                        throw new ControlException(ControlErrorKind.FailedPrecondition, $"The protected VM has writable disks ({string.Join(", ", _vm.WritableDisks)}); mc-disk-disable cannot be turned off while protecting it.");
                    }

                    _diskDisable = enabled;
                    break;
                default:
                    throw new ControlException(ControlErrorKind.InvalidArgument, $"Unknown capability '{name}'; known: {string.Join(", ", CapabilityDescriptions.Keys)}.");
            }
        }

        PrimaryLog.ControlChange(_logger, $"capability {name} {(enabled ? "on" : "off")}");
        if (output is not null)
        {
            if (startOutput)
            {
                await output.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await output.ReleaseAllAndStopAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        Changed?.Invoke();
    }

    public void SetDelay(uint delayMs)
    {
        if (delayMs is < 1 or > 60000)
        {
            throw new ControlException(ControlErrorKind.InvalidArgument, $"Delay must be 1..60000 ms, not {delayMs}.");
        }

        _delayMs = (int)delayMs;
        PrimaryLog.ControlChange(_logger, $"checkpoint delay {delayMs} ms");
        Changed?.Invoke();
    }

    public void Migrate(string target)
    {
        if (!ReplicationTarget.TryParse(target, out var parsed, out var error))
        {
            throw new ControlException(ControlErrorKind.InvalidArgument, error);
        }

        lock (_lock)
        {
            if (_state is PrimaryState.Starting or PrimaryState.Failed or PrimaryState.Fenced)
            {
                throw new ControlException(ControlErrorKind.FailedPrecondition, $"The daemon is {_state.ToString().ToLowerInvariant()} ({_stateReason}); it cannot protect now.");
            }

            if (!_mc)
            {
                throw new ControlException(ControlErrorKind.FailedPrecondition, "Capability mc is off: turn it on first (SetCapability name=mc enabled=true).");
            }

            if (_protection is not null)
            {
                throw new ControlException(ControlErrorKind.FailedPrecondition, $"Already protecting to {_target} (state {_state.ToString().ToLowerInvariant()}); Cancel first.");
            }

            if (_vm.WritableDisks.Count > 0 && !_diskDisable)
            {
                throw new ControlException(
                    ControlErrorKind.FailedPrecondition,
                    $"The VM has writable disks ({string.Join(", ", _vm.WritableDisks)}) and McGrpc does not replicate disks yet. The only safe setup is a disk image on storage shared by both hosts; then turn on mc-disk-disable to protect this VM.");
            }

            // Reserve the session now so a second Migrate is refused before the loop picks this one up.
            _protection = new CancellationTokenSource();
            _target = parsed!.ToString();
            _protectRequests.Writer.TryWrite(new ProtectRequest(parsed, _protection));
        }

        PrimaryLog.ControlChange(_logger, $"migrate {parsed}");
    }

    public void Cancel()
    {
        CancellationTokenSource? protection;
        lock (_lock)
        {
            protection = _protection;
            if (protection is null)
            {
                throw new ControlException(ControlErrorKind.FailedPrecondition, "Not protecting; nothing to cancel.");
            }
        }

        PrimaryLog.ControlChange(_logger, "cancel");
        protection.Cancel();
    }

    public PrimaryStatus GetStatus()
    {
        var status = new PrimaryStatus();
        lock (_lock)
        {
            status.State = _state.ToString().ToLowerInvariant();
            status.StateReason = _stateReason;
            status.StateSinceUnixMs = _stateSinceUnixMs;
            status.VmId = _vm.VmId;
            status.Target = _target ?? string.Empty;
            status.Epoch = _nextEpoch == 0 ? 0 : _nextEpoch - 1;
            status.LastAckedEpoch = _window.HasAcked ? _window.LastAcked : 0;
            status.EpochsInFlight = (uint)_window.Count;
            status.DelayMs = (uint)_delayMs;
            status.Tracker = _tracker?.Name ?? string.Empty;
            status.TrackerReason = _trackerReason;
            status.OutputBuffer = _netDisable ? "none (mc-net-disable)" : _output?.Name ?? "none";
            status.DigestMode = _options.DigestMode;
            if (_output is not null)
            {
                var held = _output.Stats;
                status.HeldOutputPackets = (ulong)held.HeldPackets;
                status.HeldOutputBytes = (ulong)held.HeldBytes;
            }
        }

        status.Capabilities.AddRange(GetCapabilities());
        status.Stats = _stats.ToProto();
        if (_stats.SyncProgress() is { } sync)
        {
            status.Sync = sync;
        }

        return status;
    }
}
