using McGrpc.Shared;

namespace McGrpc.Primary.Output;

/// <summary>
/// The userspace output buffer cannot attach to, or keep filtering, the
/// guest's network: no NIC, a netdev QEMU cannot filter (vhost-net,
/// multiqueue), a refused QMP command. The message says what and what to do.
/// </summary>
internal class UserspaceOutputBufferException : McGrpcException
{
    public UserspaceOutputBufferException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}
