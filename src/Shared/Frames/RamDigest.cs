using System.IO.Hashing;
using McGrpc.Shared.Native;

namespace McGrpc.Shared.Frames;

/// <summary>
/// Digest mode: a hash of all guest RAM, computed on the primary while the
/// guest is stopped and on the backup after applying. Slices are hashed in
/// parallel and the slice hashes combined in order, so the result does not
/// depend on the number of cores.
/// </summary>
internal static class RamDigest
{
    private const int SliceBytes = 16 * 1024 * 1024;

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
        return XxHash128.Hash(sliceHashes);
    }

    public static string ToHex(ReadOnlySpan<byte> digest) => Convert.ToHexStringLower(digest);
}
