using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using McGrpc.Shared.Native;

namespace McGrpc.Tests.Tracking;

public sealed class NativeLayoutTests
{
    [Fact]
    public void Pagemap_scan_argument_is_96_bytes_with_fields_in_kernel_order()
    {
        Assert.Equal(96, Unsafe.SizeOf<PagemapScanArgs>());
        string[] fields =
        [
            nameof(PagemapScanArgs.Size), nameof(PagemapScanArgs.Flags), nameof(PagemapScanArgs.Start), nameof(PagemapScanArgs.End),
            nameof(PagemapScanArgs.WalkEnd), nameof(PagemapScanArgs.Vec), nameof(PagemapScanArgs.VecLength), nameof(PagemapScanArgs.MaxPages),
            nameof(PagemapScanArgs.CategoryInverted), nameof(PagemapScanArgs.CategoryMask), nameof(PagemapScanArgs.CategoryAnyOfMask), nameof(PagemapScanArgs.ReturnMask),
        ];
        for (var i = 0; i < fields.Length; i++)
        {
            Assert.Equal(i * 8, (int)Marshal.OffsetOf<PagemapScanArgs>(fields[i]));
        }
    }

    [Fact]
    public void Page_region_is_start_end_categories()
    {
        Assert.Equal(24, Unsafe.SizeOf<PageRegion>());
        var region = new PageRegion(0x1000, 0x3000, 2);
        var bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<PageRegion>(in region));
        Assert.Equal(0x1000UL, BitConverter.ToUInt64(bytes[..8]));
        Assert.Equal(0x3000UL, BitConverter.ToUInt64(bytes[8..16]));
        Assert.Equal(2UL, BitConverter.ToUInt64(bytes[16..24]));
    }

    [Fact]
    public void Userfaultfd_ioctl_arguments_match_the_kernel_sizes()
    {
        // The sizes are encoded in the ioctl numbers: 0xC018AA3F (24), 0xC020AA00 (32), 0x8010AA01 (16), 0xC018AA06 (24).
        Assert.Equal(24, Unsafe.SizeOf<UffdioApi>());
        Assert.Equal(32, Unsafe.SizeOf<UffdioRegister>());
        Assert.Equal(16, Unsafe.SizeOf<UffdioRange>());
        Assert.Equal(24, Unsafe.SizeOf<UffdioWriteProtect>());
        Assert.Equal(16, (int)Marshal.OffsetOf<UffdioRegister>(nameof(UffdioRegister.Mode)));
        Assert.Equal(16, (int)Marshal.OffsetOf<UffdioWriteProtect>(nameof(UffdioWriteProtect.Mode)));
    }

    [Fact]
    public void User_registers_are_27_words_in_user_regs_struct_order()
    {
        Assert.Equal(27 * 8, Unsafe.SizeOf<UserRegisters>());
        Assert.Equal(10 * 8, (int)Marshal.OffsetOf<UserRegisters>(nameof(UserRegisters.Rax)));
        Assert.Equal(14 * 8, (int)Marshal.OffsetOf<UserRegisters>(nameof(UserRegisters.Rdi)));
        Assert.Equal(15 * 8, (int)Marshal.OffsetOf<UserRegisters>(nameof(UserRegisters.OrigRax)));
        Assert.Equal(16 * 8, (int)Marshal.OffsetOf<UserRegisters>(nameof(UserRegisters.Rip)));
        Assert.Equal(26 * 8, (int)Marshal.OffsetOf<UserRegisters>(nameof(UserRegisters.Gs)));
    }

    [Theory]
    [InlineData(0x057f, true, 5, 0)] // stopped by SIGTRAP: a signal-delivery stop
    [InlineData(0x80057f, true, 5, 128)] // PTRACE_EVENT_STOP after PTRACE_INTERRUPT
    [InlineData(0x0009, false, 0, 0)] // killed by SIGKILL
    public void Wait_status_decodes_ptrace_stops(int raw, bool stopped, int signal, int ptraceEvent)
    {
        var status = new WaitStatus(raw);
        Assert.Equal(stopped, status.Stopped);
        if (stopped)
        {
            Assert.Equal(signal, status.StopSignal);
            Assert.Equal(ptraceEvent, status.Event);
            Assert.Equal(ptraceEvent == 0, status.IsSignalDeliveryStop);
        }
        else
        {
            Assert.True(status.Signaled);
        }
    }
}
