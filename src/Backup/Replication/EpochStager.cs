using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;
using McGrpc.Shared.Memory;
using McGrpc.Shared.Native;

namespace McGrpc.Backup.Replication;

/// <summary>
/// Receives one epoch at a time and decides what reaches guest RAM.
/// An incremental epoch is decoded into a staging area and applied only after
/// its Commit checked out (counts, sizes, digest), so RAM always holds exactly
/// one checkpoint. A full epoch (the initial copy) is written to RAM chunk by
/// chunk after each chunk is validated: the backup has no checkpoint to keep
/// once the first chunk is written (see <see cref="Begin"/>). Every write lands
/// inside the RAM mapping or the staging mapping, at offsets the decoder
/// checked against RAM size; one epoch's pages, staged bytes and device state
/// are bounded. Not thread-safe: one session's receive loop owns it.
/// </summary>
internal sealed class EpochStager : IDisposable
{
    /// <summary>Default of <see cref="MaxFullCopyPasses"/>: mc-primary sends RAM once plus at most 30 pre-copy rounds by default.</summary>
    public const int DefaultFullCopyPasses = 64;

    private readonly GuestRam _ram;
    private readonly PageChunkDecoder _decoder;
    private readonly MappedMemory _staging;
    private readonly long _maxDeviceStateBytes;
    private readonly byte[] _scratch = new byte[FrameLimits.MaxChunkRawBytes];
    private readonly List<StagedRun> _runs = [];
    private readonly ContentDigest _digest = new();
    private readonly long _maxIncrementalPages;
    private readonly long _maxFullPages;
    private byte[] _deviceState = new byte[512 * 1024];
    private ulong[]? _fullCoverage;
    private long _fullCoveredPages;
    private long _stagingUsed;
    private Action? _beforeFirstRamWrite;

    /// <param name="ram">The guest RAM that verified epochs are written to.</param>
    /// <param name="maxStagingBytes">Staging memory for one incremental epoch; 0 or more than RAM means RAM size.</param>
    /// <param name="maxDeviceStateBytes">Largest device-state blob of one epoch.</param>
    /// <param name="maxFullCopyPasses">A full copy may send at most this many times RAM's page count (pre-copy rounds resend pages).</param>
    public EpochStager(GuestRam ram, long maxStagingBytes, long maxDeviceStateBytes, int maxFullCopyPasses = DefaultFullCopyPasses)
    {
        _ram = ram;
        _decoder = new PageChunkDecoder(ram.Size, ram.PageSize);
        var staging = maxStagingBytes > 0 ? Math.Min(maxStagingBytes, ram.Size) : ram.Size;
        _staging = MappedMemory.AllocateAnonymous(staging);
        _maxDeviceStateBytes = Math.Min(maxDeviceStateBytes, Array.MaxLength);
        MaxFullCopyPasses = Math.Max(1, maxFullCopyPasses);

        // An incremental epoch sends each dirty page once: never more pages
        // than RAM has. Both bounds also bound the chunks of an epoch (each
        // carries at least one page) and so the bookkeeping kept for it.
        _maxIncrementalPages = ram.PageCount;
        _maxFullPages = ram.PageCount * MaxFullCopyPasses;
    }

    /// <summary>Bytes of staging memory: one incremental epoch's decoded pages must fit.</summary>
    public long StagingCapacity => _staging.Length;

    public int MaxFullCopyPasses { get; }

    /// <summary>The epoch being received, when one is open.</summary>
    public ulong? Epoch { get; private set; }

    public bool Full { get; private set; }

    public long Pages { get; private set; }

    public long ZeroPages { get; private set; }

    public long Chunks { get; private set; }

    public int DeviceStateLength { get; private set; }

    /// <summary>A full copy has written into RAM: whatever RAM held before is gone.</summary>
    public bool RamTouched { get; private set; }

    /// <summary>
    /// Opens epoch <paramref name="epoch"/>; the caller checked its number
    /// (<see cref="EpochRules.Open"/>). For a full copy,
    /// <paramref name="beforeFirstRamWrite"/> runs once, after the first chunk
    /// checked out and before its pages reach RAM: the moment the previous
    /// checkpoint stops being one. It may throw to stop the write.
    /// </summary>
    public void Begin(ulong epoch, EpochKind kind, Action? beforeFirstRamWrite = null)
    {
        Discard();
        Epoch = epoch;
        Full = kind == EpochKind.Full;
        _beforeFirstRamWrite = Full ? beforeFirstRamWrite : null;
    }

