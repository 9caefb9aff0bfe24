using Google.Protobuf;
using K4os.Compression.LZ4;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;

namespace McGrpc.Fuzz;

/// <summary>
/// Makes streams for the backup from the recorded epochs: valid sessions that
/// fit the backup's state (a new primary's full copy, or a resumed session's
/// next epochs), the same with one to four mutations (frame order, every
/// field of every frame kind, serialized bytes), and random frames.
/// </summary>
internal sealed class StreamFactory
{
    private readonly EpochCorpus _corpus;
    private readonly long _ramSize;
    private readonly int _pageSize;
    private readonly (string Name, Func<List<PrimaryFrame>, Random, bool> Apply)[] _mutations;

    public StreamFactory(EpochCorpus corpus, long ramSize, int pageSize)
    {
        _corpus = corpus;
        _ramSize = ramSize;
        _pageSize = pageSize;
        _mutations =
        [
            ("drop-frame", DropFrame),
            ("duplicate-frame", DuplicateFrame),
            ("swap-frames", SwapFrames),
            ("truncate", Truncate),
            ("insert-random-frame", InsertRandomFrame),
            ("second-hello", SecondHello),
            ("epoch-number", EpochNumber),
            ("hello-field", HelloField),
            ("run-offset", RunOffset),
            ("run-count", RunCount),
            ("run-zero-flag", RunZeroFlag),
            ("runs-added-removed", RunsAddedRemoved),
            ("raw-length", RawLength),
            ("codec", CodecField),
            ("payload", Payload),
            ("payload-reencoded", PayloadReencoded),
            ("device-state", DeviceStateField),
            ("commit-field", CommitField),
            ("commit-early", CommitEarly),
            ("serialized-bytes", SerializedBytes),
            ("replayed-epoch", ReplayedEpoch),
            ("foreign-commit", ForeignCommit),
            ("oversized-frame", OversizedFrame),
        ];
    }

    public FuzzStream Next(Random random, BackupModel backup)
    {
        var roll = random.Next(100);
        if (roll < 15)
        {
            return new FuzzStream("valid", ValidFrames(random, backup), MustBeAccepted: true, "none");
        }

        if (roll < 88)
        {
            var frames = ValidFrames(random, backup);
            var applied = new List<string>();
            for (var n = 1 + random.Next(random.Next(4) == 0 ? 4 : 2); n > 0 && frames.Count > 0; n--)
            {
                var (name, apply) = _mutations[random.Next(_mutations.Length)];
                if (apply(frames, random))
                {
                    applied.Add(name);
                }
            }

            return new FuzzStream("mutated", frames, MustBeAccepted: false, applied.Count == 0 ? "none applied" : string.Join(", ", applied));
        }

        return new FuzzStream("random", RandomFrames(random, backup), MustBeAccepted: false, "random frames");
    }

    /// <summary>A session a correct primary could send now: resume after the checkpoint, or start over with a full copy.</summary>
    public List<PrimaryFrame> ValidFrames(Random random, BackupModel backup)
    {
        var resume = backup.HasCheckpoint && random.Next(3) != 0;
        var frames = new List<PrimaryFrame> { new() { Hello = Hello(resume ? backup.CheckpointSession : NewSessionId(random), random.Next(12) == 0) } };
        ulong next;
        if (resume)
        {
            next = backup.LastApplied!.Value + 1;
        }
        else
        {
            var full = (backup.LastApplied is { } last ? last + 1 : 0) + (ulong)(random.Next(8) == 0 ? random.Next(1, 1000) : random.Next(3));
            frames.AddRange(Pick(_corpus.FullCopies, random).As(full));
            next = full + 1;
        }

        for (var count = random.Next(resume ? 1 : 0, 4); count > 0; count--)
        {
            if (random.Next(3) == 0)
            {
                frames.Add(new PrimaryFrame { Heartbeat = new Heartbeat { LastCommittedEpoch = next - 1, SentAtUnixMs = 1 } });
            }

            frames.AddRange(Pick(_corpus.Incrementals, random).As(next++));
        }

        if (random.Next(10) == 0)
        {
            frames.Add(new PrimaryFrame { Goodbye = new Goodbye { Reason = "fuzz" } });
        }

        return frames;
    }

