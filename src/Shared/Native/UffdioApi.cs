using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary><c>struct uffdio_api</c> (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioApi
{
    public ulong Api;
    public ulong Features;
    public ulong Ioctls;
}
