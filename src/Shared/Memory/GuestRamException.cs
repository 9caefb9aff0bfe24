namespace McGrpc.Shared.Memory;

/// <summary>Guest RAM is not set up the way McGrpc needs it; the message says what to change.</summary>
public sealed class GuestRamException : McGrpcException
{
    public GuestRamException(string message)
        : base(message)
    {
    }
}
