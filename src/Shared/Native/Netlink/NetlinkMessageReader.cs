using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native.Netlink;

/// <summary>Walks the messages in one datagram received from a netlink socket.</summary>
internal ref struct NetlinkMessageReader
{
    private ReadOnlySpan<byte> _remaining;

    public NetlinkMessageReader(ReadOnlySpan<byte> datagram)
    {
        _remaining = datagram;
    }

    /// <summary>
    /// The next message and its payload (everything after the header). Throws
    /// when a length field points outside the datagram: the kernel never sends
    /// that, so it means this reader is wrong and must not guess.
    /// </summary>
    public bool TryRead(out NetlinkMessageHeader header, out ReadOnlySpan<byte> payload)
    {
        if (_remaining.Length < NetlinkConstants.HeaderLength)
        {
            header = default;
            payload = default;
            return false;
        }

        header = new NetlinkMessageHeader(
            MemoryMarshal.Read<uint>(_remaining),
            MemoryMarshal.Read<ushort>(_remaining[4..]),
            MemoryMarshal.Read<ushort>(_remaining[6..]),
            MemoryMarshal.Read<uint>(_remaining[8..]),
            MemoryMarshal.Read<uint>(_remaining[12..]));
        if (header.Length < NetlinkConstants.HeaderLength || header.Length > _remaining.Length)
        {
            throw new NetlinkException(
                "decoding a netlink reply",
                0,
                hint: $"message length {header.Length} does not fit the {_remaining.Length} bytes left in the datagram");
        }

        payload = _remaining[NetlinkConstants.HeaderLength..(int)header.Length];
        var next = Math.Min(NetlinkMessageWriter.Align((int)header.Length), _remaining.Length);
        _remaining = _remaining[next..];
        return true;
    }
}
