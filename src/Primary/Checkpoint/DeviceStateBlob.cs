using System.Buffers;

namespace McGrpc.Primary.Checkpoint;

/// <summary>One device-state stream in a pooled buffer; whoever holds it returns the buffer.</summary>
internal sealed class DeviceStateBlob
{
    public DeviceStateBlob(byte[] buffer, int length, double captureMs)
    {
        Buffer = buffer;
        Length = length;
        CaptureMs = captureMs;
    }

    public byte[] Buffer { get; }

    public int Length { get; }

    /// <summary>From the migrate command to QEMU in postmigrate.</summary>
    public double CaptureMs { get; }

    public ReadOnlyMemory<byte> Data => Buffer.AsMemory(0, Length);

    public void Return() => ArrayPool<byte>.Shared.Return(Buffer);
}
