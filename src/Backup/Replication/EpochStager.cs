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
/// chunk after each chunk is validated: there is no checkpoint yet to keep.
/// Not thread-safe: one session's receive loop owns it.
/// </summary>
internal sealed class EpochStager : IDisposable
{
    private readonly GuestRam _ram;
    private readonly PageChunkDecoder _decoder;
    private readonly MappedMemory _staging;
    private readonly long _maxDeviceStateBytes;
    private readonly byte[] _scratch = new byte[FrameLimits.MaxChunkRawBytes];
    private readonly List<StagedRun> _runs = [];
    private readonly ContentDigest _digest = new();
    private byte[] _deviceState = new byte[512 * 1024];
    private long _stagingUsed;

    public EpochStager(GuestRam ram, long maxStagingBytes, long maxDeviceStateBytes)
    {
        _ram = ram;
        _decoder = new PageChunkDecoder(ram.Size, ram.PageSize);
        var staging = maxStagingBytes > 0 ? Math.Min(maxStagingBytes, ram.Size) : ram.Size;
        _staging = MappedMemory.AllocateAnonymous(staging);
        _maxDeviceStateBytes = maxDeviceStateBytes;
    }

    /// <summary>The epoch being received, when one is open.</summary>
    public ulong? Epoch { get; private set; }

    public bool Full { get; private set; }

    public long Pages { get; private set; }

    public long ZeroPages { get; private set; }

    public long Chunks { get; private set; }

    public int DeviceStateLength { get; private set; }

    /// <summary>Bytes written straight into RAM by the full epoch in progress.</summary>
    public long FullBytesWritten { get; private set; }

    /// <summary>Opens epoch <paramref name="epoch"/>; the caller checked its number.</summary>
    public void Begin(ulong epoch, bool full)
    {
        Discard();
        Epoch = epoch;
        Full = full;
    }

    /// <summary>Validates and decodes a chunk; a full epoch's pages go to RAM now, others to staging.</summary>
    public void AddPages(PageChunk chunk)
    {
        var epoch = RequireOpen(chunk.Epoch, "page chunk");
        var rawLength = _decoder.ValidateRuns(chunk);
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
        var position = 0;
        foreach (var run in chunk.Runs)
        {
            var length = (int)(run.PageCount * (ulong)_ram.PageSize);
            var bytes = run.Zero ? ReadOnlySpan<byte>.Empty : target.Slice(position, length);
            _digest.AppendRun(run.Offset, run.PageCount, run.Zero, bytes);
            if (Full)
            {
                WriteToRam(run.Offset, run.PageCount, run.Zero, bytes);
                FullBytesWritten += (long)run.PageCount * _ram.PageSize;
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
        FullBytesWritten = 0;
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

    private readonly record struct StagedRun(ulong Offset, uint PageCount, bool Zero, long StagingOffset);
}
