using System.Buffers.Binary;
using McGrpc.Primary.Output;

namespace McGrpc.Tests.Output;

/// <summary>The filter-redirector frame format (be32 length [+ be32 vnet_hdr_len] + payload), cut however the reads fall.</summary>
public sealed class UserspaceFrameCodecTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Frames_written_are_decoded_back_to_the_same_packets_whatever_the_read_sizes(bool vnetHeader)
    {
        var packets = Enumerable.Range(1, 40).Select(i => Pattern(i * 37 % 1600 + 1, seed: i)).ToList();
        var stream = Encode(packets, vnetHeader, vnetLength: vnetHeader ? 10 : 0);
        foreach (var chunk in new[] { 1, 3, 4, 5, 7, 8, 9, 64, 1500, stream.Length })
        {
            var decoded = Decode(stream, chunk, vnetHeader, port: 3);
            Assert.Equal(packets.Count, decoded.Count);
            for (var i = 0; i < packets.Count; i++)
            {
                Assert.Equal(packets[i], decoded[i].Data.ToArray());
                Assert.Equal(vnetHeader ? 10 : 0, decoded[i].VnetHeaderLength);
                Assert.Equal(3, decoded[i].Port);
                decoded[i].Return();
            }
        }
    }

    [Fact]
    public void Header_layout_is_big_endian_length_then_vnet_length_then_payload()
    {
        var frame = new byte[RedirectorFrames.FrameLength(3, vnetHeader: true)];
        var written = RedirectorFrames.Write(frame, [0xaa, 0xbb, 0xcc], vnetHeaderLength: 12, vnetHeader: true);
        Assert.Equal(11, written);
        Assert.Equal(new byte[] { 0, 0, 0, 3, 0, 0, 0, 12, 0xaa, 0xbb, 0xcc }, frame);

        var plain = new byte[RedirectorFrames.FrameLength(2, vnetHeader: false)];
        RedirectorFrames.Write(plain, [1, 2], vnetHeaderLength: 12, vnetHeader: false);
        Assert.Equal(new byte[] { 0, 0, 0, 2, 1, 2 }, plain);
    }

    [Fact]
    public void A_length_beyond_what_QEMU_sends_is_a_broken_stream()
    {
        var header = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(header, RedirectorFrames.MaxPacketBytes + 1);
        var decoder = new RedirectorFrameDecoder(vnetHeader: false, port: 0);
        var exception = Assert.Throws<RedirectorFrameException>(() => decoder.Feed(header, _ => { }));
        Assert.Contains("69633", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_vnet_header_longer_than_its_packet_is_a_broken_stream()
    {
        var header = new byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(header, 10);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), 11);
        var decoder = new RedirectorFrameDecoder(vnetHeader: true, port: 0);
        Assert.Throws<RedirectorFrameException>(() => decoder.Feed(header, _ => { }));
    }

    [Fact]
    public void The_largest_packet_QEMU_accepts_round_trips_and_a_larger_one_is_never_written()
    {
        var largest = Pattern(RedirectorFrames.MaxPacketBytes, seed: 9);
        var decoded = Decode(Encode([largest], vnetHeader: false, vnetLength: 0), 4096, vnetHeader: false, port: 0);
        Assert.Equal(largest, Assert.Single(decoded).Data.ToArray());
        var destination = new byte[RedirectorFrames.FrameLength(RedirectorFrames.MaxPacketBytes + 1, vnetHeader: false)];
        Assert.Throws<ArgumentOutOfRangeException>(() => RedirectorFrames.Write(destination, new byte[RedirectorFrames.MaxPacketBytes + 1], 0, vnetHeader: false));
    }

    [Fact]
    public void Empty_frames_carry_nothing_to_hold_and_are_skipped()
    {
        var stream = new byte[] { 0, 0, 0, 0, 0, 0, 0, 1, 42 };
        var decoded = Decode(stream, 2, vnetHeader: false, port: 0);
        Assert.Equal(new byte[] { 42 }, Assert.Single(decoded).Data.ToArray());
    }

    [Fact]
    public void A_stream_cut_mid_frame_reports_the_partial_bytes_and_emits_nothing_of_it()
    {
        var stream = Encode([Pattern(100, 1), Pattern(100, 2)], vnetHeader: false, vnetLength: 0);
        var decoder = new RedirectorFrameDecoder(vnetHeader: false, port: 0);
        var packets = new List<OutputPacket>();
        decoder.Feed(stream.AsSpan(0, 104 + 50), packets.Add);
        Assert.Single(packets);
        Assert.Equal(50, decoder.PartialBytes);
        decoder.Reset();
        Assert.Equal(0, decoder.PartialBytes);
    }

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i * 31) + (seed * 7));
        }

        return bytes;
    }

    private static byte[] Encode(IReadOnlyList<byte[]> packets, bool vnetHeader, int vnetLength)
    {
        var stream = new byte[packets.Sum(p => RedirectorFrames.FrameLength(p.Length, vnetHeader))];
        var offset = 0;
        foreach (var packet in packets)
        {
            offset += RedirectorFrames.Write(stream.AsSpan(offset), packet, vnetLength, vnetHeader);
        }

        return stream;
    }

    private static List<OutputPacket> Decode(byte[] stream, int chunk, bool vnetHeader, int port)
    {
        var decoder = new RedirectorFrameDecoder(vnetHeader, port);
        var packets = new List<OutputPacket>();
        for (var offset = 0; offset < stream.Length; offset += chunk)
        {
            decoder.Feed(stream.AsSpan(offset, Math.Min(chunk, stream.Length - offset)), packets.Add);
        }

        Assert.Equal(0, decoder.PartialBytes);
        return packets;
    }
}
