using McGrpc.Primary.Output;

namespace McGrpc.Primary.Engine;

internal sealed partial class PrimaryEngine
{
    /// <summary>
    /// The output buffer for one protection session, behind a
    /// <see cref="GatedOutputBuffer"/> that keeps the engine's contract
    /// (mc-net-disable, release-all, re-arming) the same for every back end.
    /// Attached here already, before the backup is contacted, so that a back
    /// end that cannot work on this host (sch_plug missing, vhost-net, no NIC)
    /// stops the protection with its own message and nothing sent; unless
    /// mc-net-disable is on, in which case it attaches when that is turned off.
    /// "auto" is userspace when a guest NIC has a backend, none otherwise.
    /// </summary>
    private async Task<IOutputBuffer?> CreateOutputBufferAsync(CancellationToken cancellationToken)
    {
        var logger = _loggerFactory.CreateLogger("McGrpc.Primary.Output");
        IOutputBuffer inner;
        switch (_options.OutputBuffer)
        {
            case "none":
                OutputSelectionLog.Chosen(logger, "none", "--output-buffer none: the guest's output is NOT held; a failover can contradict what clients saw");
                return null;
            case "auto" or "userspace":
                if (_options.OutputBuffer == "userspace")
                {
                    OutputSelectionLog.Chosen(logger, "userspace", "--output-buffer userspace");
                }
                else if (await QemuNetworkInfo.FindNicNetdevsAsync(_qmp!, cancellationToken).ConfigureAwait(false) is { Count: > 0 } netdevs)
                {
                    OutputSelectionLog.Chosen(logger, "userspace", $"auto: the VM sends through {string.Join(", ", netdevs.Select(n => $"{n.Id} ({n.Type}, NIC {n.Nic})"))}");
                }
                else
                {
                    OutputSelectionLog.NoNic(logger);
                    return null;
                }

                inner = new UserspaceOutputBuffer(_qmp!, _options.Output.Userspace, _loggerFactory.CreateLogger<UserspaceOutputBuffer>());
                break;
            case "kernel":
                OutputSelectionLog.Chosen(logger, "kernel", "--output-buffer kernel");
                inner = new KernelPlugOutputBuffer(_options.Output.Kernel, _loggerFactory.CreateLogger<KernelPlugOutputBuffer>());
                break;
            default:
                throw new ControlException(ControlErrorKind.FailedPrecondition, $"Output buffer '{_options.OutputBuffer}' is not available in this build.");
        }

        var output = new GatedOutputBuffer(inner);
        bool netDisable;
        lock (_lock)
        {
            netDisable = _netDisable;
        }

        if (netDisable)
        {
            OutputSelectionLog.DeferredByNetDisable(logger, inner.Name);
            return output;
        }

        try
        {
            await output.AttachAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await output.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return output;
    }
}
