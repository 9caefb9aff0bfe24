using McGrpc.Shared.Memory;
using McGrpc.Shared.Native;
using Microsoft.Win32.SafeHandles;

namespace McGrpc.Fuzz;

/// <summary>
/// Guest RAM for an in-process backup: a file in /dev/shm (like QEMU's
/// memory-backend-file) mapped shared and writable, exactly as mc-backup maps
/// it. The file is longer than the mapping: a canary tail that no write may
/// ever reach. The file is unlinked once mapped, so nothing is left behind
/// even if the process dies; the mapping and a handle keep it alive.
/// </summary>
internal sealed class ScratchRam : IDisposable
{
    public const int CanaryBytes = 64 * 1024;
    private const byte CanaryByte = 0xA5;

    private readonly SafeFileHandle _file;

    private ScratchRam(SafeFileHandle file, GuestRam ram)
    {
        _file = file;
        Ram = ram;
    }

    public GuestRam Ram { get; }

    public long Size => Ram.Size;

    /// <summary>All of guest RAM, read through the backup's own mapping.</summary>
    public ReadOnlySpan<byte> Bytes => Ram.Memory.Read(0, checked((int)Ram.Size));

    public static ScratchRam Create(long size, int pageSize = 4096)
    {
        if (size <= 0 || size % pageSize != 0 || size > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(size), "RAM must be a positive multiple of the page size under 2 GiB.");
        }

        var directory = Directory.Exists("/dev/shm") ? "/dev/shm" : System.IO.Path.GetTempPath();
        var path = System.IO.Path.Combine(directory, $"mcgrpc-scratch-{Environment.ProcessId}-{Guid.NewGuid():N}.ram");
        var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        try
        {
            RandomAccess.SetLength(file, size + CanaryBytes);
            var canary = new byte[CanaryBytes];
            Array.Fill(canary, CanaryByte);
            RandomAccess.Write(file, canary, size);
            var location = new GuestRamLocation("scratch0", path, size, pageSize, Environment.ProcessId, 0, FileIdentity.Of(path));
            return new ScratchRam(file, GuestRam.Map(location, writable: true));
        }
        catch
        {
            file.Dispose();
            throw;
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Writes <paramref name="image"/> into RAM (test set-up: what a previous checkpoint left).</summary>
    public void Load(ReadOnlySpan<byte> image) => image.CopyTo(Ram.Memory.Write(0, image.Length));

    /// <summary>True while nothing wrote past the end of guest RAM in the file.</summary>
    public bool CanaryIntact()
    {
        Span<byte> tail = stackalloc byte[4096];
        for (long at = Size; at < Size + CanaryBytes; at += tail.Length)
        {
            var read = RandomAccess.Read(_file, tail, at);
            if (read != tail.Length || tail.ContainsAnyExcept(CanaryByte))
            {
                return false;
            }
        }

        return true;
    }

    public void Dispose()
    {
        Ram.Dispose();
        _file.Dispose();
    }
}
