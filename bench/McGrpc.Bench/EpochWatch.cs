using Grpc.Core;
using McGrpc.Protos.Control;

namespace McGrpc.Bench;

/// <summary>
/// Per-epoch statistics from mc-primary's WatchStatus while a measurement
/// runs: each message carries the last epoch's numbers, so one sample per new
/// checkpoint count. Epochs that WatchStatus coalesced are missing (it says
/// how many via <see cref="Taken"/>), never double counted.
/// </summary>
internal sealed class EpochWatch : IAsyncDisposable
{
    private readonly List<CheckpointStats> _samples = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private ulong _firstCount;
    private ulong _lastCount;
    private bool _started;

    private EpochWatch(PrimaryControl.PrimaryControlClient primary)
    {
        _loop = Task.Run(() => WatchAsync(primary, _stop.Token));
    }

    /// <summary>Checkpoints the primary took while watching (samples may be fewer).</summary>
    public ulong Taken => _lastCount - _firstCount;

    public static EpochWatch Start(PrimaryControl.PrimaryControlClient primary) => new(primary);

    /// <summary>Stops watching and returns the samples.</summary>
    public async Task<List<CheckpointStats>> StopAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
        }

        lock (_samples)
        {
            return [.. _samples];
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }

    private async Task WatchAsync(PrimaryControl.PrimaryControlClient primary, CancellationToken cancellationToken)
    {
        using var watch = primary.WatchStatus(new WatchStatusRequest(), cancellationToken: cancellationToken);
        await foreach (var status in watch.ResponseStream.ReadAllAsync(cancellationToken))
        {
            if (status.Stats is not { } stats)
            {
                continue;
            }

            if (!_started)
            {
                // The first message repeats an epoch from before the window.
                _started = true;
                _firstCount = _lastCount = stats.Checkpoints;
                continue;
            }

            if (status.State != "protected" || stats.Checkpoints <= _lastCount)
            {
                continue;
            }

            _lastCount = stats.Checkpoints;
            lock (_samples)
            {
                _samples.Add(stats);
            }
        }
    }
}
