using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary><c>struct uffdio_register</c> (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioRegister
{
    public UffdioRange Range;
    public ulong Mode;
    public ulong Ioctls;
}
