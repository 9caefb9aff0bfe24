using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary>
/// A userfaultfd used for asynchronous write-protect tracking. The address
/// space it acts on is the one of the process that created it, whichever
/// process issues the ioctls: one injected into QEMU tracks QEMU's memory.
/// </summary>
internal sealed unsafe class Userfaultfd : IDisposable
{
    public const ulong FeatureWpHugetlbfsShmem = 1UL << 12;
    public const ulong FeatureWpUnpopulated = 1UL << 13;
    public const ulong FeatureWpAsync = 1UL << 15;

    /// <summary>
    /// What tracking needs: faults resolved by the kernel itself (no handler
    /// thread), shmem/hugetlbfs mappings (guest RAM files), and pages never
    /// touched yet marked protected too.
    /// </summary>
    public const ulong AsyncWriteProtectFeatures = FeatureWpAsync | FeatureWpHugetlbfsShmem | FeatureWpUnpopulated;

    /// <summary>O_CLOEXEC | O_NONBLOCK.</summary>
    public const int CreateFlags = 0x80800;

    /// <summary>
    /// UFFD_USER_MODE_ONLY: allowed without CAP_SYS_PTRACE when
    /// vm.unprivileged_userfaultfd is 0. Write-protect in async mode resolves
    /// kernel-mode writes the same way, so tracking loses nothing with it.
    /// </summary>
    public const int UserModeOnly = 1;

    private const ulong UffdApi = 0xAA;
    private const uint UffdioApiRequest = 0xC018AA3F;
    private const uint UffdioRegisterRequest = 0xC020AA00;
    private const uint UffdioUnregisterRequest = 0x8010AA01;
    private const uint UffdioWriteProtectRequest = 0xC018AA06;
    private const ulong RegisterModeWp = 1UL << 1;
    private const ulong WriteProtectModeWp = 1;

    private readonly FileDescriptor _fd;

    private Userfaultfd(FileDescriptor fd)
    {
        _fd = fd;
    }

    internal int Fd => _fd.Fd;

    /// <summary>A userfaultfd for the calling process's own memory (probes and tests).</summary>
    public static Userfaultfd CreateForThisProcess()
    {
        var fd = LinuxSyscall.Invoke(LinuxSyscall.Userfaultfd, CreateFlags);
        if (fd == -1 && Marshal.GetLastPInvokeError() == Errors.EPERM)
        {
            fd = LinuxSyscall.Invoke(LinuxSyscall.Userfaultfd, CreateFlags | UserModeOnly);
        }

        if (fd == -1)
        {
            throw new NativeException("userfaultfd", Marshal.GetLastPInvokeError());
        }

        return new Userfaultfd(new FileDescriptor((int)fd));
    }

    /// <summary>Takes ownership of a userfaultfd descriptor obtained elsewhere (from another process).</summary>
    public static Userfaultfd Adopt(FileDescriptor fd) => new(fd);

    /// <summary>UFFDIO_API: the handshake, once per descriptor. Throws when a requested feature is missing.</summary>
    /// <returns>Every feature the kernel offers.</returns>
    public ulong Handshake(ulong features)
    {
        var api = new UffdioApi { Api = UffdApi, Features = features };
        LinuxSyscall.CheckedIoctl(_fd.Fd, UffdioApiRequest, &api, "ioctl(UFFDIO_API)", $"features 0x{features:x}");
        return api.Features;
    }

    /// <summary>UFFDIO_REGISTER in write-protect mode over [start, start + length).</summary>
    public void RegisterWriteProtect(ulong start, ulong length)
    {
        var register = new UffdioRegister { Range = new UffdioRange { Start = start, Length = length }, Mode = RegisterModeWp };
        LinuxSyscall.CheckedIoctl(_fd.Fd, UffdioRegisterRequest, &register, "ioctl(UFFDIO_REGISTER)", $"0x{start:x}+0x{length:x}");
    }

    /// <summary>UFFDIO_UNREGISTER; the kernel drops the write-protect bits of the range with it.</summary>
    public void Unregister(ulong start, ulong length)
    {
        var range = new UffdioRange { Start = start, Length = length };
        LinuxSyscall.CheckedIoctl(_fd.Fd, UffdioUnregisterRequest, &range, "ioctl(UFFDIO_UNREGISTER)", $"0x{start:x}+0x{length:x}");
    }

    /// <summary>UFFDIO_WRITEPROTECT: arms (or disarms) write-protect over the range.</summary>
    public void WriteProtect(ulong start, ulong length, bool protect)
    {
        var writeProtect = new UffdioWriteProtect
        {
            Range = new UffdioRange { Start = start, Length = length },
            Mode = protect ? WriteProtectModeWp : 0,
        };
        LinuxSyscall.CheckedIoctl(_fd.Fd, UffdioWriteProtectRequest, &writeProtect, "ioctl(UFFDIO_WRITEPROTECT)", $"0x{start:x}+0x{length:x}");
    }

    public void Dispose() => _fd.Dispose();
}