    public Hello Hello(string session, bool digestMode = false) => new()
    {
        ProtocolVersion = FrameLimits.ProtocolVersion,
        VmId = BackupModel.VmId,
        RamSize = (ulong)_ramSize,
        PageSize = (uint)_pageSize,
        SessionId = session,
        DigestMode = digestMode,
    };

    private List<PrimaryFrame> RandomFrames(Random random, BackupModel backup)
    {
        var frames = new List<PrimaryFrame>();
        if (random.Next(10) < 7)
        {
            var resume = backup.HasCheckpoint && random.Next(2) == 0;
            frames.Add(new PrimaryFrame { Hello = Hello(resume ? backup.CheckpointSession : NewSessionId(random)) });
        }
        else
        {
            frames.Add(RandomFrame(random, backup.LastApplied ?? 0));
        }

        for (var n = 1 + random.Next(20); n > 0; n--)
        {
            frames.Add(RandomFrame(random, (backup.LastApplied ?? 0) + 1));
        }

        return frames;
    }

    private PrimaryFrame RandomFrame(Random random, ulong epochHint)
    {
        var epoch = random.Next(4) == 0 ? AnyULong(random) : epochHint + (ulong)random.Next(2);
        switch (random.Next(9))
        {
            case 0:
            case 1:
            case 2:
                return new PrimaryFrame { Pages = RandomChunk(random, epoch) };
            case 3:
                return new PrimaryFrame
                {
                    DeviceState = new DeviceStateChunk { Epoch = epoch, Offset = random.Next(2) == 0 ? 0 : AnyULong(random), Data = RandomBytes(random, random.Next(3) == 0 ? 0 : random.Next(1, 65536)) },
                };
            case 4:
            case 5:
                return new PrimaryFrame
                {
                    Commit = new Commit
                    {
                        Epoch = epoch,
                        Full = random.Next(2) == 0,
                        PageCount = Small(random),
                        ZeroPageCount = Small(random),
                        ChunkCount = Small(random),
                        DeviceStateSize = Small(random),
                        ContentDigest = RandomBytes(random, random.Next(3) == 0 ? random.Next(40) : FrameLimits.DigestBytes),
                        RamDigest = random.Next(4) == 0 ? RandomBytes(random, random.Next(1024)) : ByteString.Empty,
                    },
                };
            case 6:
                return new PrimaryFrame { Heartbeat = new Heartbeat { LastCommittedEpoch = epoch } };
            case 7:
                return random.Next(2) == 0 ? new PrimaryFrame() : new PrimaryFrame { Goodbye = new Goodbye { Reason = RandomText(random) } };
            default:
                return new PrimaryFrame { Hello = RandomHello(random) };
        }
    }

