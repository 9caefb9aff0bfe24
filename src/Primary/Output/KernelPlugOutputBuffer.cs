using McGrpc.Shared.Native;
using McGrpc.Shared.Native.Netlink;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace McGrpc.Primary.Output;

/// <summary>
/// Output commit the way the original micro-checkpointing did it: the guest
/// tap's ingress is redirected to an IFB device whose root qdisc is a
/// <c>plug</c>, driven over rtnetlink. Barrier sends TCQ_PLUG_BUFFER,
/// the ack sends TCQ_PLUG_RELEASE_ONE (see <see cref="PlugEpochDriver"/> for
/// why not one per barrier), release-all sends TCQ_PLUG_RELEASE_INDEFINITE.
/// Packets never pass through this process, so it works with vhost-net.
/// <para>
/// Packets the guest sent just before a stop can still be on their way
/// through the host's softirq backlog when the barrier's BUFFER lands; they
/// are then counted in the next epoch, i.e. held longer, which is the safe
/// direction. Nothing the guest sends after a stop can be counted in an
/// earlier epoch, because the guest is stopped while the barrier is sent.
/// </para>
/// </summary>
internal sealed class KernelPlugOutputBuffer : IOutputBuffer
{
    /// <summary>The plug's handle, "1:".</summary>
    public const uint PlugHandle = 0x0001_0000;

    private static readonly TimeSpan DrainPollInterval = TimeSpan.FromMilliseconds(10);

    private readonly KernelOutputBufferOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly PlugEpochDriver _driver;
    private RtnetlinkClient? _client;
    private KernelHostSetup? _setup;
    private NetDevice? _ifb;
    private State _state;
    private Exception? _fault;
    private OutputBufferStats _lastStats;
    private uint _lastDrops;

    public KernelPlugOutputBuffer(KernelOutputBufferOptions options, ILogger<KernelPlugOutputBuffer> logger)
    {
        var validation = new KernelOutputBufferOptionsValidator().Validate(null, options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(KernelOutputBufferOptions.SectionName, typeof(KernelOutputBufferOptions), validation.Failures);
        }

        _options = options;
        _logger = logger;
        _driver = new PlugEpochDriver(Send, ReadQueueLength);
    }

    private enum State
    {
        Created,
        Attached,
        Faulted,
        Disposed,
    }

    public string Name => "kernel";

    /// <summary>
    /// Read from the plug's own counters: held = its queue now, released =
    /// everything it has sent since attach (including pass-through traffic).
    /// </summary>
    public OutputBufferStats Stats
    {
        get
        {
            lock (_gate)
            {
                if (_state == State.Attached)
                {
                    TryRefreshStats();
                }

                return _lastStats;
            }
        }
    }

    /// <summary>Plug drops since attach (packets that arrived with the queue at its limit).</summary>
    public long Drops
    {
        get
        {
            lock (_gate)
            {
                return _lastDrops;
            }
        }
    }

    /// <summary>
    /// Installs the plug (passing through) on the IFB, after checking or
    /// creating the IFB and the tap's redirect. Fails with a
    /// <see cref="KernelOutputBufferException"/> saying what is missing, and
    /// then leaves nothing behind that it created.
    /// </summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            if (_state != State.Created)
            {
                throw new InvalidOperationException($"The kernel output buffer was already started (state {_state}).");
            }

            var client = OpenClient();
            var setup = new KernelHostSetup(client, _options, _logger);
            var plugInstalled = false;
            NetDevice? ifb = null;
            try
            {
                ifb = setup.PrepareIfb();
                cancellationToken.ThrowIfCancellationRequested();
                ReplaceStalePlug(client, ifb);
                InstallPlug(client, ifb);
                plugInstalled = true;

                // A new plug starts out buffering; the contract is to pass
                // through until the first barrier.
                client.ChangePlugQdisc(ifb, PlugHandle, PlugAction.ReleaseIndefinite);
                cancellationToken.ThrowIfCancellationRequested();
                setup.PrepareRedirect(ifb);
            }
            catch
            {
                setup.RemoveRedirect();
                if (plugInstalled)
                {
                    TryDeletePlug(client, ifb!);
                }

                setup.RemoveIfb();
                client.Dispose();
                throw;
            }

