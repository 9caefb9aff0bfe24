using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary><c>struct uffdio_writeprotect</c> (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioWriteProtect
{
    public UffdioRange Range;
    public ulong Mode;
}