    /// <summary>Half the time a chunk that passes the run checks (so the payload checks are reached), half the time anything.</summary>
    private PageChunk RandomChunk(Random random, ulong epoch)
    {
        var chunk = new PageChunk { Epoch = epoch };
        var sound = random.Next(2) == 0;
        var raw = 0;
        for (var n = 1 + random.Next(random.Next(8) == 0 ? 200 : 5); n > 0; n--)
        {
            var run = sound
                ? new PageRun { Offset = (ulong)random.NextInt64(_ramSize / _pageSize) * (ulong)_pageSize, PageCount = (uint)random.Next(1, 9), Zero = random.Next(3) == 0 }
                : new PageRun { Offset = Offset(random), PageCount = Count(random), Zero = random.Next(2) == 0 };
            if (sound && run.Offset + ((ulong)run.PageCount * (ulong)_pageSize) > (ulong)_ramSize)
            {
                run.PageCount = 1;
            }

            if (!run.Zero && raw + ((long)run.PageCount * _pageSize) > FrameLimits.MaxChunkRawBytes)
            {
                run.Zero = true;
            }

            if (!run.Zero)
            {
                raw += (int)run.PageCount * _pageSize;
            }

            chunk.Runs.Add(run);
        }

        chunk.RawLength = sound || random.Next(2) == 0 ? (uint)raw : (uint)random.Next(FrameLimits.MaxChunkRawBytes + 2);
        var bytes = new byte[sound ? raw : random.Next(65536)];
        random.NextBytes(bytes);
        if (random.Next(2) == 0 && bytes.Length > 0)
        {
            var encoded = new byte[LZ4Codec.MaximumOutputSize(bytes.Length)];
            var length = LZ4Codec.Encode(bytes, encoded, LZ4Level.L00_FAST);
            chunk.Codec = Codec.Lz4;
            chunk.Payload = ByteString.CopyFrom(encoded, 0, length);
        }
        else
        {
            chunk.Codec = random.Next(6) == 0 ? (Codec)random.Next(0, 5) : Codec.None;
            chunk.Payload = ByteString.CopyFrom(bytes);
        }

        return chunk;
    }

    private Hello RandomHello(Random random)
    {
        var hello = Hello(NewSessionId(random));
        switch (random.Next(6))
        {
            case 0:
                hello.VmId = RandomText(random);
                break;
            case 1:
                hello.RamSize = random.Next(2) == 0 ? hello.RamSize + (ulong)_pageSize : AnyULong(random);
                break;
            case 2:
                hello.PageSize = random.Next(2) == 0 ? 2 * 1024 * 1024 : (uint)random.Next();
                break;
            case 3:
                hello.ProtocolVersion = (uint)random.Next(2, 100);
                break;
            case 4:
                hello.SessionId = random.Next(2) == 0 ? string.Empty : RandomText(random);
                break;
        }

        return hello;
    }

    // --- mutations: each returns false when it found nothing to act on ---

    private static bool DropFrame(List<PrimaryFrame> frames, Random random)
    {
        if (frames.Count < 2)
        {
            return false;
        }

        frames.RemoveAt(random.Next(1, frames.Count));
        return true;
    }

    private static bool DuplicateFrame(List<PrimaryFrame> frames, Random random)
    {
        var i = random.Next(frames.Count);
        frames.Insert(i + 1, frames[i].Clone());
        return true;
    }

    private static bool SwapFrames(List<PrimaryFrame> frames, Random random)
    {
        if (frames.Count < 3)
        {
            return false;
        }

        var a = random.Next(1, frames.Count);
        var b = random.Next(2) == 0 ? Math.Min(frames.Count - 1, a + 1) : random.Next(1, frames.Count);
        (frames[a], frames[b]) = (frames[b], frames[a]);
        return a != b;
    }

    private static bool Truncate(List<PrimaryFrame> frames, Random random)
    {
        if (frames.Count < 2)
        {
            return false;
        }

        var keep = random.Next(1, frames.Count);
        frames.RemoveRange(keep, frames.Count - keep);
        return true;
    }

    private bool InsertRandomFrame(List<PrimaryFrame> frames, Random random)
    {
        var epoch = Epochs(frames).DefaultIfEmpty(1UL).ElementAt(0);
        frames.Insert(random.Next(1, frames.Count + 1), RandomFrame(random, epoch));
        return true;
    }

    private bool SecondHello(List<PrimaryFrame> frames, Random random)
    {
        var hello = frames[0].BodyCase == PrimaryFrame.BodyOneofCase.Hello ? frames[0].Clone() : new PrimaryFrame { Hello = Hello(NewSessionId(random)) };
        frames.Insert(random.Next(1, frames.Count + 1), hello);
        return true;
    }