            _client = client;
            _setup = setup;
            _ifb = ifb;
            _state = State.Attached;
            TryRefreshStats();
            KernelOutputLog.Attached(_logger, ifb.Name, TcHandle.Format(PlugHandle), _options.LimitBytes, _options.NetworkNamespace ?? "own");
        }

        return Task.CompletedTask;
    }

    public void Barrier(ulong epoch)
    {
        lock (_gate)
        {
            EnsureAttached();
            var pending = _driver.PendingRelease;
            var ifb = _ifb!.Name;
            switch (Guard(() => _driver.Barrier(epoch)))
            {
                case PlugBarrierOutcome.HoldingStarted:
                    KernelOutputLog.HoldingStarted(_logger, epoch, ifb);
                    break;
                case PlugBarrierOutcome.HoldingStartedUnsettled:
                    KernelOutputLog.HoldingStartedUnsettled(_logger, epoch, ifb, PlugEpochDriver.DefaultSettleTimeout);
                    break;
                case PlugBarrierOutcome.EpochClosed:
                    KernelOutputLog.BarrierSent(_logger, epoch, ifb);
                    break;
                case PlugBarrierOutcome.Coalesced:
                    KernelOutputLog.BarrierCoalesced(_logger, epoch, pending ?? 0);
                    break;
            }
        }
    }

    public void Release(ulong epoch)
    {
        lock (_gate)
        {
            EnsureAttached();
            if (Guard(() => _driver.Release(epoch)) is { } kernelEpoch)
            {
                KernelOutputLog.Released(_logger, epoch, kernelEpoch, _ifb!.Name);
                TryRefreshStats();
            }
        }
    }

    public Task ReleaseAllAndStopAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_state != State.Attached)
            {
                return _state == State.Faulted ? Task.FromException(FaultedException()) : Task.CompletedTask;
            }

            if (Guard(_driver.ReleaseAll))
            {
                KernelOutputLog.ReleasedAll(_logger, _ifb!.Name);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Detaches. If output is still held (no release-all since the last
    /// barrier), the plug and the redirect stay exactly as they are: letting
    /// unacked output out here could contradict a backup that takes over. If
    /// nothing is held, removes the redirect it created, waits for the plug to
    /// drain, removes the plug and the IFB it created.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        RtnetlinkClient? client;
        KernelHostSetup? setup;
        NetDevice? ifb;
        bool holding;
        lock (_gate)
        {
            if (_state == State.Disposed)
            {
                return;
            }

            client = _client;
            setup = _setup;
            ifb = _ifb;
            holding = _driver.Holding || _state == State.Faulted;
            _state = State.Disposed;
            _client = null;
        }

        if (client is null || setup is null || ifb is null)
        {
            return;
        }

        try
        {
            if (holding)
            {
                KernelOutputLog.LeftHolding(_logger, ifb.Name);
                return;
            }

            setup.RemoveRedirect();
            await DrainAsync(client, ifb).ConfigureAwait(false);
            TryDeletePlug(client, ifb);
            setup.RemoveIfb();
            KernelOutputLog.Detached(_logger, ifb.Name);
        }
        finally
        {
            client.Dispose();
        }
    }

    private static string KernelRelease()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
            return Environment.OSVersion.VersionString;
        }
    }

    private RtnetlinkClient OpenClient()
    {
        if (_options.NetworkNamespace is not { } name)
        {
            return RtnetlinkClient.Open(timeout: _options.NetlinkTimeout);
        }

        using var networkNamespace = NetworkNamespace.Open(name);
        return RtnetlinkClient.Open(networkNamespace, _options.NetlinkTimeout);
    }

    private void ReplaceStalePlug(RtnetlinkClient client, NetDevice ifb)
    {
        // Creating over a plug with the same handle would only change its
        // limit and keep its old state, so an earlier run's plug goes first.
        if (client.FindRootQdisc(ifb) is { Kind: PlugQdisc.Kind } stale)
        {
            KernelOutputLog.StalePlugReplaced(_logger, ifb.Name, stale.Stats.QueueLength);
            client.DeleteQdisc(ifb, TcHandle.Root, stale.Handle, PlugQdisc.Kind);
        }
    }

    private void InstallPlug(RtnetlinkClient client, NetDevice ifb)
    {
        try
        {
            client.CreatePlugQdisc(ifb, PlugHandle, _options.LimitBytes);
        }
        catch (NetlinkException exception) when (exception.Errno == Errors.ENOENT)
        {
            var release = KernelRelease();
            KernelOutputLog.PlugUnavailable(_logger, release, exception);
            var modules = File.Exists("/proc/modules")
                ? "Load it with `modprobe sch_plug` (kernel option CONFIG_NET_SCH_PLUG)"
                : "This kernel cannot load modules (no CONFIG_MODULES), so it needs a build with CONFIG_NET_SCH_PLUG=y";
            throw new KernelOutputBufferException(
                $"sch_plug is not available in this kernel (Linux {release}): adding the plug qdisc to {ifb.Name} failed with "
                + $"{Errors.Name(exception.Errno)}{(exception.KernelMessage is { } text ? $" (\"{text}\")" : string.Empty)}. "
                + $"{modules}, or use the userspace output buffer (back end \"userspace\"), which needs no kernel support.",
                exception);
        }
    }

    private void TryDeletePlug(RtnetlinkClient client, NetDevice ifb)
    {
        try
        {
            client.DeleteQdisc(ifb, TcHandle.Root, PlugHandle, PlugQdisc.Kind);
        }
        catch (NetlinkException exception) when (exception.Errno is Errors.ENODEV or Errors.ENOENT)
        {
            // The IFB is gone, and the plug with it.
        }
        catch (NetlinkException exception)
        {
            KernelOutputLog.RemoveFailed(_logger, $"plug qdisc on {ifb.Name}", exception);
        }
    }

    private async Task DrainAsync(RtnetlinkClient client, NetDevice ifb)
    {
        var deadline = DateTime.UtcNow + _options.DrainTimeout;
        while (true)
        {
            QdiscInfo plug;
            try
            {
                plug = client.GetQdisc(ifb, TcHandle.Root, PlugHandle);
            }
            catch (NetlinkException)
            {
                return; // gone already; nothing to wait for
            }

            if (plug.Stats.QueueLength == 0)
            {
                return;
            }

            if (DateTime.UtcNow >= deadline)
            {
                KernelOutputLog.DrainTimedOut(_logger, ifb.Name, plug.Stats.QueueLength, plug.Stats.Backlog, _options.DrainTimeout);
                return;
            }

            await Task.Delay(DrainPollInterval).ConfigureAwait(false);
        }
    }

    private void Send(PlugAction action) => _client!.ChangePlugQdisc(_ifb!, PlugHandle, action);

    private uint ReadQueueLength() => _client!.GetQdisc(_ifb!, TcHandle.Root, PlugHandle).Stats.QueueLength;

    private T Guard<T>(Func<T> call)
    {
        try
        {
            return call();
        }
        catch (NetlinkException exception)
        {
            // The plug's counters and ours may now disagree; going on could
            // release the wrong packets, so every later call fails too.
            _state = State.Faulted;
            _fault = exception;
            KernelOutputLog.Faulted(_logger, exception);
            throw;
        }
    }

    private void TryRefreshStats()
    {
        try
        {
            var stats = _client!.GetQdisc(_ifb!, TcHandle.Root, PlugHandle).Stats;
            _lastStats = new OutputBufferStats(stats.QueueLength, stats.Backlog, (long)stats.Packets, (long)stats.Bytes, stats.Drops);

            // The plug was created at attach, so its drop counter started at 0 then.
            if (stats.Drops > _lastDrops)
            {
                KernelOutputLog.PacketsDropped(_logger, _ifb!.Name, stats.Drops - _lastDrops, _options.LimitBytes, stats.Drops);
            }

            _lastDrops = stats.Drops;
        }
        catch (NetlinkException exception)
        {
            KernelOutputLog.StatsFailed(_logger, _ifb!.Name, exception);
        }
    }

    private void EnsureAttached()
    {
        switch (_state)
        {
            case State.Attached:
                return;
            case State.Faulted:
                throw FaultedException();
            case State.Disposed:
                throw new ObjectDisposedException(nameof(KernelPlugOutputBuffer));
            default:
                throw new InvalidOperationException("The kernel output buffer is not started.");
        }
    }

    private KernelOutputBufferException FaultedException() =>
        new($"The kernel output buffer on {_ifb?.Name} failed earlier and holds whatever it held then: {_fault?.Message}", _fault);
}
