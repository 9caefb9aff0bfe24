using McGrpc.Primary;
using McGrpc.Primary.Output;

namespace McGrpc.Tests.Output;

/// <summary>
/// The engine's contract kept by <see cref="GatedOutputBuffer"/> for every
/// back end: attach once, ignore barriers while mc-net-disable is on or after
/// a release-all, hold again from the first barrier after a start.
/// </summary>
public sealed class UserspaceGatedBufferTests
{
    private readonly RecordingBuffer _inner = new();

    [Fact]
    public async Task Barriers_before_any_start_are_ignored_and_the_back_end_is_not_attached()
    {
        await using var gate = new GatedOutputBuffer(_inner);
        gate.Barrier(1);
        gate.Release(1);
        await gate.ReleaseAllAndStopAsync(CancellationToken.None);
        Assert.Empty(_inner.Calls);
        Assert.Equal(GatedOutputBuffer.Mode.Detached, gate.Current);
    }

    [Fact]
    public async Task Attached_early_it_passes_through_until_started_then_holds_from_the_next_barrier()
    {
        await using var gate = new GatedOutputBuffer(_inner);
        await gate.AttachAsync(CancellationToken.None);
        gate.Barrier(1);
        Assert.Equal(["start"], _inner.Calls);

        await gate.StartAsync(CancellationToken.None);
        gate.Barrier(2);
        gate.Release(2);
        Assert.Equal(["start", "barrier 2", "release 2"], _inner.Calls);
        Assert.Equal(GatedOutputBuffer.Mode.Holding, gate.Current);
    }

    [Fact]
    public async Task Net_disable_releases_everything_and_later_barriers_are_ignored_until_it_is_turned_off()
    {
        await using var gate = new GatedOutputBuffer(_inner);
        await gate.StartAsync(CancellationToken.None);
        gate.Barrier(1);

        await gate.ReleaseAllAndStopAsync(CancellationToken.None); // mc-net-disable on
        gate.Barrier(2);
        gate.Release(2);
        gate.Barrier(3);

        await gate.StartAsync(CancellationToken.None); // mc-net-disable off
        gate.Barrier(4);
        Assert.Equal(["start", "barrier 1", "release-all", "barrier 4"], _inner.Calls);
    }

    [Fact]
    public async Task A_second_start_never_attaches_twice()
    {
        await using var gate = new GatedOutputBuffer(_inner);
        await gate.StartAsync(CancellationToken.None);
        await gate.StartAsync(CancellationToken.None);
        gate.Barrier(1);
        await gate.StartAsync(CancellationToken.None); // while holding: keeps holding
        gate.Barrier(2);
        Assert.Equal(["start", "barrier 1", "barrier 2"], _inner.Calls);
    }

    [Fact]
    public async Task A_back_end_that_cannot_attach_stays_detached_and_says_why()
    {
        _inner.StartFailure = new KernelOutputBufferException("sch_plug is not available in this kernel");
        await using var gate = new GatedOutputBuffer(_inner);
        var failure = await Assert.ThrowsAsync<KernelOutputBufferException>(() => gate.AttachAsync(CancellationToken.None));
        Assert.Contains("sch_plug", failure.Message, StringComparison.Ordinal);
        gate.Barrier(1);
        Assert.Equal(GatedOutputBuffer.Mode.Detached, gate.Current);
    }

    [Fact]
    public void Output_buffer_defaults_to_auto_and_its_options_are_validated_with_the_daemon_options()
    {
        var options = new PrimaryOptions { QmpSocket = "/tmp/q.sock" };
        Assert.Equal("auto", options.OutputBuffer);
        Assert.Empty(options.Validate());

        options.OutputBuffer = "sometimes";
        options.Output.Userspace.MaxHeldBytes = 1000;
        options.Output.Userspace.Netdevs = "net0,1bad";
        options.Output.Kernel.IfbDevice = "much-too-long-name0";
        var problems = options.Validate();
        Assert.Contains(problems, p => p.Contains("--output-buffer must be auto, userspace, kernel or none", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Output:Userspace: MaxHeldBytes", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Output:Userspace: Netdevs: \"1bad\"", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Output:Kernel: IfbDevice", StringComparison.Ordinal));
    }

    private sealed class RecordingBuffer : IOutputBuffer
    {
        public List<string> Calls { get; } = [];

        public Exception? StartFailure { get; set; }

        public string Name => "recording";

        public OutputBufferStats Stats => default;

        public Task StartAsync(CancellationToken cancellationToken)
        {
            if (StartFailure is not null)
            {
                return Task.FromException(StartFailure);
            }

            Calls.Add("start");
            return Task.CompletedTask;
        }

        public void Barrier(ulong epoch) => Calls.Add($"barrier {epoch}");

        public void Release(ulong epoch) => Calls.Add($"release {epoch}");

        public Task ReleaseAllAndStopAsync(CancellationToken cancellationToken)
        {
            Calls.Add("release-all");
            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
