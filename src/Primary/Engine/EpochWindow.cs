using McGrpc.Shared.Frames;

namespace McGrpc.Primary.Engine;

/// <summary>
/// Epochs committed but not yet acked, oldest first: at most K of them, kept
/// with their frames so a reconnect can send them again. Not thread-safe: the
/// engine guards it with its lock.
/// </summary>
internal sealed class EpochWindow
{
    private readonly LinkedList<Entry> _entries = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Count => _entries.Count;

    public ulong LastAcked { get; private set; }

    public bool HasAcked { get; private set; }

    /// <summary>
    /// True once a full epoch was acked and every later epoch is either acked
    /// or held here: only then can a reconnect resume instead of copying all RAM again.
    /// </summary>
    public bool Complete { get; private set; }

    public Entry? Oldest => _entries.First?.Value;

    public IEnumerable<Entry> Entries => _entries;

    /// <summary>Completes when an ack frees a place or the window is reset.</summary>
    public Task Changed => _changed.Task;

    public void Add(Entry entry) => _entries.AddLast(entry);

    /// <summary>Removes every epoch up to <paramref name="epoch"/>; returns them (their frames already disposed).</summary>
    public List<Entry> AckThrough(ulong epoch)
    {
        var acked = new List<Entry>();
        while (_entries.First is { } first && first.Value.Record.Epoch <= epoch)
        {
            _entries.RemoveFirst();
            first.Value.Frames?.Dispose();
            acked.Add(first.Value);
            if (first.Value.Record.Full)
            {
                Complete = true;
            }
        }

        if (!HasAcked || epoch > LastAcked)
        {
            LastAcked = epoch;
            HasAcked = true;
        }

        Signal();
        return acked;
    }

    /// <summary>Drops everything (a full copy starts over) and marks the window incomplete.</summary>
    public void Reset()
    {
        foreach (var entry in _entries)
        {
            entry.Frames?.Dispose();
        }

        _entries.Clear();
        Complete = false;
        Signal();
    }

    /// <summary>Whether a backup that applied <paramref name="lastApplied"/> can continue from what is held here.</summary>
    public bool CanResumeAfter(ulong lastApplied, ulong nextEpoch)
    {
        // Every epoch the backup lacks must still be here, frames and all.
        if (lastApplied >= nextEpoch || !_entries.All(e => e.Frames is not null || e.Record.Epoch <= lastApplied))
        {
            return false;
        }

        // A full copy whose ack was lost with the stream counts as acked when the backup applied it.
        return _entries.Any(e => e.Frames is null)
            || (Complete && HasAcked && lastApplied >= LastAcked);
    }

    private void Signal()
    {
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }

    /// <summary>One epoch in flight; <see cref="Frames"/> is null for the last part of a full copy (not resendable).</summary>
    internal sealed record Entry(EpochRecord Record, EpochFrames? Frames)
    {
        /// <summary>When the epoch was last queued on a link (Stopwatch ticks): the ack timeout runs from here.</summary>
        public long QueuedAt { get; set; } = System.Diagnostics.Stopwatch.GetTimestamp();
    }
}
