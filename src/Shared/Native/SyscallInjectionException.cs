namespace McGrpc.Shared.Native;

/// <summary>
/// Running a system call inside another process failed. The target was left
/// running as before (registers restored, detached) unless the message says otherwise.
/// </summary>
public sealed class SyscallInjectionException : McGrpcException
{
    public SyscallInjectionException(string message)
        : base(message)
    {
    }

    public SyscallInjectionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