    /// <summary>Validates and decodes a chunk; a full epoch's pages go to RAM now, others to staging.</summary>
    public void AddPages(PageChunk chunk)
    {
        var epoch = RequireOpen(chunk.Epoch, "page chunk");
        var rawLength = _decoder.ValidateRuns(chunk);
        ulong chunkPages = 0;
        foreach (var run in chunk.Runs)
        {
            chunkPages += run.PageCount;
        }

        var maxPages = Full ? _maxFullPages : _maxIncrementalPages;
        if ((ulong)Pages + chunkPages > (ulong)maxPages)
        {
            throw new FrameFormatException(Full
                ? $"Full copy epoch {epoch} sends more than {maxPages:#,0} pages, {MaxFullCopyPasses} times guest RAM (Backup:MaxFullCopyPasses)."
                : $"Epoch {epoch} sends more than {maxPages:#,0} pages, the page count of guest RAM; an incremental epoch sends each page at most once.");
        }

        Span<byte> target;
        if (Full)
        {
            target = _scratch;
        }
        else
        {
            if (_stagingUsed + rawLength > _staging.Length)
            {
                throw new FrameFormatException($"Epoch {epoch} needs more than the {_staging.Length:#,0}-byte staging limit (Backup:MaxStagingBytes).");
            }

            target = rawLength == 0 ? [] : _staging.Write(_stagingUsed, rawLength);
        }

        _decoder.Decode(chunk, target);

        // Everything about the chunk is known to be sound from here on.
        if (Full && !RamTouched)
        {
            _beforeFirstRamWrite?.Invoke();
            RamTouched = true;
        }

        var position = 0;
        foreach (var run in chunk.Runs)
        {
            var length = (int)(run.PageCount * (ulong)_ram.PageSize);
            var bytes = run.Zero ? ReadOnlySpan<byte>.Empty : target.Slice(position, length);
            _digest.AppendRun(run.Offset, run.PageCount, run.Zero, bytes);
            if (Full)
            {
                WriteToRam(run.Offset, run.PageCount, run.Zero, bytes);
                Cover((long)(run.Offset / (ulong)_ram.PageSize), run.PageCount);
            }
            else
            {
                _runs.Add(new StagedRun(run.Offset, run.PageCount, run.Zero, run.Zero ? -1 : _stagingUsed + position));
            }

            if (!run.Zero)
            {
                position += length;
            }

            Pages += run.PageCount;
            if (run.Zero)
            {
                ZeroPages += run.PageCount;
            }
        }

        if (!Full)
        {
            _stagingUsed += rawLength;
        }

        Chunks++;
    }

    public void AddDeviceState(DeviceStateChunk chunk)
    {
        var epoch = RequireOpen(chunk.Epoch, "device-state chunk");
        if (chunk.Offset != (ulong)DeviceStateLength)
        {
            throw new FrameFormatException($"Device-state chunk of epoch {epoch} starts at {chunk.Offset:#,0}, expected {DeviceStateLength:#,0}.");
        }

        if (chunk.Data.Length == 0 || chunk.Data.Length > FrameLimits.MaxFrameBytes)
        {
            throw new FrameFormatException($"Device-state chunk of epoch {epoch} has {chunk.Data.Length} bytes; 1..{FrameLimits.MaxFrameBytes} expected.");
        }

        var needed = (long)DeviceStateLength + chunk.Data.Length;
        if (needed > _maxDeviceStateBytes)
        {
            throw new FrameFormatException($"Device state of epoch {epoch} exceeds the {_maxDeviceStateBytes:#,0}-byte limit (Backup:MaxDeviceStateBytes).");
        }

        if (needed > _deviceState.Length)
        {
            Array.Resize(ref _deviceState, (int)Math.Min(_maxDeviceStateBytes, Math.Max(needed, _deviceState.Length * 2L)));
        }

        chunk.Data.Span.CopyTo(_deviceState.AsSpan(DeviceStateLength));
        DeviceStateLength = (int)needed;
    }

