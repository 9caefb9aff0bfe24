using System.Runtime.InteropServices;
using Tmds.Linux;

namespace McGrpc.Shared.Native;

/// <summary>errno handling shared by every wrapper in this folder.</summary>
internal static unsafe class Errors
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int EINVAL = 22;
    public const int ENOTTY = 25;
    public const int ENOSYS = 38;
    public const int EOPNOTSUPP = 95;

    private static readonly Dictionary<int, string> Names = new()
    {
        [EPERM] = "EPERM", [ENOENT] = "ENOENT", [ESRCH] = "ESRCH", [EINTR] = "EINTR", [EIO] = "EIO",
        [EBADF] = "EBADF", [EAGAIN] = "EAGAIN", [ENOMEM] = "ENOMEM", [EACCES] = "EACCES",
        [EFAULT] = "EFAULT", [EBUSY] = "EBUSY", [EEXIST] = "EEXIST", [ENODEV] = "ENODEV",
        [EINVAL] = "EINVAL", [ENOTTY] = "ENOTTY", [ENOSYS] = "ENOSYS", [EOPNOTSUPP] = "EOPNOTSUPP",
    };

    public static string Name(int errno) => Names.TryGetValue(errno, out var name) ? name : $"errno {errno}";

    public static string Describe(int errno)
    {
        var buffer = stackalloc byte[256];
        // The XSI strerror_r fills the buffer and returns 0; it never returns a pointer.
        return LibC.strerror_r(errno, buffer, 256) == 0
            ? Marshal.PtrToStringUTF8((IntPtr)buffer) ?? Name(errno)
            : Name(errno);
    }

    /// <summary>Throws a <see cref="NativeException"/> naming <paramref name="call"/> when <paramref name="result"/> is -1.</summary>
    public static int Check(int result, string call, string? detail = null)
    {
        if (result == -1)
        {
            throw new NativeException(call, LibC.errno, detail);
        }

        return result;
    }

    /// <summary>Runs <paramref name="syscall"/> again while it fails with EINTR; throws on any other failure.</summary>
    public static long Retry(Func<long> syscall, string call, string? detail = null)
    {
        while (true)
        {
            var result = syscall();
            if (result != -1)
            {
                return result;
            }

            var errno = LibC.errno;
            if (errno != EINTR)
            {
                throw new NativeException(call, errno, detail);
            }
        }
    }
}
