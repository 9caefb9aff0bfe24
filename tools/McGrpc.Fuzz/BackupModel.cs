using System.IO.Hashing;
using K4os.Compression.LZ4;
using McGrpc.Backup.Replication;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;

namespace McGrpc.Fuzz;

/// <summary>
/// mc-backup's receiving side in process, without gRPC and QEMU: the same
/// <see cref="EpochRules"/> and <see cref="EpochStager"/> over guest RAM in a
/// shared file, driven frame by frame in the order BackupEngine drives them,
/// with the checkpoint bookkeeping the engine keeps. Around it, an oracle that
/// checks after every epoch and stream:
/// <list type="bullet">
/// <item>guest RAM equals a shadow copy that only accepted full-copy chunks
/// and committed epochs changed (decoded by an independent reference
/// decoder): nothing of a rejected or partial epoch reached RAM, nothing was
/// written outside the pages a validated run named;</item>
/// <item>while the backup claims a checkpoint, RAM hashes to what it hashed
/// when that checkpoint was applied;</item>
/// <item>a full copy that wrote into RAM and failed leaves no checkpoint claimed;</item>
/// <item>nothing wrote past the end of RAM in its file (canary), and nothing
/// threw but <see cref="FrameFormatException"/>.</item>
/// </list>
/// </summary>
internal sealed class BackupModel : IDisposable
{
    public const string VmId = "fuzzvm";

    private readonly ScratchRam _ram;
    private readonly EpochStager _stager;
    private readonly byte[] _shadow;
    private readonly List<PageChunk> _pending = [];
    private readonly byte[] _decoded = new byte[FrameLimits.MaxChunkRawBytes];
    private byte[] _checkpointHash = [];
    private byte[] _checkpointDeviceState = [];

    public BackupModel(long ramSize, int pageSize = FrameLimits.PageSize, long maxStagingBytes = 0, long maxDeviceStateBytes = 64L * 1024 * 1024, int maxFullCopyPasses = EpochStager.DefaultFullCopyPasses)
    {
        _ram = ScratchRam.Create(ramSize, pageSize);
        _stager = new EpochStager(_ram.Ram, maxStagingBytes, maxDeviceStateBytes, maxFullCopyPasses);
        _shadow = new byte[ramSize];
    }

    public long RamSize => _ram.Size;

    public int PageSize => _ram.Ram.PageSize;

    public bool HasCheckpoint { get; private set; }

    /// <summary>The last applied epoch, null before the first.</summary>
    public ulong? LastApplied { get; private set; }

    /// <summary>Session id of the primary whose checkpoint RAM holds.</summary>
    public string CheckpointSession { get; private set; } = string.Empty;

    /// <summary>What a primary that could resume would send next (its guest's RAM equals the checkpoint).</summary>
    public ReadOnlySpan<byte> Shadow => _shadow;

    public ReadOnlySpan<byte> CheckpointDeviceState => _checkpointDeviceState;

    /// <summary>
    /// Runs one replication stream, as a gRPC call would deliver it, and checks
    /// the oracle. Throws <see cref="FuzzInvariantException"/> when the backup
    /// misbehaved; otherwise says how the stream ended.
    /// </summary>
    public StreamResult Receive(IReadOnlyList<PrimaryFrame> frames)
    {
        var result = new StreamResult();
        try
        {
            ReceiveCore(frames, result);
        }
        catch (FrameFormatException e)
        {
            result.Rejection = e.Message;
        }
        catch (FuzzInvariantException)
        {
            throw;
        }
        catch (Exception e)
        {
            throw new FuzzInvariantException($"the backup crashed on frame {result.FramesRead} ({Describe(frames, result.FramesRead - 1)}): {e.GetType().Name}: {e.Message}", e);
        }
        finally
        {
            result.PartialEpochDiscarded = _stager.Epoch is not null;
            if (result.PartialEpochDiscarded && result.Rejection is not null)
            {
                result.RejectedEpochs++;
            }

            _stager.Discard();
            _pending.Clear();
        }

        CheckRam(result.Rejection is not null ? "after a rejected frame" : "at the end of the stream");
        if (!_ram.CanaryIntact())
        {
            throw new FuzzInvariantException("something wrote past the end of guest RAM in its file (canary changed)");
        }

        return result;
    }

    public void Dispose()
    {
        _stager.Dispose();
        _ram.Dispose();
    }

    private void ReceiveCore(IReadOnlyList<PrimaryFrame> frames, StreamResult result)
    {
        if (frames.Count == 0)
        {
            return;
        }

        // The first frame, as RunSessionAsync takes it.
        var first = Read(frames, 0, result);
        if (first.BodyCase != PrimaryFrame.BodyOneofCase.Hello)
        {
            throw new FrameFormatException($"The first frame must be Hello, not {first.BodyCase}.");
        }

        var hello = first.Hello;
        var problems = EpochRules.HelloProblems(hello, VmId, _ram.Size, _ram.Ram.PageSize);
        if (problems.Count > 0)
        {
            result.HelloRefused = true;
            throw new FrameFormatException($"Hello refused: {string.Join("; ", problems)}.");
        }

        var expectFull = !(HasCheckpoint && CheckpointSession == hello.SessionId);
        for (var i = 1; i < frames.Count; i++)
        {
            var frame = Read(frames, i, result);
            if (EpochRules.EpochOf(frame) is { } epoch && _stager.Epoch is null)
            {
                var kind = EpochRules.Open(epoch, expectFull, LastApplied);
                _stager.Begin(epoch, kind, kind == EpochKind.Full ? () => HasCheckpoint = false : null);
                result.EpochsOpened++;
            }

            switch (frame.BodyCase)
            {
                case PrimaryFrame.BodyOneofCase.Pages:
                    _stager.AddPages(frame.Pages);
                    if (_stager.Full)
                    {
                        // Accepted and written: the shadow follows, by the reference decoder.
                        ApplyToShadow(frame.Pages);
                    }
                    else
                    {
                        _pending.Add(frame.Pages);
                    }

                    break;
                case PrimaryFrame.BodyOneofCase.DeviceState:
                    _stager.AddDeviceState(frame.DeviceState);
                    break;
                case PrimaryFrame.BodyOneofCase.Commit:
                    Commit(frame.Commit, hello);
                    expectFull = false;
                    result.EpochsApplied++;
                    break;
                case PrimaryFrame.BodyOneofCase.Heartbeat:
                    break;
                case PrimaryFrame.BodyOneofCase.Goodbye:
                    result.Goodbye = true;
                    return;
                default:
                    throw new FrameFormatException($"Unexpected {frame.BodyCase} frame in a running session.");
            }
        }
    }

