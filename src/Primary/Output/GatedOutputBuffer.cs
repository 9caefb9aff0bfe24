namespace McGrpc.Primary.Output;

/// <summary>
/// What the epoch loop expects of any back end, kept in one place: attach
/// once, then "armed" (pass through until the next barrier), "holding" (from
/// that barrier on) and "stopped" (after a release-all: pass through and
/// ignore barriers until the next <see cref="StartAsync"/>). The engine
/// calls Barrier at every stop, also while mc-net-disable is on or after it
/// gave up the backup; the back ends themselves would start holding again at
/// the next barrier. Barrier and Release run under the engine's lock and
/// stay short.
/// </summary>
internal sealed class GatedOutputBuffer : IOutputBuffer
{
    private readonly IOutputBuffer _inner;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _attach = new(1, 1);
    private Mode _mode;

    public GatedOutputBuffer(IOutputBuffer inner)
    {
        _inner = inner;
    }

    /// <summary>Where the buffer is in its life.</summary>
    public enum Mode
    {
        /// <summary>Not attached to the network path yet: barriers are ignored.</summary>
        Detached,

        /// <summary>Attached, passing through, barriers ignored (after a release-all, or attached early).</summary>
        Stopped,

        /// <summary>Passing through; the next barrier starts holding.</summary>
        Armed,

        /// <summary>Holding output until it is acked.</summary>
        Holding,
    }

    public string Name => _inner.Name;

    public OutputBufferStats Stats => _inner.Stats;

    /// <summary>The back end inside.</summary>
    public IOutputBuffer Inner => _inner;

    public Mode Current
    {
        get
        {
            lock (_lock)
            {
                return _mode;
            }
        }
    }

    /// <summary>
    /// Attaches the back end if it is not yet, without arming it: lets
    /// protection fail before anything is sent when the back end cannot work
    /// here, and leaves output passing through.
    /// </summary>
    public async Task AttachAsync(CancellationToken cancellationToken)
    {
        await _attach.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Current != Mode.Detached)
            {
                return;
            }

            await _inner.StartAsync(cancellationToken).ConfigureAwait(false);
            lock (_lock)
            {
                _mode = Mode.Stopped;
            }
        }
        finally
        {
            _attach.Release();
        }
    }

    /// <summary>Attaches if needed, then arms: output is held from the next barrier on.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await AttachAsync(cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            if (_mode == Mode.Stopped)
            {
                _mode = Mode.Armed;
            }
        }
    }

    public void Barrier(ulong epoch)
    {
        lock (_lock)
        {
            if (_mode is Mode.Armed or Mode.Holding)
            {
                _inner.Barrier(epoch);
                _mode = Mode.Holding;
            }
        }
    }

    public void Release(ulong epoch)
    {
        lock (_lock)
        {
            if (_mode == Mode.Holding)
            {
                _inner.Release(epoch);
            }
        }
    }

    public Task ReleaseAllAndStopAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_mode == Mode.Detached)
            {
                return Task.CompletedTask;
            }

            // Under the lock, like Barrier: no barrier can slip in between and hold again.
            // Both back ends release synchronously (a queue move, one netlink message).
            _mode = Mode.Stopped;
            return _inner.ReleaseAllAndStopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _inner.DisposeAsync().ConfigureAwait(false);
        _attach.Dispose();
    }
}
