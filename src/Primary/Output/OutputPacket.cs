using System.Buffers;

namespace McGrpc.Primary.Output;

/// <summary>
/// One guest packet captured by the userspace output buffer. <see cref="Buffer"/>
/// is rented from <see cref="ArrayPool{T}.Shared"/> and owned by whoever holds
/// the packet now; <see cref="Return"/> gives it back exactly once.
/// </summary>
/// <param name="Buffer">Rented storage; the packet is its first <paramref name="Length"/> bytes.</param>
/// <param name="Length">Bytes of packet data, including any virtio-net header.</param>
/// <param name="VnetHeaderLength">The vnet_hdr_len QEMU sent with it (0 unless vnet_hdr_support=on).</param>
/// <param name="Port">Which filtered netdev it came from, and so which one it goes back to.</param>
internal readonly record struct OutputPacket(byte[] Buffer, int Length, int VnetHeaderLength, int Port)
{
    public ReadOnlySpan<byte> Data => Buffer.AsSpan(0, Length);

    /// <summary>Memory the packet keeps alive: the rented array, not just the data.</summary>
    public int Footprint => Buffer.Length;

    public static OutputPacket Rent(int length, int vnetHeaderLength, int port)
        => new(ArrayPool<byte>.Shared.Rent(Math.Max(length, 1)), length, vnetHeaderLength, port);

    public static OutputPacket Copy(ReadOnlySpan<byte> data, int vnetHeaderLength, int port)
    {
        var packet = Rent(data.Length, vnetHeaderLength, port);
        data.CopyTo(packet.Buffer);
        return packet;
    }

    public void Return() => ArrayPool<byte>.Shared.Return(Buffer);
}
