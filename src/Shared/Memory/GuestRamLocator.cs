using System.Text.Json;
using McGrpc.Shared.Native;
using McGrpc.Shared.Qmp;

namespace McGrpc.Shared.Memory;

/// <summary>
/// Finds QEMU's guest RAM and checks it is usable from outside: exactly one
/// memory-backend-file, share=on, mapped shared by QEMU, and (when the
/// operator named one) the same file as the configured path. x-ignore-shared
/// checks none of this, so a mistake here would silently give a wrong guest.
/// </summary>
internal static class GuestRamLocator
{
    public static async Task<GuestRamLocation> LocateAsync(QmpClient qmp, string? expectedPath, CancellationToken cancellationToken)
    {
        var memdevs = await qmp.ExecuteAsync("query-memdev", null, cancellationToken).ConfigureAwait(false);
        var backends = memdevs.EnumerateArray().ToList();
        if (backends.Count == 0)
        {
            throw new GuestRamException(
                "QEMU has no memory backend object. Start it with -object memory-backend-file,id=ram0,size=<size>,mem-path=/dev/shm/<vm>.ram,share=on -machine memory-backend=ram0.");
        }

        if (backends.Count > 1)
        {
            var ids = string.Join(", ", backends.Select(b => b.TryGetProperty("id", out var id) ? id.GetString() : "(no id)"));
            throw new GuestRamException($"QEMU has {backends.Count} memory backends ({ids}); McGrpc protects VMs whose RAM is exactly one memory-backend-file.");
        }

        var backend = backends[0];
        var memdevId = backend.TryGetProperty("id", out var idElement) ? idElement.GetString() : null;
        if (string.IsNullOrEmpty(memdevId))
        {
            throw new GuestRamException("QEMU's memory backend has no id; give it one (-object memory-backend-file,id=ram0,...).");
        }

        var size = backend.GetProperty("size").GetInt64();
        var objectPath = $"/objects/{memdevId}";
        var type = await QomGetStringAsync(qmp, objectPath, "type", cancellationToken).ConfigureAwait(false);
        if (type != "memory-backend-file")
        {
            throw new GuestRamException(
                $"Memory backend '{memdevId}' is a {type}; McGrpc needs memory-backend-file with share=on on a file both daemons can map (memfd and anonymous RAM cannot be reached from outside QEMU in a way that survives x-ignore-shared).");
        }

        if (backend.TryGetProperty("share", out var share) && share.ValueKind == JsonValueKind.False)
        {
            throw new GuestRamException($"Memory backend '{memdevId}' has share=off: the guest's writes stay private to QEMU and never reach the file. Add share=on.");
        }

        var memPath = await QomGetStringAsync(qmp, objectPath, "mem-path", cancellationToken).ConfigureAwait(false);
        if (Directory.Exists(memPath))
        {
            throw new GuestRamException($"Memory backend '{memdevId}' has mem-path={memPath}, a directory: QEMU then maps an unlinked temporary file. Give mem-path a file name.");
        }

        var pid = qmp.PeerPid;
        var file = FileIdentity.Of(memPath);
        var mapping = FindMapping(ProcMapsEntry.ReadAll(pid), memPath, file, size, pid);

        if (expectedPath is not null)
        {
            var expected = FileIdentity.Of(expectedPath);
            if (expected.Inode != file.Inode || expected.Major != file.Major || expected.Minor != file.Minor)
            {
                throw new GuestRamException($"The configured RAM file {expectedPath} is not the file QEMU uses as guest RAM ({memPath}).");
            }
        }

        return new GuestRamLocation(memdevId, memPath, size, Environment.SystemPageSize, pid, mapping.Start, file);
    }

    /// <summary>Picks QEMU's shared mapping of the whole file out of its maps.</summary>
    internal static ProcMapsEntry FindMapping(IReadOnlyList<ProcMapsEntry> maps, string memPath, FileIdentity file, long size, int pid)
    {
        var ofFile = maps.Where(m => file.Matches(m.Device, m.Inode)).ToList();
        if (ofFile.Count == 0)
        {
            throw new GuestRamException($"QEMU (pid {pid}) does not map {memPath}; is the QMP socket that of the right QEMU?");
        }

        // madvise, mprotect or a userfaultfd registration can split one mapping
        // into several VMAs: join neighbours that continue the same file range.
        var joined = new List<ProcMapsEntry>();
        foreach (var m in ofFile.OrderBy(m => m.Start))
        {
            var last = joined.Count > 0 ? joined[^1] : null;
            if (last is not null && last.End == m.Start && last.Offset + last.Length == m.Offset && last.IsShared == m.IsShared)
            {
                joined[^1] = last with { End = m.End };
            }
            else
            {
                joined.Add(m);
            }
        }

        var whole = joined.FirstOrDefault(m => m.Offset == 0 && (long)m.Length == size && m.IsShared);
        if (whole is null)
        {
            var seen = string.Join("; ", ofFile.Select(m => $"{m.Permissions} {m.Length:#,0} bytes at file offset {m.Offset}"));
            throw new GuestRamException(
                $"QEMU (pid {pid}) maps {memPath} but not as one shared mapping of {size:#,0} bytes (seen: {seen}). A private mapping means share=off.");
        }

        return whole;
    }

    private static async Task<string> QomGetStringAsync(QmpClient qmp, string path, string property, CancellationToken cancellationToken)
    {
        var value = await qmp.ExecuteAsync("qom-get", new Dictionary<string, object> { ["path"] = path, ["property"] = property }, cancellationToken).ConfigureAwait(false);
        return value.GetString() ?? string.Empty;
    }
}
