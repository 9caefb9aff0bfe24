using System.Buffers.Binary;
using System.IO.Hashing;

namespace McGrpc.Shared.Frames;

/// <summary>
/// Digest of an epoch's page content in send order, computed the same way on
/// both sides: per run its offset, page count and zero flag, then the decoded
/// bytes of a non-zero run. A frame lost, reordered or altered changes it.
/// </summary>
internal sealed class ContentDigest
{
    private readonly XxHash128 _hash = new();
    private readonly byte[] _header = new byte[13];

    public void Reset() => _hash.Reset();

    public void AppendRun(ulong offset, uint pageCount, bool zero, ReadOnlySpan<byte> bytes)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_header, offset);
        BinaryPrimitives.WriteUInt32LittleEndian(_header.AsSpan(8), pageCount);
        _header[12] = zero ? (byte)1 : (byte)0;
        _hash.Append(_header);
        if (!zero)
        {
            _hash.Append(bytes);
        }
    }

    public byte[] Finish() => _hash.GetCurrentHash();
}
