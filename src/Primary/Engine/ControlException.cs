using McGrpc.Shared;

namespace McGrpc.Primary.Engine;

/// <summary>A control request that cannot be honoured; <see cref="Kind"/> says how the gRPC edge reports it.</summary>
internal sealed class ControlException : McGrpcException
{
    public ControlException(ControlErrorKind kind, string message)
        : base(message)
    {
        Kind = kind;
    }

    public ControlErrorKind Kind { get; }
}
