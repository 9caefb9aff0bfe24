namespace McGrpc.Primary.Engine;

/// <summary>
/// A wake-up for whoever waits on the engine's <see cref="PrimaryEngine.Changed"/>:
/// changes that come while nobody waits coalesce into one pending wake-up.
/// </summary>
internal sealed class ChangeSignal : IDisposable
{
    private readonly PrimaryEngine _engine;
    private readonly SemaphoreSlim _signal = new(0, 1);

    public ChangeSignal(PrimaryEngine engine)
    {
        _engine = engine;
        _engine.Changed += OnChanged;
    }

    /// <summary>Waits for the next change (or the pending one).</summary>
    public Task WaitAsync(CancellationToken cancellationToken) => _signal.WaitAsync(cancellationToken);

    /// <summary>Waits for the next change at most <paramref name="timeout"/>; false when none came.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _signal.WaitAsync(timeout, cancellationToken);

    public void Dispose()
    {
        _engine.Changed -= OnChanged;
        _signal.Dispose();
    }

    private void OnChanged()
    {
        try
        {
            _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // A wake-up is pending already: changes coalesce.
        }
        catch (ObjectDisposedException)
        {
            // Raised while the waiter was leaving.
        }
    }
}
