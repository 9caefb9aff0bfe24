using System.Runtime.InteropServices;
using System.Text;

namespace McGrpc.Shared.Native.Netlink;

/// <summary>
/// Walks a run of rtattr/nlattr records. Stops quietly at the first record
/// whose length does not fit, so that probing an attribute that might or
/// might not be nested (as the filter dump parser does) cannot throw.
/// </summary>
internal ref struct NetlinkAttributeReader
{
    private ReadOnlySpan<byte> _remaining;

    public NetlinkAttributeReader(ReadOnlySpan<byte> attributes)
    {
        _remaining = attributes;
    }

    /// <summary>True when every byte was consumed by well-formed records.</summary>
    public readonly bool AtEnd => _remaining.IsEmpty;

    /// <summary>The next attribute; <paramref name="type"/> has the NESTED and BYTEORDER bits removed.</summary>
    public bool TryRead(out ushort type, out ReadOnlySpan<byte> payload)
    {
        type = 0;
        payload = default;
        if (_remaining.Length < NetlinkConstants.AttributeHeaderLength)
        {
            return false;
        }

        var length = MemoryMarshal.Read<ushort>(_remaining);
        if (length < NetlinkConstants.AttributeHeaderLength || length > _remaining.Length)
        {
            return false;
        }

        type = (ushort)(MemoryMarshal.Read<ushort>(_remaining[2..]) & NetlinkConstants.NlaTypeMask);
        payload = _remaining[NetlinkConstants.AttributeHeaderLength..length];
        _remaining = _remaining[Math.Min(NetlinkMessageWriter.Align(length), _remaining.Length)..];
        return true;
    }

    /// <summary>The payload of the first attribute of <paramref name="type"/>.</summary>
    public static bool TryFind(ReadOnlySpan<byte> attributes, ushort type, out ReadOnlySpan<byte> payload)
    {
        var reader = new NetlinkAttributeReader(attributes);
        while (reader.TryRead(out var found, out payload))
        {
            if (found == type)
            {
                return true;
            }
        }

        payload = default;
        return false;
    }

    /// <summary>A NUL-terminated (or not) ASCII string attribute.</summary>
    public static string ReadString(ReadOnlySpan<byte> payload)
    {
        var end = payload.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? payload : payload[..end]);
    }

    public static uint ReadUInt32(ReadOnlySpan<byte> payload) =>
        payload.Length >= 4 ? MemoryMarshal.Read<uint>(payload) : 0;
}
