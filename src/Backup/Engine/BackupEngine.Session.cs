using System.Diagnostics;
using Grpc.Core;
using McGrpc.Backup.Replication;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;
using McGrpc.Shared.Stats;

namespace McGrpc.Backup.Engine;

internal sealed partial class BackupEngine
{
    // Held while an epoch is applied or the checkpoint is swapped, and by
    // failover while it reads the checkpoint: RAM never holds a mix of two.
    private readonly Lock _checkpointLock = new();

    // Taken (before _lock) while a session attaches and while a lost stream is
    // handled, so the two never interleave.
    private readonly Lock _sessionGate = new();
    private ReplicationSession? _session;
    private long _lastFrameAt;
    private volatile bool _applying;
    private long _streamLostAt;
    private bool _primaryWatched;

    /// <summary>Runs one replication stream to its end. Throws <see cref="RpcException"/> for the gRPC edge.</summary>
    public async Task RunSessionAsync(IAsyncStreamReader<PrimaryFrame> requests, IServerStreamWriter<BackupFrame> responses, CancellationToken callCancelled)
    {
        await _ready.Task.WaitAsync(callCancelled).ConfigureAwait(false);
        Hello hello;
        using (var helloTimeout = CancellationTokenSource.CreateLinkedTokenSource(callCancelled))
        {
            helloTimeout.CancelAfter(_options.HelloTimeoutMs);
            try
            {
                if (!await NextFrameAsync(requests, helloTimeout.Token).ConfigureAwait(false))
                {
                    return;
                }
            }
            catch (OperationCanceledException) when (!callCancelled.IsCancellationRequested)
            {
                // A connection that never says who it is must not hold a stream open.
                var message = $"No Hello within {_options.HelloTimeoutMs} ms; the stream is closed.";
                throw RefuseHello(message, new RpcException(new Status(StatusCode.DeadlineExceeded, message)));
            }
            catch (FrameFormatException e)
            {
                throw RefuseHello(e.Message, Reject(e));
            }

            if (requests.Current.BodyCase != PrimaryFrame.BodyOneofCase.Hello)
            {
                var e = new FrameFormatException($"The first frame must be Hello, not {requests.Current.BodyCase}.");
                throw RefuseHello(e.Message, Reject(e));
            }

            hello = requests.Current.Hello;
        }

        ValidateHello(hello);
        var session = await OpenSessionAsync(hello, callCancelled).ConfigureAwait(false);
        try
        {
            await responses.WriteAsync(new BackupFrame { HelloReply = session.Reply }, session.Token).ConfigureAwait(false);
            await ReceiveAsync(session, requests, responses).ConfigureAwait(false);
            if (session.Goodbye is not null)
            {
                OnGoodbye(session);
            }
            else
            {
                OnStreamLost(session, "the primary ended the stream without a goodbye");
            }
        }
        catch (FrameFormatException e)
        {
            // A bad frame is not a dead primary: discard the epoch, close the
            // stream, keep the checkpoint; the liveness watch decides the rest.
            _stats.Rejected(e.Message);
            BackupLog.FrameRejected(_logger, e.Message);
            DetachSession(session);
            throw Reject(e);
        }
        catch (Exception e) when (session.AbortReason is not null && e is OperationCanceledException or IOException or RpcException or InvalidOperationException)
        {
            throw AbortStatus(session);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or RpcException or InvalidOperationException)
        {
            OnStreamLost(session, $"stream broken: {e.Message}");
        }
        finally
        {
            lock (_checkpointLock)
            {
                if (_stager!.Epoch is { } open)
                {
                    _stats.Discarded();
                    BackupLog.PartialEpochDiscarded(_logger, open, _stager.Pages);
                    _stager.Discard();
                }
            }

            DetachSession(session);
            session.MarkFinished();
            session.Dispose();
        }
    }

    private void ValidateHello(Hello hello)
    {
        var problems = EpochRules.HelloProblems(hello, _vm.VmId, _ram!.Size, _ram.PageSize);
        if (problems.Count > 0)
        {
            var message = $"Hello refused: the primary has {string.Join("; ", problems)}.";
            throw RefuseHello(message, Reject(new ReplicationRefusedException(message)));
        }
    }

