using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using McGrpc.Shared.Frames;

namespace McGrpc.Fuzz;

/// <summary>
/// Real-shaped epochs to replay and mutate: full copies (RAM once, then
/// pre-copy rounds, as mc-primary sends them) and incremental epochs, encoded
/// with mc-primary's own encoder from a guest-like image (<see cref="Generate"/>)
/// or recorded from the RAM file of a running guest (<see cref="Record"/>).
/// </summary>
internal sealed class EpochCorpus
{
    private static readonly int[] ChunkSizes = [16 * 1024, 64 * 1024, 128 * 1024, FrameLimits.MaxChunkRawBytes];

    private EpochCorpus(IReadOnlyList<RecordedEpoch> fullCopies, IReadOnlyList<RecordedEpoch> incrementals, string source)
    {
        FullCopies = fullCopies;
        Incrementals = incrementals;
        Source = source;
    }

    public IReadOnlyList<RecordedEpoch> FullCopies { get; }

    public IReadOnlyList<RecordedEpoch> Incrementals { get; }

    /// <summary>Where the epochs come from, for the report.</summary>
    public string Source { get; }

    public int FrameCount => FullCopies.Sum(e => e.Frames.Count) + Incrementals.Sum(e => e.Frames.Count);

    public static EpochCorpus Generate(long ramSize, int pageSize, Random random, int fullCopies = 4, int incrementals = 48)
    {
        var image = new GuestImage((int)(ramSize / pageSize), pageSize, random);
        var full = new List<RecordedEpoch>();
        var incremental = new List<RecordedEpoch>();
        for (var f = 0; f < fullCopies; f++)
        {
            var builder = new EpochBuilder(pageSize, ChunkSizes[random.Next(ChunkSizes.Length)]);
            builder.Begin(0, full: true);
            builder.AddPages(image.Bytes, Enumerable.Range(0, image.PageCount));
            for (var round = random.Next(3); round > 0; round--)
            {
                // The guest ran while RAM was copied: pre-copy rounds resend what it wrote.
                builder.AddPages(image.Bytes, image.Dirty());
            }

            full.Add(builder.Finish(DeviceState(random), DeviceChunk(random)));
            for (var i = 0; i < incrementals / fullCopies; i++)
            {
                incremental.Add(EpochBuilder.Build(0, full: false, image.Bytes, pageSize, image.Dirty(), DeviceState(random), ChunkSizes[random.Next(ChunkSizes.Length)], DeviceChunk(random)));
            }
        }

        return new EpochCorpus(full, incremental, $"generated guest-like image of {ramSize / 1024} KiB");
    }

    /// <summary>
    /// Records epochs from a running guest: <paramref name="ramSize"/> bytes
    /// of its RAM file from <paramref name="offset"/>, snapshotted every
    /// <paramref name="interval"/>; the pages that changed between two
    /// snapshots are an epoch, as a dirty tracker would report them.
    /// </summary>
    public static EpochCorpus Record(string ramFile, long offset, long ramSize, int pageSize, Random random, int epochs, TimeSpan interval)
    {
        var previous = Snapshot(ramFile, offset, ramSize);
        var full = new List<RecordedEpoch>
        {
            EpochBuilder.Build(0, full: true, previous, pageSize, Enumerable.Range(0, (int)(ramSize / pageSize)), DeviceState(random), ChunkSizes[random.Next(ChunkSizes.Length)], DeviceChunk(random)),
        };
        var incremental = new List<RecordedEpoch>();
        var deadline = Stopwatch.GetTimestamp() + (long)(Math.Max(10, epochs * interval.TotalSeconds * 4) * Stopwatch.Frequency);
        while (incremental.Count < epochs && Stopwatch.GetTimestamp() < deadline)
        {
            Thread.Sleep(interval);
            var current = Snapshot(ramFile, offset, ramSize);
            var changed = new List<int>();
            for (var page = 0; page < ramSize / pageSize; page++)
            {
                if (!current.AsSpan(page * pageSize, pageSize).SequenceEqual(previous.AsSpan(page * pageSize, pageSize)))
                {
                    changed.Add(page);
                }
            }

            if (changed.Count > 0)
            {
                incremental.Add(EpochBuilder.Build(0, full: false, current, pageSize, changed, DeviceState(random), ChunkSizes[random.Next(ChunkSizes.Length)], DeviceChunk(random)));
                previous = current;
            }
        }

        if (incremental.Count == 0)
        {
            throw new InvalidOperationException($"{ramFile} did not change within the recording time: point --record-ram at the RAM file of a running guest, and --record-offset at memory it writes.");
        }

        full.Add(EpochBuilder.Build(0, full: true, previous, pageSize, Enumerable.Range(0, (int)(ramSize / pageSize)), DeviceState(random), ChunkSizes[random.Next(ChunkSizes.Length)], DeviceChunk(random)));
        return new EpochCorpus(full, incremental, $"recorded from {ramFile} at 0x{offset:x}, {incremental.Count} epochs");
    }

    /// <summary>A device-state blob shaped like QEMU's migration stream: magic, version, sections; mostly 2-40 KiB, sometimes the ~300 KB of a real q35 VM.</summary>
    public static byte[] DeviceState(Random random)
    {
        var length = random.Next(10) == 0 ? random.Next(200_000, 330_000) : random.Next(2048, 40_000);
        var blob = new byte[length];
        BinaryPrimitives.WriteUInt32BigEndian(blob, 0x5145564d); // "QEVM"
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(4), 3);
        var at = 8;
        var section = 0;
        while (at < length - 64)
        {
            var name = Encoding.ASCII.GetBytes($"dev{section++}/state");
            blob[at++] = 0x04; // QEMU_VM_SECTION_FULL
            blob[at++] = (byte)name.Length;
            name.CopyTo(blob.AsSpan(at));
            at += name.Length;
            var body = Math.Min(length - at, random.Next(16, 4096));
            if (random.Next(3) == 0)
            {
                random.NextBytes(blob.AsSpan(at, body));
            }

            at += body;
        }

        return blob;
    }

    private static int DeviceChunk(Random random) => random.Next(3) == 0 ? random.Next(1024, 64 * 1024) : FrameLimits.DeviceStateChunkBytes;

    private static byte[] Snapshot(string ramFile, long offset, long length)
    {
        var bytes = new byte[length];
        using var file = File.OpenHandle(ramFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var read = RandomAccess.Read(file, bytes, offset);
        if (read != length)
        {
            throw new InvalidOperationException($"{ramFile} has only {read} bytes at 0x{offset:x}; {length} needed.");
        }

        return bytes;
    }
}
