using System.Diagnostics;
using System.Text.Json;
using McGrpc.Shared;
using McGrpc.Shared.Qmp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace McGrpc.Primary.Output;

/// <summary>
/// Output commit inside mc-primary: QEMU hands every packet the guest sends
/// to this process (a capture filter-redirector per netdev), which holds it
/// per epoch in memory (<see cref="EpochHoldQueue"/>) and hands it back to
/// QEMU (an inject filter-redirector) when the checkpoint that covers it is
/// acked. Works with any netdev QEMU itself moves packets for (tap, user,
/// socket...), not with vhost-net.
/// <para>
/// A barrier is exact because the guest is stopped while it is called:
/// every packet read by then was sent before the stop. Packets sent before
/// the stop but still in the socket are read afterwards and counted in the
/// next epoch, which only holds them longer.
/// </para>
/// <para>
/// If this process dies, QEMU keeps the capture filters on closed connections
/// and drops the guest's output from then on, so nothing unacked can leak;
/// the next mc-primary removes them (see <see cref="StartAsync"/>).
/// </para>
/// </summary>
internal sealed class UserspaceOutputBuffer : IOutputBuffer
{
    private static readonly TimeSpan DropLogInterval = TimeSpan.FromSeconds(1);

    private readonly QmpClient _qmp;
    private readonly UserspaceOutputBufferOptions _options;
    private readonly ILogger _logger;
    private readonly EpochHoldQueue _queue;
    private readonly SemaphoreSlim _qmpGate = new(1, 1);
    private readonly CancellationTokenSource _disposed = new();
    private RedirectorPort[] _ports = [];
    private volatile State _state;
    private volatile bool _portsClosed;
    private long _dropsLogged;
    private long _lastDropLog;
    private int _repairs;

    public UserspaceOutputBuffer(QmpClient qmp, UserspaceOutputBufferOptions options, ILogger<UserspaceOutputBuffer> logger)
    {
        var validation = new UserspaceOutputBufferOptionsValidator().Validate(null, options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(UserspaceOutputBufferOptions.SectionName, typeof(UserspaceOutputBufferOptions), validation.Failures);
        }

        _qmp = qmp;
        _options = options;
        _logger = logger;
        _queue = new EpochHoldQueue(options.MaxHeldBytes, LetOut);
    }

    private enum State
    {
        Created,
        Starting,
        Attached,
        Disposed,
    }

    public string Name => "userspace";

    public OutputBufferStats Stats => _queue.Stats;

    /// <summary>Packets dropped at the memory bound or lost with a broken connection.</summary>
    public (long Packets, long Bytes) Dropped => _queue.Dropped;

    /// <summary>The netdevs being filtered.</summary>
    public IReadOnlyList<QemuNetdev> Netdevs => [.. _ports.Select(p => p.Netdev)];

    /// <summary>How many times broken filters were replaced.</summary>
    public int Repairs => Volatile.Read(ref _repairs);

    /// <summary>The attachments in use now (for tests and diagnostics).</summary>
    internal IReadOnlyList<RedirectorAttachment?> Attachments => [.. _ports.Select(p => p.Current)];

    /// <summary>
    /// Finds the netdevs (every one a NIC sends through, or the configured
    /// ones), adds a fresh inject and capture filter to each, then removes any
    /// mcgrpc- filters and chardevs an earlier mc-primary left (they were
    /// dropping the guest's output); passes output through until the first
    /// barrier. On failure removes what it added and throws a
    /// <see cref="UserspaceOutputBufferException"/> that says why.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_state != State.Created)
        {
            throw new InvalidOperationException($"The userspace output buffer was already started (state {_state}).");
        }

