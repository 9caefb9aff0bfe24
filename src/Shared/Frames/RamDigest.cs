using System.IO.Hashing;
using McGrpc.Shared.Native;

namespace McGrpc.Shared.Frames;

/// <summary>
/// Digest mode: hashes of all guest RAM, computed on the primary while the
/// guest is stopped and on the backup after applying. RAM is hashed in 16 MiB
/// slices in parallel; the slice hashes travel in the Commit, so a mismatch
/// names the slices that differ instead of just "somewhere".
/// </summary>
internal static class RamDigest
{
    public const int SliceBytes = 16 * 1024 * 1024;

    /// <summary>XxHash128 of every 16 MiB slice, concatenated (16 bytes per slice).</summary>
    public static byte[] Compute(MappedMemory memory, long length)
    {
        var slices = (int)((length + SliceBytes - 1) / SliceBytes);
        var sliceHashes = new byte[slices * 16];
        Parallel.For(0, slices, slice =>
        {
            var offset = (long)slice * SliceBytes;
            var size = (int)Math.Min(SliceBytes, length - offset);
            XxHash128.Hash(memory.Read(offset, size), sliceHashes.AsSpan(slice * 16, 16));
        });
        return sliceHashes;
    }

    /// <summary>Byte offsets of the slices whose hashes differ (all of them when the layouts differ).</summary>
    public static IReadOnlyList<long> DifferingSlices(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual)
    {
        var result = new List<long>();
        var slices = Math.Max(expected.Length, actual.Length) / 16;
        for (var slice = 0; slice < slices; slice++)
        {
            var at = slice * 16;
            if (at + 16 > expected.Length || at + 16 > actual.Length || !expected.Slice(at, 16).SequenceEqual(actual.Slice(at, 16)))
            {
                result.Add((long)slice * SliceBytes);
            }
        }

        return result;
    }

    /// <summary>One short hex string for logs and status: XxHash128 of the slice hashes.</summary>
    public static string ToHex(ReadOnlySpan<byte> sliceHashes) => Convert.ToHexStringLower(XxHash128.Hash(sliceHashes));
}
