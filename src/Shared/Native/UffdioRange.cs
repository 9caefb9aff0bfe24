using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary><c>struct uffdio_range</c> (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioRange
{
    public ulong Start;
    public ulong Length;
}