        _state = State.Starting;
        var netdevs = await SelectNetdevsAsync(cancellationToken).ConfigureAwait(false);
        var (staleFilters, staleChardevs) = await FindOursAsync(cancellationToken).ConfigureAwait(false);
        var ports = netdevs.Select((netdev, index) => new RedirectorPort(index, netdev)).ToArray();
        _ports = ports;
        await _qmpGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var port in ports)
            {
                port.Current = await CreateAttachmentAsync(port, cancellationToken).ConfigureAwait(false);
            }

            await RemoveStaleAsync(staleFilters, staleChardevs).ConfigureAwait(false);
            foreach (var port in ports)
            {
                port.Current!.StartWriter();
                UserspaceOutputLog.Attached(_logger, port.Netdev.Id, port.Netdev.Type, port.Netdev.Nic, port.Current.InjectFilterId, port.Current.CaptureFilterId);
            }

            _state = State.Attached;
        }
        catch (Exception exception)
        {
            foreach (var port in ports)
            {
                if (port.Current is { } attachment)
                {
                    await attachment.RemoveAsync(_qmp, TimeSpan.Zero, _logger).ConfigureAwait(false);
                    port.Current = null;
                }
            }

            _state = State.Disposed;
            if (exception is UserspaceOutputBufferException or OperationCanceledException)
            {
                throw;
            }

            if (exception is McGrpcException)
            {
                throw new UserspaceOutputBufferException($"Attaching the userspace output buffer to the guest's network failed: {exception.Message}", exception);
            }

            throw;
        }
        finally
        {
            _qmpGate.Release();
        }
    }

    public void Barrier(ulong epoch)
    {
        _queue.Barrier(epoch);
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            UserspaceOutputLog.Barrier(_logger, epoch, _queue.Stats.HeldPackets);
        }
    }

    public void Release(ulong epoch) => _queue.Release(epoch);

    public Task ReleaseAllAndStopAsync(CancellationToken cancellationToken)
    {
        var released = _queue.ReleaseAll();
        UserspaceOutputLog.ReleasedAll(_logger, released);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Not holding: removes the filters and chardevs, after writing back what
    /// was released; QEMU's networking is as before. Still holding (no
    /// release-all since the last barrier): the held packets were never acked
    /// and must not go out, so they are discarded and the capture filters
    /// stay on closed connections; QEMU drops the guest's output until a new
    /// mc-primary attaches (which removes them), as if this process had died.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_state == State.Disposed)
        {
            return;
        }

        _state = State.Disposed;
        _disposed.Cancel();
        await _qmpGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_queue.Holding)
            {
                foreach (var port in _ports)
                {
                    port.Current?.Abandon();
                }

                var discarded = _queue.DiscardHeld();
                UserspaceOutputLog.LeftFenced(_logger, discarded, string.Join(", ", _ports.Select(p => p.Current?.CaptureFilterId).OfType<string>()));
            }
            else
            {
                foreach (var port in _ports)
                {
                    if (port.Current is { } attachment)
                    {
                        await attachment.RemoveAsync(_qmp, _options.DrainTimeout, _logger).ConfigureAwait(false);
                        UserspaceOutputLog.Detached(_logger, port.Netdev.Id);
                    }
                }
            }

            // Until here the readers of a clean detach were still handing over what QEMU captured last.
            _portsClosed = true;
            foreach (var port in _ports)
            {
                foreach (var packet in port.TakeAll())
                {
                    _queue.Lost(packet);
                }

                port.Dispose();
            }
        }
        finally
        {
            _qmpGate.Release();
        }
    }

    /// <summary>Test seam: closes this process's ends of every connection without QMP, as a crash would.</summary>
    internal void SimulateCrash()
    {
        _state = State.Disposed;
        _portsClosed = true;
        _disposed.Cancel();
        foreach (var port in _ports)
        {
            port.Current?.Abandon();
        }
    }

    private async Task<IReadOnlyList<QemuNetdev>> SelectNetdevsAsync(CancellationToken cancellationToken)
    {
        var found = await QemuNetworkInfo.FindNicNetdevsAsync(_qmp, cancellationToken).ConfigureAwait(false);
        if (_options.NetdevList() is not { } wanted)
        {
            if (found.Count == 0)
            {
                throw new UserspaceOutputBufferException(
                    "The VM has no NIC with a network backend (HMP 'info network' lists none), so there is no output to hold. "
                    + "Use --output-buffer none (or auto, which chooses none for a VM without a NIC).");
            }

            return found;
        }

        var selected = new List<QemuNetdev>();
        foreach (var id in wanted)
        {
            selected.Add(found.FirstOrDefault(n => n.Id == id)
                ?? throw new UserspaceOutputBufferException(
                    $"Output:Userspace:Netdevs names '{id}', but no guest NIC sends through a netdev of that id; QEMU has: {(found.Count == 0 ? "none" : string.Join(", ", found.Select(n => $"{n.Id} ({n.Type}, NIC {n.Nic})")))}."));
        }

        return selected;
    }

    /// <summary>filter-redirectors and chardevs with our prefix: an earlier mc-primary's, or this one's from a broken generation.</summary>
    private async Task<(List<string> Filters, List<string> Chardevs)> FindOursAsync(CancellationToken cancellationToken)
    {
        var filters = (await _qmp.QomListAsync("/objects", cancellationToken).ConfigureAwait(false))
            .Where(p => p.Name.StartsWith(RedirectorAttachment.IdPrefix, StringComparison.Ordinal) && p.Type == "child<filter-redirector>")
            .Select(p => p.Name)
            .ToList();
        var chardevs = new List<string>();
        var result = await _qmp.ExecuteAsync("query-chardev", null, cancellationToken).ConfigureAwait(false);
        foreach (var chardev in result.EnumerateArray())
        {
            if (chardev.TryGetProperty("label"u8, out var label) && label.ValueKind == JsonValueKind.String
                && label.GetString() is { } name && name.StartsWith(RedirectorAttachment.IdPrefix, StringComparison.Ordinal))
            {
                chardevs.Add(name);
            }
        }

        return (filters, chardevs);
    }

    private async Task RemoveStaleAsync(List<string> filters, List<string> chardevs)
    {
        if (filters.Count == 0 && chardevs.Count == 0)
        {
            return;
        }

        // Filters first: a chardev in use by a filter is "busy".
        foreach (var filter in filters)
        {
            await RedirectorAttachment.TryRemoveAsync(_qmp, "object-del", filter, _logger).ConfigureAwait(false);
        }

        foreach (var chardev in chardevs)
        {
            await RedirectorAttachment.TryRemoveAsync(_qmp, "chardev-remove", chardev, _logger).ConfigureAwait(false);
        }

        UserspaceOutputLog.StaleRemoved(_logger, filters.Count, chardevs.Count, string.Join(", ", filters.Concat(chardevs)));
    }

    /// <summary>The hold queue's sink (under its lock): to the netdev's outbox, or nowhere once the ports are gone.</summary>
    private void LetOut(OutputPacket packet)
    {
        var ports = _ports;
        if (_portsClosed || packet.Port >= ports.Length)
        {
            _queue.Lost(packet);
            return;
        }

        ports[packet.Port].Enqueue(packet);
    }

    private Task<RedirectorAttachment> CreateAttachmentAsync(RedirectorPort port, CancellationToken cancellationToken)
        => RedirectorAttachment.CreateAsync(_qmp, port, _options, _queue, OnCaptured, OnBroken, _logger, cancellationToken);

    private void OnCaptured(OutputAddResult result)
    {
        if (result != OutputAddResult.Dropped)
        {
            return;
        }

        var now = Stopwatch.GetTimestamp();
        var last = Interlocked.Read(ref _lastDropLog);
        if (last != 0 && Stopwatch.GetElapsedTime(last, now) < DropLogInterval)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _lastDropLog, now, last) != last)
        {
            return;
        }

        var total = _queue.Dropped.Packets;
        var previous = Interlocked.Exchange(ref _dropsLogged, total);
        UserspaceOutputLog.Dropped(_logger, _queue.Footprint, _options.MaxHeldBytes, total - previous, total);
    }

    /// <summary>A connection of <paramref name="attachment"/> broke while QEMU may live: replace its filters, off the reader/writer thread.</summary>
    private void OnBroken(RedirectorAttachment attachment, string side, Exception? exception)
    {
        if (_disposed.IsCancellationRequested || attachment.Port.Current != attachment)
        {
            return;
        }

        UserspaceOutputLog.ConnectionBroken(_logger, side, attachment.Port.Netdev.Id, exception?.Message ?? "closed by QEMU");
        _ = Task.Run(() => RepairAsync(attachment));
    }

    /// <summary>
    /// Adds a new inject and capture filter at the tail (the new capture sees
    /// the guest's packets from then on), retires the broken generation
    /// (putting back what its writer had not written), and only then lets the
    /// new writer inject: an injected packet passes every filter added
    /// before the inject filter, and the old capture filter must be gone by then.
    /// </summary>
    private async Task RepairAsync(RedirectorAttachment broken)
    {
        var port = broken.Port;
        for (var attempt = 1; ; attempt++)
        {
            if (_disposed.IsCancellationRequested)
            {
                return;
            }

            if (_qmp.Completion.IsCompleted)
            {
                UserspaceOutputLog.QemuGone(_logger, port.Netdev.Id);
                return;
            }

            try
            {
                await _qmpGate.WaitAsync(_disposed.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                if (port.Current != broken)
                {
                    return;
                }

                var replacement = await CreateAttachmentAsync(port, _disposed.Token).ConfigureAwait(false);
                port.Current = replacement;
                await broken.RetireAsync(_qmp, _logger).ConfigureAwait(false);
                replacement.StartWriter();
                Interlocked.Increment(ref _repairs);
                UserspaceOutputLog.Repaired(_logger, port.Netdev.Id, attempt, replacement.InjectFilterId, replacement.CaptureFilterId, port.Pending);
                return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception exception) when (exception is McGrpcException or IOException or System.Net.Sockets.SocketException)
            {
                UserspaceOutputLog.RepairFailed(_logger, port.Netdev.Id, attempt, _options.RepairInterval, exception);
            }
            finally
            {
                _qmpGate.Release();
            }

            try
            {
                await Task.Delay(_options.RepairInterval, _disposed.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