    private static bool EpochNumber(List<PrimaryFrame> frames, Random random)
    {
        var i = Find(frames, random, f => f.BodyCase is PrimaryFrame.BodyOneofCase.Pages or PrimaryFrame.BodyOneofCase.DeviceState or PrimaryFrame.BodyOneofCase.Commit);
        if (i < 0)
        {
            return false;
        }

        var frame = frames[i];
        ulong Change(ulong e) => random.Next(5) switch
        {
            0 => e + 1,
            1 => e - 1,
            2 => 0,
            3 => ulong.MaxValue,
            _ => AnyULong(random),
        };
        switch (frame.BodyCase)
        {
            case PrimaryFrame.BodyOneofCase.Pages:
                frame.Pages.Epoch = Change(frame.Pages.Epoch);
                break;
            case PrimaryFrame.BodyOneofCase.DeviceState:
                frame.DeviceState.Epoch = Change(frame.DeviceState.Epoch);
                break;
            default:
                frame.Commit.Epoch = Change(frame.Commit.Epoch);
                break;
        }

        return true;
    }

    private bool HelloField(List<PrimaryFrame> frames, Random random)
    {
        if (frames[0].BodyCase != PrimaryFrame.BodyOneofCase.Hello)
        {
            return false;
        }

        var hello = frames[0].Hello;
        switch (random.Next(6))
        {
            case 0:
                hello.VmId = random.Next(2) == 0 ? hello.VmId + "x" : RandomText(random);
                break;
            case 1:
                hello.RamSize = random.Next(3) switch { 0 => hello.RamSize + (ulong)_pageSize, 1 => hello.RamSize - (ulong)_pageSize, _ => AnyULong(random) };
                break;
            case 2:
                hello.PageSize = random.Next(2) == 0 ? hello.PageSize * 2 : (uint)random.Next();
                break;
            case 3:
                hello.ProtocolVersion = random.Next(2) == 0 ? 0 : hello.ProtocolVersion + 1;
                break;
            case 4:
                hello.SessionId = random.Next(3) switch { 0 => string.Empty, 1 => new string('a', 65), _ => "bad\nsession" };
                break;
            default:
                // A different session: the backup must demand a full copy where the stream resumes.
                hello.SessionId = NewSessionId(random);
                break;
        }

        return true;
    }

    private bool RunOffset(List<PrimaryFrame> frames, Random random) => MutateRun(frames, random, run => run.Offset = Offset(random));

    private bool RunCount(List<PrimaryFrame> frames, Random random) => MutateRun(frames, random, run => run.PageCount = Count(random));

    private static bool RunZeroFlag(List<PrimaryFrame> frames, Random random) => MutateRun(frames, random, run => run.Zero = !run.Zero);

    private bool RunsAddedRemoved(List<PrimaryFrame> frames, Random random)
    {
        var i = Find(frames, random, f => f.BodyCase == PrimaryFrame.BodyOneofCase.Pages);
        if (i < 0)
        {
            return false;
        }

        var chunk = frames[i].Pages;
        switch (random.Next(4))
        {
            case 0 when chunk.Runs.Count > 0:
                chunk.Runs.RemoveAt(random.Next(chunk.Runs.Count));
                break;
            case 1:
                chunk.Runs.Insert(random.Next(chunk.Runs.Count + 1), new PageRun { Offset = Offset(random), PageCount = Count(random), Zero = random.Next(2) == 0 });
                break;
            case 2:
                // More runs than a chunk may carry.
                for (var n = FrameLimits.MaxRunsPerChunk + 1 - chunk.Runs.Count; n > 0; n--)
                {
                    chunk.Runs.Add(new PageRun { Offset = 0, PageCount = 1, Zero = true });
                }

                break;
            default:
                if (chunk.Runs.Count > 1)
                {
                    var a = random.Next(chunk.Runs.Count);
                    var b = random.Next(chunk.Runs.Count);
                    (chunk.Runs[a], chunk.Runs[b]) = (chunk.Runs[b], chunk.Runs[a]);
                }

                break;
        }

        return true;
    }

