using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary><c>struct pm_scan_arg</c>, the 96-byte argument of the PAGEMAP_SCAN ioctl (Linux 6.7+).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PagemapScanArgs
{
    /// <summary>sizeof(struct pm_scan_arg): the kernel rejects any other value.</summary>
    public ulong Size;
    public ulong Flags;
    public ulong Start;
    public ulong End;

    /// <summary>Set by the kernel: where the walk stopped (== End when it completed).</summary>
    public ulong WalkEnd;

    /// <summary>Address of the <see cref="PageRegion"/> result array.</summary>
    public ulong Vec;
    public ulong VecLength;

    /// <summary>Most pages to report; 0 = no limit.</summary>
    public ulong MaxPages;
    public ulong CategoryInverted;
    public ulong CategoryMask;
    public ulong CategoryAnyOfMask;
    public ulong ReturnMask;
}
