using System.Buffers.Binary;

namespace McGrpc.Primary.Output;

/// <summary>
/// Cuts the byte stream of one filter-redirector outdev into packets
/// (<see cref="RedirectorFrames"/>), however the reads split it. Each packet
/// is copied once, into a rented buffer that the packet then owns. Not
/// thread-safe: one reader feeds it.
/// </summary>
internal sealed class RedirectorFrameDecoder
{
    private readonly bool _vnetHeader;
    private readonly int _port;
    private readonly byte[] _header = new byte[8];
    private int _headerFilled;
    private OutputPacket? _packet;
    private int _packetFilled;

    /// <param name="vnetHeader">Whether the filter sends the vnet header length (vnet_hdr_support=on).</param>
    /// <param name="port">Stamped on every packet: the netdev the stream comes from.</param>
    public RedirectorFrameDecoder(bool vnetHeader, int port)
    {
        _vnetHeader = vnetHeader;
        _port = port;
    }

    /// <summary>Bytes of a frame started but not finished: nonzero means the stream ended mid-frame.</summary>
    public int PartialBytes => _packet is null ? _headerFilled : RedirectorFrames.HeaderLength(_vnetHeader) + _packetFilled;

    /// <summary>
    /// Consumes <paramref name="data"/>; hands every completed packet to
    /// <paramref name="packet"/>, which takes ownership of it.
    /// </summary>
    /// <exception cref="RedirectorFrameException">A frame QEMU cannot have sent.</exception>
    public void Feed(ReadOnlySpan<byte> data, Action<OutputPacket> packet)
    {
        var headerLength = RedirectorFrames.HeaderLength(_vnetHeader);
        while (!data.IsEmpty)
        {
            if (_packet is not { } current)
            {
                var take = Math.Min(headerLength - _headerFilled, data.Length);
                data[..take].CopyTo(_header.AsSpan(_headerFilled));
                _headerFilled += take;
                data = data[take..];
                if (_headerFilled < headerLength)
                {
                    return;
                }

                _headerFilled = 0;
                var length = BinaryPrimitives.ReadUInt32BigEndian(_header);
                var vnetLength = _vnetHeader ? BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(4)) : 0;
                if (length > RedirectorFrames.MaxPacketBytes)
                {
                    throw new RedirectorFrameException($"filter-redirector frame of {length} bytes; QEMU sends at most {RedirectorFrames.MaxPacketBytes}.");
                }

                if (vnetLength > length)
                {
                    throw new RedirectorFrameException($"filter-redirector frame of {length} bytes claims a {vnetLength}-byte vnet header.");
                }

                if (length == 0)
                {
                    // QEMU never sends one (filter_send skips empty packets); nothing to hold.
                    continue;
                }

                _packet = current = OutputPacket.Rent((int)length, (int)vnetLength, _port);
                _packetFilled = 0;
            }

            var copy = Math.Min(current.Length - _packetFilled, data.Length);
            data[..copy].CopyTo(current.Buffer.AsSpan(_packetFilled));
            _packetFilled += copy;
            data = data[copy..];
            if (_packetFilled == current.Length)
            {
                _packet = null;
                _packetFilled = 0;
                packet(current);
            }
        }
    }

    /// <summary>Returns the buffer of an unfinished packet (the stream ended or is abandoned).</summary>
    public void Reset()
    {
        _packet?.Return();
        _packet = null;
        _packetFilled = 0;
        _headerFilled = 0;
    }
}