    private bool RawLength(List<PrimaryFrame> frames, Random random)
    {
        var i = Find(frames, random, f => f.BodyCase == PrimaryFrame.BodyOneofCase.Pages);
        if (i < 0)
        {
            return false;
        }

        var chunk = frames[i].Pages;
        chunk.RawLength = random.Next(5) switch
        {
            0 => chunk.RawLength + (uint)_pageSize,
            1 => chunk.RawLength - (uint)_pageSize,
            2 => 0,
            3 => uint.MaxValue,
            _ => (uint)random.Next(),
        };
        return true;
    }

    private static bool CodecField(List<PrimaryFrame> frames, Random random)
    {
        var i = Find(frames, random, f => f.BodyCase == PrimaryFrame.BodyOneofCase.Pages);
        if (i < 0)
        {
            return false;
        }

        var chunk = frames[i].Pages;
        chunk.Codec = random.Next(3) switch
        {
            0 => chunk.Codec == Codec.Lz4 ? Codec.None : Codec.Lz4,
            1 => Codec.Unspecified,
            _ => (Codec)random.Next(3, 1000),
        };
        return true;
    }

    private static bool Payload(List<PrimaryFrame> frames, Random random)
    {
        var i = Find(frames, random, f => f.BodyCase == PrimaryFrame.BodyOneofCase.Pages && !f.Pages.Payload.IsEmpty);
        if (i < 0)
        {
            return false;
        }

        var chunk = frames[i].Pages;
        var bytes = chunk.Payload.ToByteArray();
        switch (random.Next(6))
        {
            case 0:
                bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                break;
            case 1:
                for (var n = 1 + random.Next(16); n > 0; n--)
                {
                    bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                }

                break;
            case 2:
                bytes = bytes[..random.Next(bytes.Length)];
                break;
            case 3:
                var longer = new byte[bytes.Length + 1 + random.Next(4096)];
                random.NextBytes(longer);
                bytes.CopyTo(longer, 0);
                bytes = longer;
                break;
            case 4:
                bytes = new byte[random.Next(65536)];
                random.NextBytes(bytes);
                break;
            default:
                bytes = [];
                break;
        }

        chunk.Payload = ByteString.CopyFrom(bytes);
        return true;
    }

    /// <summary>A well-formed chunk with other page contents: only the digest can tell.</summary>
    private static bool PayloadReencoded(List<PrimaryFrame> frames, Random random)
    {
        var i = Find(frames, random, f => f.BodyCase == PrimaryFrame.BodyOneofCase.Pages && f.Pages.RawLength is > 0 and <= FrameLimits.MaxChunkRawBytes);
        if (i < 0)
        {
            return false;
        }

        var chunk = frames[i].Pages;
        var raw = new byte[chunk.RawLength];
        random.NextBytes(raw.AsSpan(0, Math.Min(raw.Length, 1 + random.Next(64))));
        var encoded = new byte[LZ4Codec.MaximumOutputSize(raw.Length)];
        var length = LZ4Codec.Encode(raw, encoded, LZ4Level.L00_FAST);
        chunk.Codec = Codec.Lz4;
        chunk.Payload = ByteString.CopyFrom(encoded, 0, length);
        return true;
    }

    private static bool DeviceStateField(List<PrimaryFrame> frames, Random random)
    {
        var i = Find(frames, random, f => f.BodyCase == PrimaryFrame.BodyOneofCase.DeviceState);
        if (i < 0)
        {
            return false;
        }

        var chunk = frames[i].DeviceState;
        switch (random.Next(5))
        {
            case 0:
                chunk.Offset = random.Next(2) == 0 ? chunk.Offset + 1 : AnyULong(random);
                break;
            case 1:
                chunk.Data = ByteString.Empty;
                break;
            case 2:
                chunk.Data = ByteString.CopyFrom(chunk.Data.Span[..random.Next(chunk.Data.Length)]);
                break;
            case 3:
                chunk.Data = RandomBytes(random, random.Next(1, 4) * 300_000);
                break;
            default:
                var bytes = chunk.Data.ToByteArray();
                if (bytes.Length > 0)
                {
                    bytes[random.Next(bytes.Length)] ^= 0x55;
                }

                chunk.Data = ByteString.CopyFrom(bytes);
                break;
        }

        return true;
    }

