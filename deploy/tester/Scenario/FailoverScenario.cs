using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client;
using McGrpc.ComposeTester.Docker;
using McGrpc.ComposeTester.Guest;
using McGrpc.Protos.Control;

namespace McGrpc.ComposeTester.Scenario;

/// <summary>
/// The compose end-to-end test: protect the guest, run verified traffic,
/// kill the primary container, and check that the guest carries on from the
/// backup container with the same address, its memory intact and (with
/// output commit) the same TCP connection.
/// </summary>
internal sealed partial class FailoverScenario : IAsyncDisposable
{
    private readonly TesterSettings _settings;
    private readonly GrpcChannel _primaryChannel;
    private readonly GrpcChannel _backupChannel;
    private readonly PrimaryControl.PrimaryControlClient _primary;
    private readonly BackupControl.BackupControlClient _backup;
    private readonly SerialLog _primarySerial;
    private readonly SerialLog _backupSerial;
    private SeqStream? _stream;
    private PrimaryStatus? _lastPrimary;
    private BackupStatus? _lastBackup;
    private string _lastError = "nothing yet";

    public FailoverScenario(TesterSettings settings)
    {
        _settings = settings;
        _primaryChannel = GrpcChannel.ForAddress(settings.PrimaryControl);
        _backupChannel = GrpcChannel.ForAddress(settings.BackupControl);
        _primary = new PrimaryControl.PrimaryControlClient(_primaryChannel);
        _backup = new BackupControl.BackupControlClient(_backupChannel);
        _primarySerial = new SerialLog(Path.Combine(settings.LogDir, "primary", "serial.log"));
        _backupSerial = new SerialLog(Path.Combine(settings.LogDir, "backup", "serial.log"));
    }

