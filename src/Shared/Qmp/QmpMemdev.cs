using System.Text.Json;

namespace McGrpc.Shared.Qmp;

/// <summary>
/// One memory backend from <c>query-memdev</c>. QEMU 7.2 returns, for a memory-backend-file:
/// <c>{"id": "ram0", "size": 67108864, "share": true, "merge": true, "dump": true,
/// "prealloc": false, "reserve": true, "policy": "default", "host-nodes": []}</c>.
/// It does not return the type or the mem-path: use <c>qom-get /objects/ID mem-path</c>.
/// </summary>
/// <param name="Id">The backend's id; optional in QAPI, null for backends created without one.</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="Share">share=on: MAP_SHARED, so another process mapping the file sees guest RAM.</param>
/// <param name="Merge">KSM merging allowed.</param>
/// <param name="Dump">Included in core dumps.</param>
/// <param name="Prealloc">Preallocated at start-up.</param>
/// <param name="Reserve">Swap space reserved; null when QEMU does not report it (before 6.1).</param>
/// <param name="Policy">Host NUMA policy: <c>default</c>, <c>preferred</c>, <c>bind</c>, <c>interleave</c>.</param>
/// <param name="HostNodes">Host NUMA nodes of the policy.</param>
/// <param name="Raw">The entry as QEMU sent it.</param>
internal sealed record QmpMemdev(
    string? Id,
    long Size,
    bool Share,
    bool Merge,
    bool Dump,
    bool Prealloc,
    bool? Reserve,
    string Policy,
    IReadOnlyList<int> HostNodes,
    JsonElement Raw);