    private static bool CommitField(List<PrimaryFrame> frames, Random random)
    {
        var i = Find(frames, random, f => f.BodyCase == PrimaryFrame.BodyOneofCase.Commit);
        if (i < 0)
        {
            return false;
        }

        var commit = frames[i].Commit;
        var delta = random.Next(2) == 0 ? 1UL : ulong.MaxValue; // +1 or -1
        switch (random.Next(9))
        {
            case 0:
                commit.PageCount += delta;
                break;
            case 1:
                commit.ZeroPageCount += delta;
                break;
            case 2:
                commit.ChunkCount += delta;
                break;
            case 3:
                commit.DeviceStateSize += delta;
                break;
            case 4:
                var digest = commit.ContentDigest.ToByteArray();
                if (digest.Length > 0)
                {
                    digest[random.Next(digest.Length)] ^= (byte)(1 << random.Next(8));
                }

                commit.ContentDigest = ByteString.CopyFrom(digest);
                break;
            case 5:
                commit.Full = !commit.Full;
                break;
            case 6:
                commit.ContentDigest = random.Next(2) == 0 ? ByteString.Empty : RandomBytes(random, random.Next(64));
                break;
            case 7:
                commit.RamDigest = RandomBytes(random, random.Next(2048));
                break;
            default:
                // Harmless for the backup: a commit still valid.
                commit.StoppedAtUnixMs = random.NextInt64();
                break;
        }

        return true;
    }

    private static bool CommitEarly(List<PrimaryFrame> frames, Random random)
    {
        var i = Find(frames, random, f => f.BodyCase == PrimaryFrame.BodyOneofCase.Commit);
        if (i < 2)
        {
            return false;
        }

        var commit = frames[i];
        frames.RemoveAt(i);
        frames.Insert(random.Next(1, i), commit);
        return true;
    }

    /// <summary>Bit rot in the serialized frame; what protobuf cannot parse ends the call, as gRPC would.</summary>
    private static bool SerializedBytes(List<PrimaryFrame> frames, Random random)
    {
        var i = random.Next(frames.Count);
        var bytes = frames[i].ToByteArray();
        if (bytes.Length == 0)
        {
            return false;
        }

        for (var n = 1 + random.Next(8); n > 0; n--)
        {
            bytes[random.Next(bytes.Length)] = random.Next(2) == 0 ? (byte)random.Next(256) : (byte)(bytes[random.Next(bytes.Length)] ^ (1 << random.Next(8)));
        }

        try
        {
            frames[i] = PrimaryFrame.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException)
        {
            frames.RemoveRange(i, frames.Count - i);
        }

        return true;
    }

    private static bool ReplayedEpoch(List<PrimaryFrame> frames, Random random)
    {
        var commits = Enumerable.Range(0, frames.Count).Where(i => frames[i].BodyCase == PrimaryFrame.BodyOneofCase.Commit).ToList();
        if (commits.Count == 0)
        {
            return false;
        }

        // Everything up to a commit, again: an old epoch sent a second time.
        var end = commits[random.Next(commits.Count)];
        var start = end;
        while (start > 1 && frames[start - 1].BodyCase is PrimaryFrame.BodyOneofCase.Pages or PrimaryFrame.BodyOneofCase.DeviceState)
        {
            start--;
        }

        frames.InsertRange(end + 1, frames.GetRange(start, end - start + 1).Select(f => f.Clone()));
        return true;
    }

    /// <summary>A commit from another recorded epoch: right shape, wrong numbers and digest.</summary>
    private bool ForeignCommit(List<PrimaryFrame> frames, Random random)
    {
        var i = Find(frames, random, f => f.BodyCase == PrimaryFrame.BodyOneofCase.Commit);
        if (i < 0)
        {
            return false;
        }

        var epoch = frames[i].Commit.Epoch;
        var source = Pick(random.Next(2) == 0 ? _corpus.Incrementals : _corpus.FullCopies, random).As(epoch);
        frames[i] = source[^1];
        return true;
    }

