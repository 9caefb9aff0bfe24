namespace McGrpc.Primary.Output;

/// <summary>
/// The byte stream from a filter-redirector is not a sequence of valid frames
/// (a length beyond what QEMU can send, a vnet header longer than its packet).
/// The connection can no longer be trusted to line up with packet boundaries.
/// </summary>
internal sealed class RedirectorFrameException : UserspaceOutputBufferException
{
    public RedirectorFrameException(string message)
        : base(message)
    {
    }
}