    /// <summary>A frame over the size gRPC accepts (MaxReceiveMessageSize) fails the call before the engine sees it.</summary>
    private static PrimaryFrame Read(IReadOnlyList<PrimaryFrame> frames, int index, StreamResult result)
    {
        result.FramesRead = index + 1;
        var frame = frames[index];
        if (frame.CalculateSize() > FrameLimits.MaxFrameBytes)
        {
            throw new FrameFormatException($"A frame is larger than the {FrameLimits.MaxFrameBytes:#,0}-byte limit.");
        }

        return frame;
    }

    private void Commit(Commit commit, Hello hello)
    {
        CheckRam("before a commit");
        _stager.Verify(commit);
        var full = _stager.Full;
        if (!full && _stager.RamTouched)
        {
            throw new FuzzInvariantException("an incremental epoch wrote into RAM before its commit");
        }

        var deviceState = full ? _stager.DeviceState : _stager.Apply();
        _checkpointDeviceState = deviceState.ToArray();
        if (!full)
        {
            foreach (var chunk in _pending)
            {
                ApplyToShadow(chunk);
            }
        }

        if (hello.DigestMode)
        {
            // What the engine does with the primary's RAM digest: compare and
            // name the differing slices (a hostile digest of any length).
            var digest = RamDigest.Compute(_ram.Ram.Memory, _ram.Size);
            if (!commit.RamDigest.Span.SequenceEqual(digest))
            {
                _ = RamDigest.DifferingSlices(commit.RamDigest.Span, digest);
            }
        }

        LastApplied = commit.Epoch;
        HasCheckpoint = true;
        CheckpointSession = hello.SessionId;
        _stager.Discard();
        _pending.Clear();
        _checkpointHash = XxHash128.Hash(_ram.Bytes);
        CheckRam("after applying a verified epoch");
    }

    private void CheckRam(string when)
    {
        var ram = _ram.Bytes;
        if (!ram.SequenceEqual(_shadow))
        {
            var page = FirstDifferingPage(ram, _shadow);
            throw new FuzzInvariantException($"guest RAM {when} differs from what accepted frames wrote, first at page {page} (offset 0x{(long)page * PageSize:x})");
        }

        if (HasCheckpoint && _stager.Epoch is null && !XxHash128.Hash(ram).AsSpan().SequenceEqual(_checkpointHash))
        {
            throw new FuzzInvariantException($"guest RAM {when} no longer hashes to checkpoint {LastApplied}");
        }
    }

    /// <summary>The reference decoder: plain and obviously right, nothing shared with PageChunkDecoder but LZ4 itself.</summary>
    private void ApplyToShadow(PageChunk chunk)
    {
        if (chunk.RawLength > _decoded.Length)
        {
            throw new FuzzInvariantException($"the backup accepted a chunk of epoch {chunk.Epoch} declaring {chunk.RawLength} raw bytes, more than a chunk may carry");
        }

        var raw = _decoded.AsSpan(0, (int)chunk.RawLength);
        if (chunk.RawLength > 0)
        {
            var payload = chunk.Payload.Span;
            var decoded = chunk.Codec switch
            {
                Codec.Lz4 => LZ4Codec.Decode(payload, raw),
                Codec.None when payload.Length == raw.Length => payload.Length,
                _ => -1,
            };
            if (chunk.Codec == Codec.None && decoded == raw.Length)
            {
                payload.CopyTo(raw);
            }

            if (decoded != raw.Length)
            {
                throw new FuzzInvariantException($"the backup accepted a chunk of epoch {chunk.Epoch} whose payload does not decode to its raw_length");
            }
        }

        var position = 0;
        foreach (var run in chunk.Runs)
        {
            var bytes = run.PageCount * (ulong)PageSize;
            if (run.Offset > (ulong)_shadow.Length || bytes > (ulong)_shadow.Length - run.Offset || run.Offset % (ulong)PageSize != 0)
            {
                throw new FuzzInvariantException($"the backup accepted a run of {run.PageCount} pages at 0x{run.Offset:x}, outside guest RAM or unaligned");
            }

            var length = (int)bytes;
            var target = _shadow.AsSpan((int)run.Offset, length);
            if (run.Zero)
            {
                target.Clear();
            }
            else
            {
                raw.Slice(position, length).CopyTo(target);
                position += length;
            }
        }
    }

    private int FirstDifferingPage(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var at = a.CommonPrefixLength(b);
        return at / PageSize;
    }

    private static string Describe(IReadOnlyList<PrimaryFrame> frames, int index)
        => index >= 0 && index < frames.Count ? frames[index].BodyCase.ToString() : "none";
}