    private static bool OversizedFrame(List<PrimaryFrame> frames, Random random)
    {
        var i = Find(frames, random, f => f.BodyCase == PrimaryFrame.BodyOneofCase.Pages);
        if (i < 0)
        {
            return false;
        }

        frames[i].Pages.Payload = RandomBytes(random, FrameLimits.MaxFrameBytes + random.Next(1, 4096));
        return true;
    }

    private static bool MutateRun(List<PrimaryFrame> frames, Random random, Action<PageRun> mutate)
    {
        var i = Find(frames, random, f => f.BodyCase == PrimaryFrame.BodyOneofCase.Pages && f.Pages.Runs.Count > 0);
        if (i < 0)
        {
            return false;
        }

        var runs = frames[i].Pages.Runs;
        mutate(runs[random.Next(runs.Count)]);
        return true;
    }

    private ulong Offset(Random random)
    {
        var ram = (ulong)_ramSize;
        var page = (ulong)_pageSize;
        return random.Next(11) switch
        {
            0 => 0,
            1 => ram - page,
            2 => ram,
            3 => ram + page,
            4 => ulong.MaxValue - page + 1,
            5 => ulong.MaxValue,
            6 => 1UL << 63,
            7 => (ulong)random.NextInt64(_ramSize / _pageSize) * page + (ulong)random.Next(1, _pageSize),
            8 => page - 1,
            _ => (ulong)random.NextInt64(_ramSize / _pageSize) * page,
        };
    }

    private uint Count(Random random) => random.Next(8) switch
    {
        0 => 0,
        1 => 1,
        2 => (uint)(_ramSize / _pageSize),
        3 => (uint)(_ramSize / _pageSize) + 1,
        4 => uint.MaxValue,
        5 => uint.MaxValue / (uint)_pageSize + 1,
        6 => (uint)(FrameLimits.MaxChunkRawBytes / _pageSize) + 1,
        _ => (uint)random.Next(1, 200),
    };

    private static IEnumerable<ulong> Epochs(List<PrimaryFrame> frames) => frames.Select(f => f.BodyCase switch
    {
        PrimaryFrame.BodyOneofCase.Pages => f.Pages.Epoch,
        PrimaryFrame.BodyOneofCase.DeviceState => f.DeviceState.Epoch,
        PrimaryFrame.BodyOneofCase.Commit => f.Commit.Epoch,
        _ => (ulong?)null,
    }).OfType<ulong>();

    private static int Find(List<PrimaryFrame> frames, Random random, Func<PrimaryFrame, bool> match)
    {
        var matches = 0;
        var chosen = -1;
        for (var i = 0; i < frames.Count; i++)
        {
            // Reservoir sampling: a uniform pick without a list.
            if (match(frames[i]) && random.Next(++matches) == 0)
            {
                chosen = i;
            }
        }

        return chosen;
    }

    private static RecordedEpoch Pick(IReadOnlyList<RecordedEpoch> epochs, Random random) => epochs[random.Next(epochs.Count)];

    private static string NewSessionId(Random random) => random.NextInt64().ToString("x16", System.Globalization.CultureInfo.InvariantCulture) + random.NextInt64().ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    private static ulong AnyULong(Random random) => (ulong)random.NextInt64() ^ ((ulong)random.Next(2) << 63);

    private static ulong Small(Random random) => random.Next(4) == 0 ? AnyULong(random) : (ulong)random.Next(2000);

    private static ByteString RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return ByteString.CopyFrom(bytes);
    }

    private static string RandomText(Random random)
    {
        var chars = new char[random.Next(0, random.Next(10) == 0 ? 5000 : 40)];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = (char)random.Next(1, random.Next(4) == 0 ? 0xD7FF : 128);
        }

        return new string(chars);
    }
}
