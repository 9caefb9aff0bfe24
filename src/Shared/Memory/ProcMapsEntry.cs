using System.Globalization;

namespace McGrpc.Shared.Memory;

/// <summary>One line of /proc/&lt;pid&gt;/maps.</summary>
internal sealed record ProcMapsEntry(ulong Start, ulong End, string Permissions, ulong Offset, string Device, ulong Inode, string Path)
{
    public ulong Length => End - Start;

    /// <summary>The 's' in the permissions: changes reach the file and every other mapping of it.</summary>
    public bool IsShared => Permissions.Length >= 4 && Permissions[3] == 's';

    public bool IsWritable => Permissions.Length >= 2 && Permissions[1] == 'w';

    /// <summary>Parses a maps line such as "7f..-7f.. rw-s 00000000 00:19 42 /dev/shm/vm0.ram".</summary>
    public static ProcMapsEntry Parse(string line)
    {
        // The path is everything after the inode column and may contain spaces
        // (or " (deleted)"), so split the fixed columns only.
        var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 5)
        {
            throw new FormatException($"Not a /proc/<pid>/maps line: '{line}'.");
        }

        var range = parts[0].Split('-');
        return new ProcMapsEntry(
            ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            parts[1],
            ulong.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            parts[3],
            ulong.Parse(parts[4], CultureInfo.InvariantCulture),
            parts.Length > 5 ? parts[5].Trim() : string.Empty);
    }

    /// <summary>Reads every mapping of process <paramref name="pid"/>.</summary>
    public static IReadOnlyList<ProcMapsEntry> ReadAll(int pid)
    {
        var entries = new List<ProcMapsEntry>();
        foreach (var line in File.ReadLines($"/proc/{pid}/maps"))
        {
            if (line.Length > 0)
            {
                entries.Add(Parse(line));
            }
        }

        return entries;
    }
}
