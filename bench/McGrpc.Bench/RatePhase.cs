using System.Diagnostics;
using System.Globalization;
using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Bench;

/// <summary>
/// Work rate, pause, bytes and round trips of one guest, side by side: the
/// floor (QEMU's own device-state migration), an unprotected baseline, every
/// delay without output buffering, another baseline, every delay with the
/// userspace output buffer (when this build has it), a last baseline. One
/// boot serves all cells; each buffering mode gets one pair and the delay is
/// changed live with SetMcDelay.
/// </summary>
internal sealed class RatePhase
{
    private readonly ReportSettings _settings;
    private readonly ReportData _report;
    private readonly TestVm _guest;
    private readonly SerialTail _tail;
    private readonly int _echoPort;

    /// <summary>Lines a window needs: the first marks the start, the others are averaged.</summary>
    private const int MinWorkRateLines = 6;

    private RatePhase(ReportSettings settings, ReportData report, TestVm guest, SerialTail tail, int echoPort)
    {
        _settings = settings;
        _report = report;
        _guest = guest;
        _tail = tail;
        _echoPort = echoPort;
    }

    public static async Task RunAsync(ReportSettings settings, ReportData report, CancellationToken cancellationToken)
    {
        var echoPort = FreePort.Next();
        var options = new TestVmOptions
        {
            Name = "benchrate",
            MemoryMiB = settings.MemoryMiB,
            Run = "workrate,tcpserve",
            ExtraAppend = string.Join(' ', ["mc.ip=10.0.2.15/24", "mc.gw=10.0.2.2", "mc.loglevel=1", .. settings.WorkRateArgs.Select(a => $"mc.workrate.{a}")]),
            ExtraArgs = ["-netdev", $"user,id=net0,hostfwd=tcp:127.0.0.1:{echoPort}-:5001", "-device", "virtio-net-pci,netdev=net0,romfile="],
        };
        report.RateGuest = string.Create(
            CultureInfo.InvariantCulture,
            $"{settings.MemoryMiB} MiB, 1 vCPU, virtio-net on user networking; workloads workrate ({(settings.WorkRateArgs.Count == 0 ? "its defaults: mb=32 rounds=64 writes=4" : string.Join(' ', settings.WorkRateArgs))}) and tcpserve (echo)");
        Progress.Say($"rate: booting the guest ({report.RateGuest})");
        await using var guest = await TestVm.StartAsync(options);
        await using var tail = new SerialTail(guest.SerialLog);
        await guest.WaitForSerialAsync(l => l.Contains("GUEST READY", StringComparison.Ordinal), TimeSpan.FromMinutes(5), "GUEST READY");
        report.Accelerator = await AcceleratorAsync(guest, cancellationToken);
        var phase = new RatePhase(settings, report, guest, tail, echoPort);
        await phase.RunCellsAsync(cancellationToken);
    }

    private async Task RunCellsAsync(CancellationToken cancellationToken)
    {
        Progress.Say($"rate: floor, {_settings.FloorRuns} device-state-only migrations by QEMU alone");
        _report.Floor.AddRange(await DeviceStateFloor.MeasureAsync(_guest, _settings.FloorRuns, cancellationToken));

        var baseline = await MeasureAsync("unprotected (1)", null, null, cancellationToken);
        var none = await SeriesAsync("none", "without output buffering (--output-buffer none)", baseline, cancellationToken);
        _report.Series.Add(none);
        var userspace = await SeriesAsync("userspace", "with output buffering (--output-buffer userspace)", none.After ?? baseline, cancellationToken);
        _report.Series.Add(userspace);
    }