    /// <summary>Counts and logs a refused Hello; returns the error the stream ends with.</summary>
    private RpcException RefuseHello(string message, RpcException error)
    {
        _stats.Rejected(message);
        BackupLog.HelloRefused(_logger, message);
        return error;
    }

    private async Task<ReplicationSession> OpenSessionAsync(Hello hello, CancellationToken callCancelled)
    {
        ReplicationSession? previous;
        var session = new ReplicationSession(hello, callCancelled);
        lock (_sessionGate)
        {
            lock (_lock)
            {
                if (_state is BackupState.FailingOver or BackupState.FailedOver)
                {
                    throw Reject(new ReplicationRefusedException("This backup has taken over the VM and accepts no checkpoints.", failedOver: true));
                }

                if (_state is BackupState.Failed or BackupState.Starting)
                {
                    throw Reject(new ReplicationRefusedException($"The backup cannot accept replication: {_stateReason}."));
                }

                previous = _session;
                _session = session;
            }
        }

        if (previous is not null)
        {
            previous.Abort("superseded by a new stream from the primary");
            await previous.Finished.WaitAsync(TimeSpan.FromSeconds(10), callCancelled).ConfigureAwait(false);
        }

        bool resumable;
        lock (_lock)
        {
            resumable = _hasCheckpoint && _checkpointSession == hello.SessionId;
            session.ExpectFull = !resumable;
            session.Reply = new HelloReply { LastAppliedEpoch = _appliedAny ? _lastApplied : 0, HasCheckpoint = _hasCheckpoint, Resumable = resumable };
            _goodbyeReason = null;
            _streamLostAt = 0;
            _primaryWatched = true;
            _lastFrameAt = Stopwatch.GetTimestamp();
        }

        BackupLog.SessionOpened(_logger, hello.SessionId, resumable, _lastApplied);
        if (resumable)
        {
            SetState(BackupState.Protected, $"primary connected, continuing after epoch {_lastApplied}");
        }
        else if (!session.Reply.HasCheckpoint)
        {
            // Set before HelloReply goes out, so that whoever sees the primary
            // syncing sees this backup syncing too.
            SetState(BackupState.Syncing, "a primary connected; waiting for its initial copy (nothing to resume until it is applied)");
        }

        return session;
    }

    private async Task ReceiveAsync(ReplicationSession session, IAsyncStreamReader<PrimaryFrame> requests, IServerStreamWriter<BackupFrame> responses)
    {
        var stager = _stager!;
        while (await NextFrameAsync(requests, session.Token).ConfigureAwait(false))
        {
            Interlocked.Exchange(ref _lastFrameAt, Stopwatch.GetTimestamp());
            var frame = requests.Current;
            if (EpochRules.EpochOf(frame) is { } frameEpoch)
            {
                EnsureEpoch(session, frameEpoch);
            }

            switch (frame.BodyCase)
            {
                case PrimaryFrame.BodyOneofCase.Pages:
                    stager.AddPages(frame.Pages);
                    if (stager.Full)
                    {
                        session.Sync?.Copied(frame.Pages.Runs.Sum(r => (long)r.PageCount));
                        if (session.Sync is { } sync && sync.ShouldLog())
                        {
                            var p = sync.Snapshot();
                            BackupLog.SyncProgress(_logger, p.BytesCopied / (1024 * 1024), p.RamSize / (1024 * 1024), p.RateMbps);
                        }
                    }

                    break;
                case PrimaryFrame.BodyOneofCase.DeviceState:
                    stager.AddDeviceState(frame.DeviceState);
                    break;
                case PrimaryFrame.BodyOneofCase.Commit:
                    var ack = Commit(session, frame.Commit);
                    await responses.WriteAsync(new BackupFrame { Ack = ack }, session.Token).ConfigureAwait(false);
                    break;
                case PrimaryFrame.BodyOneofCase.Heartbeat:
                    break;
                case PrimaryFrame.BodyOneofCase.Goodbye:
                    session.Goodbye = string.IsNullOrWhiteSpace(frame.Goodbye.Reason) ? "no reason given" : PeerText.Printable(frame.Goodbye.Reason, 200);
                    return;
                default:
                    throw new FrameFormatException($"Unexpected {frame.BodyCase} frame in a running session.");
            }
        }
    }

