using McGrpc.Protos.Replication;
using McGrpc.Shared.Stats;

namespace McGrpc.Backup.Engine;

/// <summary>One replication stream from a primary, from Hello to its end.</summary>
internal sealed class ReplicationSession : IDisposable
{
    private readonly CancellationTokenSource _cancellation;
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _sync = new();

    public ReplicationSession(Hello hello, CancellationToken callCancelled)
    {
        Hello = hello;
        _cancellation = CancellationTokenSource.CreateLinkedTokenSource(callCancelled);
    }

    public Hello Hello { get; }

    public string Id => Hello.SessionId;

    public CancellationToken Token => _cancellation.Token;

    public HelloReply Reply { get; set; } = new();

    /// <summary>The next epoch must be a full copy (the backup said it cannot resume).</summary>
    public bool ExpectFull { get; set; }

    /// <summary>Set when the primary said goodbye.</summary>
    public string? Goodbye { get; set; }

    /// <summary>Why the backup ended this session itself, if it did.</summary>
    public string? AbortReason { get; private set; }

    /// <summary>The session was ended because this backup took over the VM.</summary>
    public bool AbortedForFailover { get; private set; }

    public SyncProgressTracker? Sync { get; set; }

    /// <summary>Completes when the session's receive loop has ended and nothing of it runs any more.</summary>
    public Task Finished => _finished.Task;

    public void Abort(string reason, bool forFailover = false)
    {
        lock (_sync)
        {
            if (_finished.Task.IsCompleted)
            {
                return;
            }

            AbortReason ??= reason;
            AbortedForFailover |= forFailover;
            _cancellation.Cancel();
        }
    }

    /// <summary>Marks the session over; later aborts are no-ops.</summary>
    public void MarkFinished()
    {
        lock (_sync)
        {
            _finished.TrySetResult();
        }
    }

    public void Dispose()
    {
        MarkFinished();
        _cancellation.Dispose();
    }
}
