using McGrpc.Fuzz;
using McGrpc.Shared.Frames;
using Xunit.Abstractions;

namespace McGrpc.Tests.Security;

/// <summary>
/// The fuzzer in CI: random and mutated streams built from real-shaped epochs,
/// into mc-backup's decoder, epoch rules and applier. No crash, no hang, no
/// write outside the pages accepted runs name, no rejected epoch applied.
/// </summary>
public sealed class FrameFuzzTests
{
    private readonly ITestOutputHelper _output;

    public FrameFuzzTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public void Ten_thousand_random_and_mutated_streams_never_corrupt_the_backup()
    {
        var options = new FuzzOptions
        {
            Streams = 10_000,
            Seed = 20240611,
            Workers = 2,
            RamKiB = 2048,
            // Generous: CI machines here run QEMU guests next to the tests.
            StreamTimeoutMs = 30_000,
            FailureDirectory = Path.Combine(Path.GetTempPath(), "mcgrpc-fuzz-failures"),
        };

        var report = FuzzRunner.Run(options, _output.WriteLine);
        _output.WriteLine(report.ToString());

        Assert.True(report.Failure is null, report.ToString());
        Assert.Equal(10_000, report.Streams);
        Assert.True(report.ValidStreams > 1000 && report.MutatedStreams > 5000 && report.RandomStreams > 500, report.ToString());

        // The streams reach deep: many epochs applied and refused, by many different rules.
        Assert.True(report.EpochsApplied > 2000, report.ToString());
        Assert.True(report.EpochsRejected > 2000, report.ToString());
        Assert.True(report.Rejections.Count >= 40, report.ToString());
        foreach (var rule in new[] { "ends beyond guest RAM", "content digest differs", "is the next one", "second Hello", "Hello refused", "LZ#", "larger than", "epochs must increase" })
        {
            Assert.True(report.Rejections.Keys.Any(k => k.Contains(rule, StringComparison.Ordinal)), $"no stream was refused for '{rule}'\n{report}");
        }
    }

    [Fact]
    public async Task Epochs_recorded_from_a_changing_ram_file_replay_and_mutate()
    {
        // Stands in for a running guest's RAM file: something keeps writing to it.
        var path = Path.Combine(Path.GetTempPath(), $"mcgrpc-fuzz-live-{Guid.NewGuid():N}.ram");
        var image = new GuestImage(256, FrameLimits.PageSize, new Random(5));
        File.WriteAllBytes(path, image.Bytes);
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            while (!stop.IsCancellationRequested)
            {
                foreach (var page in image.Dirty())
                {
                    RandomAccess.Write(file, image.Bytes.AsSpan(page * FrameLimits.PageSize, FrameLimits.PageSize), (long)page * FrameLimits.PageSize);
                }

                await Task.Delay(5);
            }
        });
        try
        {
            var report = FuzzRunner.Run(new FuzzOptions { Streams = 500, Seed = 3, Workers = 1, RamKiB = 1024, RecordRam = path, RecordEpochs = 6, RecordIntervalMs = 20, StreamTimeoutMs = 30_000 });
            _output.WriteLine(report.ToString());
            Assert.True(report.Failure is null, report.ToString());
            Assert.Contains("recorded from", report.CorpusSource, StringComparison.Ordinal);
            Assert.True(report.EpochsApplied > 50, report.ToString());
        }
        finally
        {
            await stop.CancelAsync();
            await writer;
            File.Delete(path);
        }
    }
}