    /// <summary>Opens the epoch a frame belongs to, checking its number, when none is open.</summary>
    private void EnsureEpoch(ReplicationSession session, ulong epoch)
    {
        var stager = _stager!;
        if (stager.Epoch is not null)
        {
            return;
        }

        ulong? lastApplied;
        lock (_lock)
        {
            lastApplied = _appliedAny ? _lastApplied : null;
        }

        var kind = EpochRules.Open(epoch, session.ExpectFull, lastApplied);
        stager.Begin(epoch, kind, kind == EpochKind.Full ? () => OnFullCopyWrites(session, epoch) : null);
    }

    /// <summary>
    /// The first chunk of a full copy checked out and is about to be written
    /// into RAM: from here the old checkpoint is gone. A full copy that is
    /// refused before this point leaves the checkpoint intact.
    /// </summary>
    private void OnFullCopyWrites(ReplicationSession session, ulong epoch)
    {
        lock (_checkpointLock)
        {
            lock (_lock)
            {
                if (_state is BackupState.FailingOver or BackupState.FailedOver)
                {
                    throw new OperationCanceledException("failing over");
                }

                if (_hasCheckpoint)
                {
                    BackupLog.CheckpointDiscardedForResync(_logger, _lastApplied, epoch);
                    _hasCheckpoint = false;
                }
            }
        }

        session.Sync = new SyncProgressTracker(_ram!.Size, _ram.PageSize);
        _stats.SetSync(session.Sync);
        SetState(BackupState.Syncing, $"receiving the initial copy (epoch {epoch}); nothing to resume until it is applied");
    }

