using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary><c>struct page_region</c>: one result range of PAGEMAP_SCAN, virtual addresses [Start, End).</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct PageRegion(ulong Start, ulong End, ulong Categories);
