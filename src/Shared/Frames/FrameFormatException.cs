namespace McGrpc.Shared.Frames;

/// <summary>A replication frame broke the protocol; it was rejected before touching guest memory.</summary>
public sealed class FrameFormatException : McGrpcException
{
    public FrameFormatException(string message)
        : base(message)
    {
    }
}