    /// <summary>The next frame; a message over the frame limit is a bad frame, not a broken stream.</summary>
    private static async Task<bool> NextFrameAsync(IAsyncStreamReader<PrimaryFrame> requests, CancellationToken cancellationToken)
    {
        try
        {
            return await requests.MoveNext(cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
        {
            throw new FrameFormatException($"A frame is larger than the {FrameLimits.MaxFrameBytes:#,0}-byte limit ({e.Status.Detail}).");
        }
    }

    private Ack Commit(ReplicationSession session, Protos.Replication.Commit commit)
    {
        var stager = _stager!;
        var received = Stopwatch.GetTimestamp();
        // Applying a large epoch is this side being busy, not the primary being silent.
        _applying = true;
        try
        {
            return CommitCore(session, commit, stager, received);
        }
        finally
        {
            Interlocked.Exchange(ref _lastFrameAt, Stopwatch.GetTimestamp());
            _applying = false;
        }
    }

    private Ack CommitCore(ReplicationSession session, Protos.Replication.Commit commit, EpochStager stager, long received)
    {
        stager.Verify(commit);
        var digestChecked = false;
        var digestOk = false;
        lock (_checkpointLock)
        {
            lock (_lock)
            {
                if (_state is BackupState.FailingOver or BackupState.FailedOver)
                {
                    throw new OperationCanceledException("failing over: no more checkpoints are applied");
                }
            }

            var deviceState = stager.Full ? stager.DeviceState : stager.Apply();
            if (_checkpointDeviceState.Length != deviceState.Length)
            {
                _checkpointDeviceState = new byte[deviceState.Length];
            }

            deviceState.CopyTo(_checkpointDeviceState);
            if (session.Hello.DigestMode)
            {
                var digest = RamDigest.Compute(_ram!.Memory, _ram.Size);
                digestChecked = true;
                digestOk = commit.RamDigest.Span.SequenceEqual(digest);
                _lastRamDigest = RamDigest.ToHex(digest);
                if (!digestOk)
                {
                    var slices = RamDigest.DifferingSlices(commit.RamDigest.Span, digest);
                    BackupLog.DigestMismatch(_logger, commit.Epoch, RamDigest.ToHex(commit.RamDigest.Span), _lastRamDigest, string.Join(", ", slices.Select(o => $"0x{o:x}")));
                }
            }

            lock (_lock)
            {
                _lastApplied = commit.Epoch;
                _appliedAny = true;
                _hasCheckpoint = true;
                _checkpointSession = session.Id;
                _checkpointStoppedAtUnixMs = commit.StoppedAtUnixMs;
            }

            session.ExpectFull = false;
            stager.Discard();
        }

        var applyMs = Ms(received, Stopwatch.GetTimestamp());
        _stats.Applied(commit, applyMs, digestChecked, digestOk);
        BackupLog.EpochApplied(_logger, commit.Epoch, commit.PageCount, applyMs);
        if (commit.Full)
        {
            BackupLog.FullCopyApplied(_logger, commit.Epoch, commit.PageCount);
            session.Sync?.Finished();
        }

        if (State is BackupState.Syncing || commit.Full)
        {
            SetState(BackupState.Protected, $"holding checkpoint {commit.Epoch}");
        }
        else
        {
            Changed?.Invoke();
        }

        return new Ack { Epoch = commit.Epoch, ApplyMicros = (ulong)(applyMs * 1000), RamDigestVerified = digestChecked && digestOk };
    }

    private void OnGoodbye(ReplicationSession session)
    {
        if (!DetachSession(session))
        {
            return;
        }

        lock (_lock)
        {
            _goodbyeReason = session.Goodbye;
            _primaryWatched = false;
        }

        BackupLog.Goodbye(_logger, session.Goodbye!);
        SetState(BackupState.Waiting, $"the primary ended protection: {session.Goodbye}");
    }

    private void OnStreamLost(ReplicationSession session, string reason)
    {
        // A primary that reconnects at once (its ack timeout cut the old
        // stream) must not be declared dead by the old stream's loss after its
        // new session attached: losing and attaching take turns.
        lock (_sessionGate)
        {
            if (!DetachSession(session))
            {
                return;
            }

            BackupLog.StreamLost(_logger, reason);
            int grace;
            lock (_lock)
            {
                _streamLostAt = Stopwatch.GetTimestamp();
                grace = _options.StreamLossGraceMs;
            }

            if (grace == 0)
            {
                DeclarePrimaryDead($"replication stream lost ({reason})");
            }
            else if (_hasCheckpoint)
            {
                SetState(BackupState.Protected, $"stream lost; waiting {grace} ms for the primary to resume");
            }
        }
    }

    /// <summary>Forgets <paramref name="session"/> as the current one; false when a newer one replaced it.</summary>
    private bool DetachSession(ReplicationSession session)
    {
        lock (_lock)
        {
            if (_session != session)
            {
                return false;
            }

            _session = null;
            return true;
        }
    }

    private void AbortSession(string reason)
    {
        ReplicationSession? session;
        lock (_lock)
        {
            session = _session;
        }

        session?.Abort(reason);
    }

    private static RpcException AbortStatus(ReplicationSession session)
    {
        if (session.AbortedForFailover)
        {
            return Reject(new ReplicationRefusedException($"This backup has taken over the VM ({session.AbortReason}).", failedOver: true));
        }

        return new RpcException(new Status(StatusCode.Aborted, $"The backup ended the stream: {session.AbortReason}."));
    }

    /// <summary>Maps a refusal to the status the primary acts on.</summary>
    private static RpcException Reject(Exception e)
    {
        var trailers = new Metadata();
        if (e is ReplicationRefusedException { FailedOver: true })
        {
            trailers.Add(ReplicationMetadata.ReasonKey, ReplicationMetadata.FailedOver);
        }

        var code = e is FrameFormatException ? StatusCode.InvalidArgument : StatusCode.FailedPrecondition;
        return new RpcException(new Status(code, e.Message), trailers);
    }
}
