using McGrpc.Shared;

namespace McGrpc.Primary.Output;

/// <summary>
/// The kernel output buffer cannot work on this host as it is: sch_plug is
/// missing, or the IFB/redirect setup is incomplete. The message says what
/// is missing and what to run or choose instead.
/// </summary>
internal sealed class KernelOutputBufferException : McGrpcException
{
    public KernelOutputBufferException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}
