using System.Buffers.Binary;

namespace McGrpc.Primary.Output;

/// <summary>
/// The frame format of QEMU's filter-redirector and filter-mirror chardevs
/// (net/filter-mirror.c <c>filter_send</c>, read back by net/net.c
/// <c>net_fill_rstate</c>): a big-endian u32 packet length, then, only when
/// the filter has <c>vnet_hdr_support=on</c>, a big-endian u32 vnet header
/// length, then the packet bytes.
/// </summary>
internal static class RedirectorFrames
{
    /// <summary>
    /// NET_BUFSIZE (4096 + 65536): the largest packet QEMU's reader
    /// (<c>SocketReadState.buf</c>) accepts. A longer frame makes it drop the
    /// connection for good ("oversized packet received"), so nothing longer
    /// is ever written, and a longer frame read is a broken stream.
    /// </summary>
    public const int MaxPacketBytes = 4096 + 65536;

    /// <summary>Bytes before the packet data.</summary>
    public static int HeaderLength(bool vnetHeader) => vnetHeader ? 8 : 4;

    public static int FrameLength(int packetLength, bool vnetHeader) => HeaderLength(vnetHeader) + packetLength;

    /// <summary>Writes one frame; returns its length. <paramref name="destination"/> must hold <see cref="FrameLength"/> bytes.</summary>
    public static int Write(Span<byte> destination, ReadOnlySpan<byte> packet, int vnetHeaderLength, bool vnetHeader)
    {
        if (packet.Length > MaxPacketBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(packet), packet.Length, $"QEMU accepts packets of at most {MaxPacketBytes} bytes.");
        }

        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)packet.Length);
        var offset = 4;
        if (vnetHeader)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination[offset..], (uint)vnetHeaderLength);
            offset += 4;
        }

        packet.CopyTo(destination[offset..]);
        return offset + packet.Length;
    }
}