    private async Task<ProtectionSeries> SeriesAsync(string buffering, string title, RateCell before, CancellationToken cancellationToken)
    {
        var cells = new List<RateCell>();
        string? tracker = null;
        BenchPair? pair = null;
        try
        {
            foreach (var delay in _settings.Delays)
            {
                if (pair is null)
                {
                    Progress.Say($"rate: protecting with --output-buffer {buffering}");
                    (pair, var refused) = await StartPairAsync(buffering, delay);
                    if (pair is null)
                    {
                        if (cells.Count == 0)
                        {
                            // The first pair decides whether this build has the mode at all.
                            Progress.Say($"rate: --output-buffer {buffering}: {refused}");
                            return new ProtectionSeries(buffering, title, null, [], null, refused, null);
                        }

                        _report.Problems.Add($"{buffering}: a new pair for {delay} ms did not become protected ({refused}); the series stops here.");
                        break;
                    }

                    var status = await pair.Primary.QueryStatusAsync(new QueryStatusRequest(), cancellationToken: cancellationToken);
                    tracker = status.Tracker;
                    if (!status.OutputBuffer.StartsWith(buffering, StringComparison.Ordinal))
                    {
                        return new ProtectionSeries(buffering, title, null, [], null, $"mc-primary reports output buffer '{status.OutputBuffer}' when asked for '{buffering}'", tracker);
                    }
                }
                else
                {
                    await pair.Primary.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = (uint)delay }, cancellationToken: cancellationToken);
                }

                var cell = await MeasureAsync($"{buffering}, {delay} ms", delay, pair, cancellationToken);
                cells.Add(cell);
                if (await pair.TryStatusAsync() is not { State: "protected" })
                {
                    // Numbers of a pair that lost protection mid-window are not protected numbers: say so, start afresh for the next delay.
                    var state = await pair.TryStatusAsync();
                    cells[^1] = cell with { Disturbed = $"{state?.State ?? "no answer"}: {state?.StateReason}" };
                    _report.Problems.Add($"{cell.Label}: the pair was no longer protected after the window (mc-primary: {state?.State ?? "no answer"}: {state?.StateReason}); its numbers are suspect. A fresh pair protects the next delay.");
                    await pair.DisposeAsync();
                    pair = null;
                    await EnsureRunningAsync($"a broken pair at {delay} ms", cancellationToken);
                }
            }
        }
        finally
        {
            if (pair is not null)
            {
                await pair.DisposeAsync();
            }
        }

        Progress.Say($"rate: protection with --output-buffer {buffering} stopped");
        await EnsureRunningAsync($"stopping protection with --output-buffer {buffering}", cancellationToken);
        var afterBaseline = await MeasureAsync($"unprotected ({_report.Series.Count + 2})", null, null, cancellationToken);
        return new ProtectionSeries(buffering, title, before, cells, afterBaseline, null, tracker);
    }

    /// <summary>A pair at <paramref name="delay"/>, or null and why not.</summary>
    private async Task<(BenchPair? Pair, string Reason)> StartPairAsync(string buffering, int delay)
    {
        try
        {
            var pair = await BenchPair.StartAsync(
                _guest,
                ["--output-buffer", buffering, "--delay", delay.ToString(CultureInfo.InvariantCulture)],
                // Cost measurements must never end in a failover (a starved machine can miss a heartbeat): the backup only reports.
                ["--failover-policy", "manual"],
                // Only one QEMU can bind the echo port's forward; the backup gets the same NIC on a netdev without it.
                o => o with { ExtraArgs = ["-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile="] });
            return (pair, string.Empty);
        }
        catch (BenchPairException e)
        {
            return (null, e.Reason);
        }
        catch (TimeoutException e)
        {
            return (null, e.Message.Split('\n')[0]);
        }
    }

    private async Task<RateCell> MeasureAsync(string label, int? delay, BenchPair? pair, CancellationToken cancellationToken)
    {
        // After a delay change or a new pair: let the first epochs (the full copy's tail, the old delay's last wait) pass.
        await Task.Delay(TimeSpan.FromSeconds(_settings.SettleSeconds), cancellationToken);
        await using var watch = pair is null ? null : EpochWatch.Start(pair.Primary);
        var from = Stopwatch.GetTimestamp();
        await Task.Delay(TimeSpan.FromSeconds(_settings.CellSeconds), cancellationToken);

        // A heavily paused guest lives fewer seconds than the host: extend the
        // window (up to 3x) until it printed enough lines to average over.
        while (CountWorkRateLines(from) < MinWorkRateLines && Stopwatch.GetElapsedTime(from).TotalSeconds < 3 * _settings.CellSeconds)
        {
            await Task.Delay(250, cancellationToken);
        }

        var to = Stopwatch.GetTimestamp();
        var epochs = watch is null ? [] : await watch.StopAsync();
        var taken = watch?.Taken ?? 0;
        var rate = WorkRate.From(_tail.Between(from, to));
        if (rate is null)
        {
            _report.Problems.Add($"{label}: fewer than 3 WORKRATE lines in {Stopwatch.GetElapsedTime(from, to).TotalSeconds:F0} s; the guest was starved.");
        }

        LatencyResult? latency = null;
        if (LatencyHook.Missing is null)
        {
            try
            {
                latency = await LatencyHook.MeasureAsync(_echoPort, _settings.LatencyCount, cancellationToken);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                _report.Problems.Add($"{label}: round trips failed: {e.Message}");
            }
        }

        _report.LatencyUnavailable = LatencyHook.Missing;
        var cell = new RateCell(label, delay, rate, epochs, taken, Stopwatch.GetElapsedTime(from, to).TotalSeconds, latency);
        Progress.Say(string.Create(
            CultureInfo.InvariantCulture,
            $"rate: {label}: wall {rate?.WallClock:F0} it/s, guest clock {rate?.GuestClock:F0} it/s, {epochs.Count}/{taken} epochs sampled, pause p50 {Stats.P50(cell.Of(e => e.DowntimeMs)):F1} ms, RTT p50 {latency?.P50:F1} ms"));
        return cell;
    }

    private int CountWorkRateLines(long from)
        => _tail.Between(from, Stopwatch.GetTimestamp()).Count(l => l.Text.Contains("WORKRATE ", StringComparison.Ordinal));

    /// <summary>A baseline of a paused guest would be no baseline: check, and resume it (saying so in the report) if something left it stopped.</summary>
    private async Task EnsureRunningAsync(string after, CancellationToken cancellationToken)
    {
        var qmp = await _guest.QmpAsync();
        var status = await qmp.QueryStatusAsync(cancellationToken);
        if (status.Running)
        {
            return;
        }

        _report.Problems.Add($"the guest was '{status.Status}' after {after}; the bench resumed it with cont.");
        await qmp.ContAsync(cancellationToken);
    }

    private static async Task<string> AcceleratorAsync(TestVm guest, CancellationToken cancellationToken)
    {
        var qmp = await guest.QmpAsync();
        var kvm = await qmp.ExecuteAsync("query-kvm", null, cancellationToken);
        return kvm.GetProperty("enabled").GetBoolean() ? "KVM" : "TCG (query-kvm: enabled=false)";
    }
}
