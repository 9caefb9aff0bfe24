using System.Text;
using Tmds.Linux;

namespace McGrpc.Shared.Native;

/// <summary>Which file a path names: device (major:minor), inode and size, as stat(2) reports them.</summary>
internal readonly record struct FileIdentity(uint Major, uint Minor, ulong Inode, long Size)
{
    public static unsafe FileIdentity Of(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        stat st;
        fixed (byte* p = bytes)
        {
            Errors.Check(LibC.stat(p, &st), "stat", path);
        }

        var dev = (ulong)st.st_dev;
        // glibc's gnu_dev_major/minor encoding of a 64-bit dev_t.
        var major = (uint)(((dev >> 8) & 0xfff) | ((dev >> 32) & 0xfffff000));
        var minor = (uint)((dev & 0xff) | ((dev >> 12) & 0xffffff00));
        return new FileIdentity(major, minor, (ulong)st.st_ino, (long)st.st_size);
    }

    /// <summary>True when a /proc/&lt;pid&gt;/maps device column ("00:19", hex) and inode name this file.</summary>
    public bool Matches(string mapsDevice, ulong inode)
    {
        var parts = mapsDevice.Split(':');
        return parts.Length == 2
            && Convert.ToUInt32(parts[0], 16) == Major
            && Convert.ToUInt32(parts[1], 16) == Minor
            && inode == Inode;
    }
}
