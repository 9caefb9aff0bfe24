using McGrpc.Shared;

namespace McGrpc.Primary.Engine;

/// <summary>The requested dirty tracker cannot work here.</summary>
internal sealed class TrackerUnavailableException : McGrpcException
{
    public TrackerUnavailableException(string message)
        : base(message)
    {
    }
}
