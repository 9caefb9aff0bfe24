using System.Diagnostics;
using McGrpc.Primary.Tracking;
using McGrpc.Shared.Native;
using Xunit.Abstractions;

namespace McGrpc.Tests.Tracking;

/// <summary>
/// The uffd-wp tracker against the byte-comparison oracle, on a real QEMU
/// running the memory verifier.
/// </summary>
[Collection(TrackingQemuCollection.Name)]
public sealed class UffdWpOracleTests
{
    private const int Epochs = 60;
    private static readonly int PageSize = Environment.SystemPageSize;
    private readonly TrackingQemu _qemu;
    private readonly ITestOutputHelper _output;

    public UffdWpOracleTests(MemverifyGuestFixture fixture, ITestOutputHelper output)
    {
        _qemu = fixture.Qemu;
        _output = output;
    }

    [Fact]
    public async Task Every_page_whose_bytes_changed_between_two_stops_is_reported()
    {
        var pageCount = (int)(TrackingQemu.RamSize / PageSize);
        using var ram = _qemu.MapRam();
        using var shadow = MappedMemory.AllocateAnonymous(TrackingQemu.RamSize);
        using var tracker = _qemu.CreateUffdWpTracker(ram);
        var runs = new DirtyPageRuns();
        var reported = new bool[pageCount];

        await _qemu.StopAsync();
        tracker.Start();
        TrackingQemu.CopyRam(ram, shadow);

        // Idle: the guest is stopped, so a scan finds (almost) nothing and costs the page-table walk only.
        var idle = new List<double>();
        for (var i = 0; i < 20; i++)
        {
            runs.Clear();
            var clock = Stopwatch.StartNew();
            tracker.Harvest(runs);
            idle.Add(clock.Elapsed.TotalMilliseconds);
        }

        await _qemu.ContAsync();

        var busy = new List<double>();
        long changedTotal = 0, reportedTotal = 0;
        var missed = new List<string>();
        for (var epoch = 1; epoch <= Epochs; epoch++)
        {
            await Task.Delay(50 + (epoch % 6 * 10));
            await _qemu.StopAsync();

            runs.Clear();
            var clock = Stopwatch.StartNew();
            tracker.Harvest(runs);
            busy.Add(clock.Elapsed.TotalMilliseconds);
            reportedTotal += runs.PageCount;
            Array.Clear(reported);
            foreach (var range in runs.Ranges)
            {
                Array.Fill(reported, true, (int)range.FirstPage, (int)range.PageCount);
            }

            for (var page = 0; page < pageCount; page++)
            {
                var offset = (long)page * PageSize;
                var now = ram.Read(offset, PageSize);
                if (now.SequenceEqual(shadow.Read(offset, PageSize)))
                {
                    continue;
                }

                changedTotal++;
                if (!reported[page] && missed.Count < 20)
                {
                    missed.Add($"epoch {epoch} page {page}");
                }

                now.CopyTo(shadow.Write(offset, PageSize));
            }

            await _qemu.ContAsync();
        }

        _output.WriteLine($"{Epochs} epochs: {changedTotal} pages changed, {reportedTotal} reported, superset ratio {reportedTotal / (double)Math.Max(1, changedTotal):F3}, missed {missed.Count}");
        _output.WriteLine($"harvest idle (guest stopped, 256 MiB): p50 {Percentile(idle, 0.5):F3} ms, max {idle.Max():F3} ms");
        _output.WriteLine($"harvest under memverify: p50 {Percentile(busy, 0.5):F3} ms, p99 {Percentile(busy, 0.99):F3} ms, max {busy.Max():F3} ms, {reportedTotal / Epochs} pages per epoch on average");
        Assert.True(missed.Count == 0, $"uffd-wp missed changed pages: {string.Join(", ", missed)}");
        Assert.True(changedTotal > Epochs, $"Only {changedTotal} pages changed in {Epochs} epochs: is the verifier running?\n{_qemu.Diagnostics}");
        Assert.True(await _qemu.IsRunningAsync(), _qemu.Diagnostics);
        await _qemu.WaitForMemverifyAsync(1, TimeSpan.FromSeconds(30));
    }

    private static double Percentile(List<double> values, double fraction)
    {
        var sorted = values.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(fraction * sorted.Length) - 1)];
    }
}