    /// <summary>Checks the Commit against everything received; throws on any disagreement and applies nothing.</summary>
    public void Verify(Commit commit)
    {
        var epoch = RequireOpen(commit.Epoch, "commit");
        var problems = new List<string>();
        if (commit.Full != Full)
        {
            problems.Add($"full={commit.Full} but the epoch was received as {(Full ? "a full copy" : "incremental")}");
        }

        if (commit.PageCount != (ulong)Pages)
        {
            problems.Add($"page_count {commit.PageCount} but {Pages} pages arrived");
        }

        if (commit.ZeroPageCount != (ulong)ZeroPages)
        {
            problems.Add($"zero_page_count {commit.ZeroPageCount} but {ZeroPages} zero pages arrived");
        }

        if (commit.ChunkCount != (ulong)Chunks)
        {
            problems.Add($"chunk_count {commit.ChunkCount} but {Chunks} chunks arrived");
        }

        if (commit.DeviceStateSize != (ulong)DeviceStateLength)
        {
            problems.Add($"device_state_size {commit.DeviceStateSize} but {DeviceStateLength} bytes arrived");
        }

        if (DeviceStateLength == 0)
        {
            problems.Add("no device state");
        }

        // A full copy is the whole checkpoint: a page it never sent would keep
        // whatever RAM held before, a mix of two states.
        if (Full && _fullCoveredPages != _ram.PageCount)
        {
            problems.Add($"the full copy sent {_fullCoveredPages:#,0} of the {_ram.PageCount:#,0} pages of guest RAM");
        }

        if (problems.Count == 0 && !commit.ContentDigest.Span.SequenceEqual(_digest.Finish()))
        {
            problems.Add("content digest differs from the frames received");
        }

        if (problems.Count > 0)
        {
            throw new FrameFormatException($"Commit of epoch {epoch} rejected: {string.Join("; ", problems)}.");
        }
    }

    /// <summary>Writes a verified incremental epoch into guest RAM and returns its device state.</summary>
    public ReadOnlySpan<byte> Apply()
    {
        foreach (var run in _runs)
        {
            var bytes = run.Zero ? ReadOnlySpan<byte>.Empty : _staging.Read(run.StagingOffset, (int)(run.PageCount * (ulong)_ram.PageSize));
            WriteToRam(run.Offset, run.PageCount, run.Zero, bytes);
        }

        return DeviceState;
    }

    public ReadOnlySpan<byte> DeviceState => _deviceState.AsSpan(0, DeviceStateLength);

    /// <summary>Forgets the open epoch; nothing of it was applied (a full epoch's RAM writes are the caller's concern).</summary>
    public void Discard()
    {
        Epoch = null;
        Full = false;
        Pages = 0;
        ZeroPages = 0;
        Chunks = 0;
        DeviceStateLength = 0;
        RamTouched = false;
        _beforeFirstRamWrite = null;
        if (_fullCoveredPages > 0)
        {
            Array.Clear(_fullCoverage!);
            _fullCoveredPages = 0;
        }

        _stagingUsed = 0;
        _runs.Clear();
        _digest.Reset();
    }

    public void Dispose() => _staging.Dispose();

    private ulong RequireOpen(ulong frameEpoch, string what)
    {
        if (Epoch is not { } epoch)
        {
            throw new FrameFormatException($"A {what} of epoch {frameEpoch} arrived with no epoch open.");
        }

        if (frameEpoch != epoch)
        {
            throw new FrameFormatException($"A {what} of epoch {frameEpoch} arrived while epoch {epoch} is open.");
        }

        return epoch;
    }

    private void WriteToRam(ulong offset, uint pageCount, bool zero, ReadOnlySpan<byte> bytes)
    {
        if (!zero)
        {
            // Runs with bytes come from one chunk: at most MaxChunkRawBytes long.
            bytes.CopyTo(_ram.Memory.Write((long)offset, bytes.Length));
            return;
        }

        var pageSize = _ram.PageSize;
        for (uint i = 0; i < pageCount; i++)
        {
            var page = _ram.Memory.Write((long)offset + ((long)i * pageSize), pageSize);
            // Reading a never-written tmpfs page costs nothing; writing zeros
            // would allocate it. Only clear pages that hold something.
            if (page.ContainsAnyExcept((byte)0))
            {
                page.Clear();
            }
        }
    }

    /// <summary>Marks pages [first, first + count) as sent by the full copy in progress.</summary>
    private void Cover(long first, uint count)
    {
        _fullCoverage ??= new ulong[(_ram.PageCount + 63) / 64];
        for (var page = first; page < first + count; page++)
        {
            ref var word = ref _fullCoverage[page >> 6];
            var bit = 1UL << (int)(page & 63);
            if ((word & bit) == 0)
            {
                word |= bit;
                _fullCoveredPages++;
            }
        }
    }

    private readonly record struct StagedRun(ulong Offset, uint PageCount, bool Zero, long StagingOffset);
}
