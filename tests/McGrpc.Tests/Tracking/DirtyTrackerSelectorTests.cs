using System.IO.Compression;
using McGrpc.Primary.Tracking;
using McGrpc.Shared.Native;
using Microsoft.Extensions.Logging.Abstractions;

namespace McGrpc.Tests.Tracking;

/// <summary>Selection rules that need no QEMU (the uffd-wp choice on a real QEMU is in <see cref="UffdWpQemuTests"/>).</summary>
public sealed class DirtyTrackerSelectorTests
{
    private static readonly int PageSize = Environment.SystemPageSize;

    [Theory]
    [InlineData("auto", "auto")]
    [InlineData("uffd-wp", "uffd-wp")]
    [InlineData(" Soft-Dirty ", "soft-dirty")]
    [InlineData("compare", "compare")]
    public void Option_values_parse(string value, string name)
    {
        Assert.Equal(name, DirtyTrackerSelector.NameOf(DirtyTrackerSelector.ParseMode(value)));
    }

    [Fact]
    public void Unknown_option_value_names_the_valid_ones()
    {
        var error = Assert.Throws<ArgumentException>(() => DirtyTrackerSelector.ParseMode("dirty-ring"));
        Assert.Contains("uffd-wp", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_ram_discarding_device_makes_auto_fall_back_to_compare_with_the_reason()
    {
        using var ram = MappedMemory.AllocateAnonymous(64L * PageSize);
        var target = new DirtyTrackerTarget(Environment.ProcessId, (ulong)ram.Address, ram.Length, PageSize, ram, HasRamDiscardingDevice: true);

        var selection = DirtyTrackerSelector.Select(DirtyTrackerMode.Auto, target, NullLogger.Instance);
        using var tracker = selection.Tracker;

        Assert.Equal("compare", tracker.Name);
        Assert.Equal(["uffd-wp", "soft-dirty"], selection.Rejected.Select(r => r.Tracker));
        Assert.All(selection.Rejected, r => Assert.Contains("virtio-balloon or virtio-mem", r.Reason, StringComparison.Ordinal));
    }

    [Fact]
    public void Forcing_uffd_wp_with_a_ram_discarding_device_is_an_error()
    {
        using var ram = MappedMemory.AllocateAnonymous(64L * PageSize);
        var target = new DirtyTrackerTarget(Environment.ProcessId, (ulong)ram.Address, ram.Length, PageSize, ram, HasRamDiscardingDevice: true);

        var error = Assert.Throws<DirtyTrackerUnavailableException>(() => DirtyTrackerSelector.Select(DirtyTrackerMode.UffdWp, target, NullLogger.Instance));
        Assert.Equal("uffd-wp", error.Tracker);
        Assert.Contains("RAM-discarding device", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Forced_compare_is_used_without_probing_the_others()
    {
        using var ram = MappedMemory.AllocateAnonymous(64L * PageSize);
        var target = new DirtyTrackerTarget(Environment.ProcessId, (ulong)ram.Address, ram.Length, PageSize, ram, HasRamDiscardingDevice: false);

        var selection = DirtyTrackerSelector.Select(DirtyTrackerMode.Compare, target, NullLogger.Instance);
        using var tracker = selection.Tracker;

        Assert.Equal("compare", tracker.Name);
        Assert.Empty(selection.Rejected);
    }

    [Fact]
    public void Forcing_uffd_wp_on_a_process_that_does_not_exist_is_an_error_naming_the_cause()
    {
        using var ram = MappedMemory.AllocateAnonymous(64L * PageSize);
        var target = new DirtyTrackerTarget(int.MaxValue - 1, 0x7f0000000000, ram.Length, PageSize, ram, HasRamDiscardingDevice: false);

        var error = Assert.Throws<DirtyTrackerUnavailableException>(() => DirtyTrackerSelector.Select(DirtyTrackerMode.UffdWp, target, NullLogger.Instance));
        Assert.Contains("pagemap", error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Forcing_soft_dirty_follows_the_kernel_configuration()
    {
        // The target is this test process's own memory: on a kernel with
        // CONFIG_MEM_SOFT_DIRTY that is a real soft-dirty tracker; on this
        // machine's kernel (without it) the forced choice must be refused.
        using var ram = MappedMemory.AllocateAnonymous(64L * PageSize);
        var target = new DirtyTrackerTarget(Environment.ProcessId, (ulong)ram.Address, ram.Length, PageSize, ram, HasRamDiscardingDevice: false);

        if (SoftDirtyConfigured())
        {
            var selection = DirtyTrackerSelector.Select(DirtyTrackerMode.SoftDirty, target, NullLogger.Instance);
            using var tracker = selection.Tracker;
            tracker.Start();
            ram.Write(5L * PageSize, 1)[0] = 1;
            var runs = new DirtyPageRuns();
            tracker.Harvest(runs);
            Assert.Equal([new PageRange(5, 1)], runs.Ranges.ToArray());
        }
        else
        {
            var error = Assert.Throws<DirtyTrackerUnavailableException>(() => DirtyTrackerSelector.Select(DirtyTrackerMode.SoftDirty, target, NullLogger.Instance));
            Assert.Equal("soft-dirty", error.Tracker);
            Assert.Contains("CONFIG_MEM_SOFT_DIRTY", error.Reason, StringComparison.Ordinal);
        }
    }

    private static bool SoftDirtyConfigured()
    {
        if (!File.Exists("/proc/config.gz"))
        {
            return DirtyTrackingProbe.ProbeSoftDirty() is null;
        }

        using var file = File.OpenRead("/proc/config.gz");
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        return reader.ReadToEnd().Contains("CONFIG_MEM_SOFT_DIRTY=y", StringComparison.Ordinal);
    }
}
