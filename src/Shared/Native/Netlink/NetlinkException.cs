namespace McGrpc.Shared.Native.Netlink;

/// <summary>
/// The kernel refused an rtnetlink request, did not answer it, or answered
/// something this client cannot read. Names the operation, the errno, the
/// kernel's own explanation when it sent one, and a hint a person can act on.
/// </summary>
public sealed class NetlinkException : McGrpcException
{
    public NetlinkException(string operation, int errno, string? kernelMessage = null, string? hint = null)
        : base(Format(operation, errno, kernelMessage, hint))
    {
        Operation = operation;
        Errno = errno;
        KernelMessage = kernelMessage;
        Hint = hint;
    }

    /// <summary>What was asked, e.g. "RTM_NEWQDISC plug on ifb0".</summary>
    public string Operation { get; }

    /// <summary>The errno the kernel answered with; 0 when the reply could not be decoded.</summary>
    public int Errno { get; }

    /// <summary>The extended-ack text (NLMSGERR_ATTR_MSG), when the kernel gave one.</summary>
    public string? KernelMessage { get; }

    /// <summary>What to check or do next, when there is an obvious candidate.</summary>
    public string? Hint { get; }

    private static string Format(string operation, int errno, string? kernelMessage, string? hint)
    {
        var text = errno == 0
            ? $"{operation} failed"
            : $"{operation} failed: {Errors.Name(errno)} ({Errors.Describe(errno)})";
        if (!string.IsNullOrEmpty(kernelMessage))
        {
            text = $"{text}: kernel says \"{kernelMessage}\"";
        }

        return string.IsNullOrEmpty(hint) ? text : $"{text} — {hint}";
    }
}
