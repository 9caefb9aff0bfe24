using McGrpc.Shared;

namespace McGrpc.Primary.Tracking;

/// <summary>A forced dirty tracker does not work on this host or for this VM.</summary>
public sealed class DirtyTrackerUnavailableException : McGrpcException
{
    public DirtyTrackerUnavailableException(string tracker, string reason)
        : base($"The dirty tracker '{tracker}' was forced but cannot be used: {reason}")
    {
        Tracker = tracker;
        Reason = reason;
    }

    public string Tracker { get; }

    public string Reason { get; }
}