    /// <summary>The last statuses seen, for the failure report.</summary>
    public string LastStatuses =>
        $"mc-primary: {Describe(_lastPrimary)}\nmc-backup: {Describe(_lastBackup)}";

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await WaitForDaemonsAsync(cancellationToken).ConfigureAwait(false);
        await WaitForGuestAsync(cancellationToken).ConfigureAwait(false);
        await ProtectAsync(cancellationToken).ConfigureAwait(false);
        var tcpRequired = await RunProtectedAsync(cancellationToken).ConfigureAwait(false);
        var beforeKill = await KillPrimaryAsync(cancellationToken).ConfigureAwait(false);
        await WaitForFailoverAsync(cancellationToken).ConfigureAwait(false);
        await CheckCounterContinuesAsync(beforeKill, cancellationToken).ConfigureAwait(false);
        await CheckMemoryAsync(cancellationToken).ConfigureAwait(false);
        await CheckGuestAddressMovedAsync(cancellationToken).ConfigureAwait(false);
        await CheckStreamAfterFailoverAsync(beforeKill, tcpRequired, cancellationToken).ConfigureAwait(false);
        await CheckStillRunningAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stream is not null)
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
        }

        _primaryChannel.Dispose();
        _backupChannel.Dispose();
    }

    private async Task WaitForDaemonsAsync(CancellationToken cancellationToken)
    {
        Reporter.Step($"waiting for mc-primary ({_settings.PrimaryControl}) and mc-backup ({_settings.BackupControl})");
        await Wait.UntilAsync(
            "both daemons to answer QueryStatus",
            _settings.Scaled(180),
            async ct =>
            {
                var p = await TryPrimaryAsync(ct).ConfigureAwait(false);
                var b = await TryBackupAsync(ct).ConfigureAwait(false);
                if (p?.State is "failed" || b?.State is "failed")
                {
                    throw new TestFailedException($"a daemon failed at start-up. {LastStatuses}");
                }

                return p is { State: not "starting" } && b is { State: not "starting" };
            },
            () => $"{_lastError}. {LastStatuses}",
            cancellationToken).ConfigureAwait(false);
        Reporter.Ok($"mc-primary is {_lastPrimary!.State} (VM '{_lastPrimary.VmId}'), mc-backup is {_lastBackup!.State} (VM '{_lastBackup.VmId}')");
        if (_lastPrimary.State != "idle")
        {
            throw new TestFailedException($"mc-primary should be idle before the test protects the VM, it is {_lastPrimary.State} ({_lastPrimary.StateReason})");
        }

        if (_lastBackup.State != "waiting")
        {
            throw new TestFailedException($"mc-backup should be waiting for the primary, it is {_lastBackup.State} ({_lastBackup.StateReason})");
        }
    }

    private async Task WaitForGuestAsync(CancellationToken cancellationToken)
    {
        Reporter.Step($"waiting for the guest to boot on the primary ({_primarySerial.Path})");
        await Wait.UntilAsync(
            "GUEST READY on the primary's serial console",
            _settings.Scaled(240),
            _ =>
            {
                if (_primarySerial.Problems() is { Count: > 0 } problems)
                {
                    throw new TestFailedException($"the guest reports problems while booting: {string.Join(" | ", problems)}");
                }

                return Task.FromResult(_primarySerial.Contains("GUEST READY"));
            },
            () => $"{_primarySerial.ReadLines().Count} serial lines",
            cancellationToken).ConfigureAwait(false);
        Reporter.Ok($"guest ready; counter at {LastOrNone(_primarySerial.Counters())}");

        Reporter.Step($"checking the guest's network from here: echo on {_settings.GuestAddress}:{_settings.EchoPort}");
        var rtt = await EchoUntilAsync("the guest's echo port before protection", _settings.Scaled(60), cancellationToken).ConfigureAwait(false);
        Reporter.Ok($"echo answered in {rtt.TotalMilliseconds:F0} ms");

        Reporter.Step($"opening the verified duplex stream to {_settings.GuestAddress}:{_settings.SeqPort} ({_settings.SeqRate / 1024} KiB/s each way)");
        _stream = await SeqStream.OpenAsync(_settings.GuestAddress, _settings.SeqPort, _settings.SeqRate, cancellationToken).ConfigureAwait(false);
        await Wait.UntilAsync(
            "the first bytes of the stream",
            _settings.Scaled(20),
            _ => StreamFailure() is { } failure
                ? throw new TestFailedException($"the stream broke before protection: {failure}")
                : Task.FromResult(_stream.Received > 0),
            () => $"sent {_stream.Sent:#,0}, received {_stream.Received:#,0}",
            cancellationToken).ConfigureAwait(false);
        Reporter.Ok("stream flowing");
    }

    private async Task ProtectAsync(CancellationToken cancellationToken)
    {
        Reporter.Step($"protecting the VM: SetCapability mc, SetMcDelay {_settings.DelayMs} ms, Migrate {_settings.BackupTarget}");
        try
        {
            await _primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc", Enabled = true }, cancellationToken: cancellationToken).ConfigureAwait(false);
            await _primary.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = _settings.DelayMs }, cancellationToken: cancellationToken).ConfigureAwait(false);
            _lastPrimary = await _primary.MigrateAsync(new MigrateRequest { Target = _settings.BackupTarget }, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            throw new TestFailedException($"mc-primary refused to start protection: {e.StatusCode}: {e.Status.Detail}", e);
        }

        Reporter.Info($"mc-primary: {_lastPrimary.State}; tracker {Or(_lastPrimary.Tracker, "(not chosen yet)")}, output buffer {Or(_lastPrimary.OutputBuffer, "none")}");
        var nextProgress = Reporter.Elapsed + TimeSpan.FromSeconds(5);
        await Wait.UntilAsync(
            "both daemons to report protected (initial copy applied)",
            _settings.Scaled(300),
            async ct =>
            {
                var p = await TryPrimaryAsync(ct).ConfigureAwait(false);
                var b = await TryBackupAsync(ct).ConfigureAwait(false);
                if (b is { LastRejection.Length: > 0 })
                {
                    throw new TestFailedException($"the backup refused the primary: {b.LastRejection}");
                }

                if (p?.State is "failed" or "fenced" or "unprotected")
                {
                    throw new TestFailedException($"protection did not start: mc-primary is {p.State}: {p.StateReason}");
                }

                if (b?.State is "failed" or "failed_over" or "failing_over")
                {
                    throw new TestFailedException($"protection did not start: mc-backup is {b.State}: {b.StateReason}");
                }

                if (Reporter.Elapsed >= nextProgress && p?.Sync is { RamSize: > 0 } sync)
                {
                    nextProgress = Reporter.Elapsed + TimeSpan.FromSeconds(5);
                    Reporter.Info($"initial copy {sync.BytesCopied >> 20} of {sync.RamSize >> 20} MiB, round {sync.Round}, {sync.RateMbps:F0} MB/s");
                }

                return p?.State == "protected" && b?.State == "protected";
            },
            () => LastStatuses,
            cancellationToken).ConfigureAwait(false);
        Reporter.Ok($"protected: epoch {_lastPrimary!.Epoch}, tracker {_lastPrimary.Tracker}, output buffer {Or(_lastPrimary.OutputBuffer, "none")}");
    }

    /// <summary>Runs traffic under protection; returns whether the TCP stream must survive the failover.</summary>
    private async Task<bool> RunProtectedAsync(CancellationToken cancellationToken)
    {
        var stream = _stream!;
        var startSent = stream.Sent;
        var startReceived = stream.Received;
        var startAcked = _lastPrimary!.LastAckedEpoch;
        Reporter.Step($"running protected for {_settings.ProtectedSeconds} s with the stream flowing");
        await Task.Delay(TimeSpan.FromSeconds(_settings.ProtectedSeconds), cancellationToken).ConfigureAwait(false);
        var p = await PrimaryAsync(cancellationToken).ConfigureAwait(false);
        var b = await BackupAsync(cancellationToken).ConfigureAwait(false);
        if (p.State != "protected" || b.State != "protected")
        {
            throw new TestFailedException($"protection did not hold. {LastStatuses}");
        }

        if (StreamFailure() is { } failure)
        {
            throw new TestFailedException($"the stream broke while protected: {failure}");
        }

        var epochs = p.LastAckedEpoch - startAcked;
        if (epochs < 3)
        {
            throw new TestFailedException($"only {epochs} checkpoints were acked in {_settings.ProtectedSeconds} s. {LastStatuses}");
        }

        var sent = stream.Sent - startSent;
        var received = stream.Received - startReceived;
        if (received < _settings.ExpectTcpBytes)
        {
            throw new TestFailedException($"the stream carried only {received:#,0} bytes from the guest in {_settings.ProtectedSeconds} s while protected (want {_settings.ExpectTcpBytes:#,0})");
        }

        var s = p.Stats;
        Reporter.Ok($"{epochs} checkpoints acked (last {p.LastAckedEpoch}); pause p50 {s.PauseMs.P50:F1} ms p99 {s.PauseMs.P99:F1} ms; ack latency p50 {s.AckLatencyMsPercentiles.P50:F1} ms; {s.DirtyPages} dirty pages last epoch; stream +{sent:#,0} sent, +{received:#,0} received");
        var outputBuffer = Or(p.OutputBuffer, "none");
        var required = _settings.TcpMustSurvive switch
        {
            "true" => true,
            "false" => false,
            _ => !outputBuffer.StartsWith("none", StringComparison.Ordinal),
        };
        Reporter.Info(required
            ? $"output buffer '{outputBuffer}': the TCP stream must carry on after the failover"
            : $"output buffer '{outputBuffer}': without output commit the TCP stream may stall after the failover; that is reported, not failed");
        return required;
    }

    private async Task<KillSnapshot> KillPrimaryAsync(CancellationToken cancellationToken)
    {
        using var docker = new DockerEngine(_settings.DockerSocket);
        string project;
        (string Id, string Name) target;
        try
        {
            project = await docker.OwnProjectAsync(cancellationToken).ConfigureAwait(false);
            target = await docker.FindServiceContainerAsync(project, _settings.KillService, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException e)
        {
            throw new TestFailedException($"cannot find the primary's container: {e.Message}", e);
        }

        var stream = _stream!;
        var p = await PrimaryAsync(cancellationToken).ConfigureAwait(false);
        Reporter.Step($"killing the primary host: docker kill {target.Name} (service '{_settings.KillService}' of project '{project}')");
        try
        {
            await docker.KillAsync(target.Id, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException e)
        {
            throw new TestFailedException($"docker kill failed: {e.Message}", e);
        }

        // The primary's serial log outlives its container (bind mount): read
        // it now for the exact last line the dead guest printed.
        var counters = _primarySerial.Counters();
        var snapshot = new KillSnapshot(
            LastCounter: counters.Count > 0 ? counters[^1] : 0,
            LastAckedEpoch: p.LastAckedEpoch,
            Sent: stream.Sent,
            Received: stream.Received,
            GuestTcp: _primarySerial.LastTcpSeq(),
            At: Reporter.Elapsed);
        Reporter.Ok($"killed; last counter on the primary {snapshot.LastCounter}, at least checkpoint {snapshot.LastAckedEpoch} acked, stream sent {snapshot.Sent:#,0} received {snapshot.Received:#,0}");
        return snapshot;
    }

    private async Task WaitForFailoverAsync(CancellationToken cancellationToken)
    {
        Reporter.Step("waiting for the backup to take over");
        await Wait.UntilAsync(
            "mc-backup to report failed_over",
            _settings.Scaled(60),
            async ct =>
            {
                var b = await TryBackupAsync(ct).ConfigureAwait(false);
                if (b?.State == "failed")
                {
                    throw new TestFailedException($"the failover failed: {b.StateReason}");
                }

                return b?.State == "failed_over";
            },
            () => LastStatuses,
            cancellationToken).ConfigureAwait(false);
        var b = _lastBackup!;
        Reporter.Ok($"failed over to checkpoint {b.FailoverEpoch}: detection {b.FailoverDetectionMs:F0} ms, restore {b.FailoverRestoreMs:F0} ms, total {b.FailoverTotalMs:F0} ms");
    }

    private async Task CheckCounterContinuesAsync(KillSnapshot beforeKill, CancellationToken cancellationToken)
    {
        Reporter.Step($"checking that the guest's counter carries on from the checkpoint ({_backupSerial.Path})");
        const int wantLines = 20;
        await Wait.UntilAsync(
            $"{wantLines} COUNTER lines from the guest on the backup",
            _settings.Scaled(60),
            _ => Task.FromResult(_backupSerial.Counters().Count >= wantLines),
            () => $"{_backupSerial.Counters().Count} lines, last {LastOrNone(_backupSerial.Counters())}",
            cancellationToken).ConfigureAwait(false);
        var counters = _backupSerial.Counters();
        var first = counters[0];
        if (first <= 1)
        {
            throw new TestFailedException($"the guest on the backup printed COUNTER {first}: it restarted instead of carrying on from the checkpoint");
        }

        if (first > beforeKill.LastCounter + 1)
        {
            throw new TestFailedException($"the guest on the backup starts at COUNTER {first}, ahead of the primary's last {beforeKill.LastCounter}: it cannot have come from a checkpoint of that guest");
        }

        for (var k = 1; k < counters.Count; k++)
        {
            if (counters[k] != counters[k - 1] + 1)
            {
                throw new TestFailedException($"the counter on the backup jumps from {counters[k - 1]} to {counters[k]}");
            }
        }

        var replayed = beforeKill.LastCounter + 1 - first;
        Reporter.Ok($"counter continues on the backup: {first} .. {counters[^1]} (the primary's last line was {beforeKill.LastCounter}; {replayed} replayed from the checkpoint)");
    }

    private async Task CheckMemoryAsync(CancellationToken cancellationToken)
    {
        if (!_primarySerial.ReadLines().Any(l => l.StartsWith("MEMVERIFY ", StringComparison.Ordinal)))
        {
            Reporter.Info("memverify is not running in this guest; memory check skipped");
            return;
        }

        Reporter.Step("checking the guest's memory on the backup (memverify)");
        await Wait.UntilAsync(
            "a full memverify check on the backup",
            _settings.Scaled(60),
            _ =>
            {
                CheckNoGuestProblems();
                return Task.FromResult(_backupSerial.StartingWith("MEMVERIFY ok").Any());
            },
            () => $"last MEMVERIFY line: {_backupSerial.StartingWith("MEMVERIFY").LastOrDefault() ?? "none"}",
            cancellationToken).ConfigureAwait(false);
        Reporter.Ok($"memory consistent after the failover: {_backupSerial.StartingWith("MEMVERIFY ok").Last()}");
    }

    private async Task CheckGuestAddressMovedAsync(CancellationToken cancellationToken)
    {
        Reporter.Step($"checking a new connection to {_settings.GuestAddress}:{_settings.EchoPort} (the guest now runs on the backup)");
        var rtt = await EchoUntilAsync("the guest's echo port after the failover", _settings.Scaled(60), cancellationToken).ConfigureAwait(false);
        Reporter.Ok($"echo answered from the backup in {rtt.TotalMilliseconds:F0} ms: the guest kept its address");
    }

    private async Task CheckStreamAfterFailoverAsync(KillSnapshot beforeKill, bool required, CancellationToken cancellationToken)
    {
        var stream = _stream!;
        var wantReceived = beforeKill.Received + _settings.ExpectTcpBytes;
        Reporter.Step($"checking the stream opened before the kill: it must reach {wantReceived:#,0} bytes received here, and the guest must have received all {beforeKill.Sent:#,0} bytes sent before the kill");
        var guestRx = 0L;
        var carriedOn = await Wait.TryUntilAsync(
            _settings.Scaled(required ? 60 : 15),
            _ =>
            {
                if (StreamFailure() is { } failure)
                {
                    throw new TestFailedException($"the stream broke after the failover: {failure}");
                }

                CheckNoGuestProblems();
                guestRx = _backupSerial.LastTcpSeq()?.Rx ?? 0;
                return Task.FromResult(stream.Received >= wantReceived && guestRx >= beforeKill.Sent);
            },
            cancellationToken).ConfigureAwait(false);
        var toTester = stream.Received >= wantReceived
            ? $"guest -> tester carried on ({beforeKill.Received:#,0} -> {stream.Received:#,0} bytes)"
            : $"guest -> tester stalled ({beforeKill.Received:#,0} -> {stream.Received:#,0} bytes)";
        var toGuest = guestRx >= beforeKill.Sent
            ? $"tester -> guest carried on (the guest has {guestRx:#,0} bytes; {beforeKill.Sent:#,0} were sent before the kill)"
            : $"tester -> guest stalled at {guestRx:#,0} bytes received by the guest (we had sent {beforeKill.Sent:#,0} before the kill: bytes the dead primary acknowledged but its last checkpoint does not hold are never sent again)";
        var summary = string.Create(CultureInfo.InvariantCulture, $"{toTester}; {toGuest}; longest receive gap {stream.LongestGap.TotalSeconds:F1} s");
        if (carriedOn)
        {
            Reporter.Ok($"the TCP connection carried on across the failover with verified data both ways: {summary}");
        }
        else if (required)
        {
            throw new TestFailedException($"the TCP connection did not carry on after the failover: {summary}");
        }
        else
        {
            Reporter.Warn($"the TCP connection stalled after the failover, as it may without output commit: {summary}");
        }
    }

    private async Task CheckStillRunningAsync(CancellationToken cancellationToken)
    {
        var before = _backupSerial.Counters()[^1];
        await Wait.UntilAsync(
            "the guest on the backup to keep counting",
            _settings.Scaled(20),
            _ => Task.FromResult(_backupSerial.Counters()[^1] >= before + 10),
            () => $"counter still {_backupSerial.Counters()[^1]}",
            cancellationToken).ConfigureAwait(false);
        var b = await BackupAsync(cancellationToken).ConfigureAwait(false);
        if (b.State != "failed_over")
        {
            throw new TestFailedException($"mc-backup left failed_over: {b.State} ({b.StateReason})");
        }

        CheckNoGuestProblems();
        Reporter.Ok($"the guest still runs on the backup (counter {_backupSerial.Counters()[^1]}); no memory or stream errors reported by the guest");
    }

    private void CheckNoGuestProblems()
    {
        foreach (var (name, serial) in new[] { ("primary", _primarySerial), ("backup", _backupSerial) })
        {
            if (serial.Problems() is { Count: > 0 } problems)
            {
                throw new TestFailedException($"the guest on the {name} reports: {string.Join(" | ", problems.Take(5))}");
            }
        }
    }

    private async Task<TimeSpan> EchoUntilAsync(string what, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var rtt = TimeSpan.Zero;
        var lastFailure = "no attempt";
        await Wait.UntilAsync(
            what,
            timeout,
            async ct =>
            {
                try
                {
                    rtt = await EchoProbe.ProbeAsync(_settings.GuestAddress, _settings.EchoPort, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
                    return true;
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException && !ct.IsCancellationRequested)
                {
                    lastFailure = e.Message;
                    return false;
                }
            },
            () => lastFailure,
            cancellationToken).ConfigureAwait(false);
        return rtt;
    }

    private string? StreamFailure() => _stream?.Failure;

    private static string Or(string value, string fallback) => string.IsNullOrEmpty(value) ? fallback : value;

    private static string LastOrNone(IReadOnlyList<long> values) => values.Count > 0 ? values[^1].ToString(CultureInfo.InvariantCulture) : "none";

    private static string Describe(PrimaryStatus? s) => s is null
        ? "no answer"
        : $"state {s.State} ({s.StateReason}), epoch {s.Epoch}, last acked {s.LastAckedEpoch}, tracker {s.Tracker}, output buffer {Or(s.OutputBuffer, "none")}";

    private static string Describe(BackupStatus? s) => s is null
        ? "no answer"
        : $"state {s.State} ({s.StateReason}), last applied {s.LastAppliedEpoch}, rejected frames {s.FramesRejected}{(s.LastRejection.Length > 0 ? $" (last: {s.LastRejection})" : "")}";
}
