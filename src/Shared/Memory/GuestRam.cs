using McGrpc.Shared.Native;

namespace McGrpc.Shared.Memory;

/// <summary>
/// Guest RAM as both QEMU and this daemon see it: the memory-backend-file that
/// QEMU maps shared, mapped a second time here. File offset is what both
/// daemons replicate; below the low-RAM split it equals the guest physical address.
/// </summary>
internal sealed class GuestRam : IDisposable
{
    public GuestRam(GuestRamLocation location, MappedMemory memory)
    {
        Location = location;
        Memory = memory;
    }

    public GuestRamLocation Location { get; }

    /// <summary>This daemon's mapping of the RAM file (read-only on the primary, read-write on the backup).</summary>
    public MappedMemory Memory { get; }

    public long Size => Location.Size;

    public int PageSize => Location.PageSize;

    public long PageCount => Location.Size / Location.PageSize;

    /// <summary>Maps the file that <paramref name="location"/> names, after checking it is still that file.</summary>
    public static GuestRam Map(GuestRamLocation location, bool writable)
    {
        var identity = FileIdentity.Of(location.Path);
        if (identity.Inode != location.File.Inode || identity.Major != location.File.Major || identity.Minor != location.File.Minor)
        {
            throw new GuestRamException($"{location.Path} was replaced after QEMU opened it; QEMU's guest RAM is no longer reachable through that path. Restart QEMU.");
        }

        if (identity.Size < location.Size)
        {
            throw new GuestRamException($"{location.Path} is {identity.Size:#,0} bytes but QEMU's memory backend is {location.Size:#,0} bytes.");
        }

        return new GuestRam(location, MappedMemory.MapSharedFile(location.Path, location.Size, writable));
    }

    public void Dispose() => Memory.Dispose();
}
