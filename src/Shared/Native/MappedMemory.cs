using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;

namespace McGrpc.Shared.Native;

/// <summary>
/// A memory mapping (a shared file such as guest RAM, or anonymous memory),
/// unmapped exactly once. Callers see spans, never the address.
/// </summary>
internal sealed unsafe class MappedMemory : SafeHandle
{
    private MappedMemory(IntPtr address, long length, bool writable)
        : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle(address);
        Length = length;
        Writable = writable;
    }

    public long Length { get; }

    public bool Writable { get; }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>Address of the mapping, for wrappers in this folder that pass it to the kernel.</summary>
    internal IntPtr Address => handle;

    /// <summary>Maps <paramref name="length"/> bytes of <paramref name="path"/> with MAP_SHARED.</summary>
    public static MappedMemory MapSharedFile(string path, long length, bool writable)
    {
        var flags = (writable ? LibC.O_RDWR : LibC.O_RDONLY) | LibC.O_CLOEXEC;
        var pathBytes = Encoding.UTF8.GetBytes(path + "\0");
        int fd;
        fixed (byte* p = pathBytes)
        {
            var pathPointer = (IntPtr)p;
            fd = (int)Errors.Retry(() => LibC.open((byte*)pathPointer, flags, 0), "open", path);
        }

        try
        {
            var prot = LibC.PROT_READ | (writable ? LibC.PROT_WRITE : 0);
            var address = LibC.mmap(null, (size_t)(ulong)length, prot, LibC.MAP_SHARED, fd, 0);
            if (address == (void*)-1)
            {
                throw new NativeException("mmap", LibC.errno, path);
            }

            return new MappedMemory((IntPtr)address, length, writable);
        }
        finally
        {
            LibC.close(fd);
        }
    }

    /// <summary>Private anonymous memory, zero-filled, committed lazily by the kernel.</summary>
    public static MappedMemory AllocateAnonymous(long length)
    {
        var address = LibC.mmap(null, (size_t)(ulong)length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS, -1, 0);
        if (address == (void*)-1)
        {
            throw new NativeException("mmap", LibC.errno, $"anonymous {length} bytes");
        }

        return new MappedMemory((IntPtr)address, length, writable: true);
    }

    /// <summary>A read-only view of <paramref name="length"/> bytes at <paramref name="offset"/>.</summary>
    public ReadOnlySpan<byte> Read(long offset, int length)
    {
        CheckRange(offset, length);
        return new ReadOnlySpan<byte>((byte*)handle + offset, length);
    }

    /// <summary>A writable view; throws when the mapping is read-only.</summary>
    public Span<byte> Write(long offset, int length)
    {
        if (!Writable)
        {
            throw new InvalidOperationException("The mapping is read-only.");
        }

        CheckRange(offset, length);
        return new Span<byte>((byte*)handle + offset, length);
    }

    /// <summary>Tells the kernel how the range will be used (MADV_*); advisory, failures are ignored.</summary>
    public void Advise(int advice) => LibC.madvise((void*)handle, (size_t)(ulong)Length, advice);

    protected override bool ReleaseHandle() => LibC.munmap((void*)handle, (size_t)(ulong)Length) == 0;

    private void CheckRange(long offset, int length)
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        if (offset < 0 || length < 0 || offset > Length - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"Range {offset}+{length} is outside the {Length}-byte mapping.");
        }
    }
}
