using System.Diagnostics;

namespace McGrpc.Shared.Stats;

/// <summary>Progress of an initial full copy: bytes copied of RAM size, round, rate and estimate.</summary>
internal sealed class SyncProgressTracker
{
    private readonly long _ramSize;
    private readonly int _pageSize;
    private readonly long _started = Stopwatch.GetTimestamp();
    private long _lastLog = Stopwatch.GetTimestamp();
    private long _bytesCopied;
    private int _round;
    private long _remainingDirtyPages;
    private bool _finished;
    private double _finishedSeconds;

    public SyncProgressTracker(long ramSize, int pageSize)
    {
        _ramSize = ramSize;
        _pageSize = pageSize;
    }

    /// <summary>Time since the copy started, frozen once it finished so the rate stays what it was.</summary>
    public double ElapsedSeconds => _finished ? _finishedSeconds : Stopwatch.GetElapsedTime(_started).TotalSeconds;

    public void Copied(long pages) => Interlocked.Add(ref _bytesCopied, pages * _pageSize);

    public void NextRound(int round, long dirtyPages)
    {
        _round = round;
        _remainingDirtyPages = dirtyPages;
    }

    public void Finished()
    {
        _finishedSeconds = Stopwatch.GetElapsedTime(_started).TotalSeconds;
        _finished = true;
    }

    /// <summary>True at most every two seconds.</summary>
    public bool ShouldLog()
    {
        var now = Stopwatch.GetTimestamp();
        if (Stopwatch.GetElapsedTime(_lastLog, now) < TimeSpan.FromSeconds(2))
        {
            return false;
        }

        _lastLog = now;
        return true;
    }

    public SyncProgressSnapshot Snapshot()
    {
        var copied = Interlocked.Read(ref _bytesCopied);
        var seconds = Math.Max(ElapsedSeconds, 1e-3);
        var rate = copied / seconds;
        // Round 0 covers RAM once; later rounds only re-send what changed.
        var left = _round == 0 ? Math.Max(0, _ramSize - copied) : _remainingDirtyPages * _pageSize;
        var eta = _finished ? 0 : rate > 0 ? left / rate : double.PositiveInfinity;
        return new SyncProgressSnapshot(copied, _ramSize, _round, rate / 1e6, double.IsFinite(eta) ? eta : -1, _remainingDirtyPages, _finished);
    }
}
