using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary>
/// Raw system calls that Tmds.LibC does not wrap (ptrace, wait4, userfaultfd,
/// pidfd_*), and an ioctl whose request takes the full unsigned long.
/// </summary>
/// <remarks>
/// glibc's syscall() is plain assembly that shuffles registers, so declaring it
/// with six fixed long arguments is safe even though C declares it variadic.
/// Errors come back as -1 with errno, which SetLastError hands to <see cref="Errors"/>.
/// </remarks>
internal static unsafe partial class LinuxSyscall
{
    public const long Close = 3;
    public const long Wait4 = 61;
    public const long Ptrace = 101;
    public const long Userfaultfd = 323;
    public const long PidfdOpen = 434;
    public const long PidfdGetfd = 438;

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    public static partial long Invoke(long number, long arg1, long arg2, long arg3, long arg4, long arg5, long arg6);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, void* argument);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    public static partial nint Pread(int fd, void* buffer, nuint count, long offset);

    public static long Invoke(long number, long arg1 = 0, long arg2 = 0, long arg3 = 0, long arg4 = 0) =>
        Invoke(number, arg1, arg2, arg3, arg4, 0, 0);

    /// <summary>Issues an ioctl, retrying EINTR; throws naming <paramref name="call"/> on failure.</summary>
    public static int CheckedIoctl(int fd, uint request, void* argument, string call, string? detail = null)
    {
        while (true)
        {
            var result = Ioctl(fd, request, argument);
            if (result != -1)
            {
                return result;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errors.EINTR)
            {
                throw new NativeException(call, errno, detail);
            }
        }
    }
}
