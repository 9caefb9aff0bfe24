using McGrpc.Shared;

namespace McGrpc.Primary.Checkpoint;

/// <summary>QEMU did not deliver a device-state stream as expected.</summary>
internal sealed class DeviceStateException : McGrpcException
{
    public DeviceStateException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}
