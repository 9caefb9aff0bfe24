namespace McGrpc.Shared.Native;

/// <summary>A Linux call failed; names the call and the errno.</summary>
public sealed class NativeException : McGrpcException
{
    public NativeException(string call, int errno, string? detail = null)
        : base(Format(call, errno, detail))
    {
        Call = call;
        Errno = errno;
    }

    public string Call { get; }

    public int Errno { get; }

    private static string Format(string call, int errno, string? detail)
    {
        var text = $"{call} failed: {Errors.Name(errno)} ({Errors.Describe(errno)})";
        return detail is null ? text : $"{text}: {detail}";
    }
}
