using Grpc.Core;
using McGrpc.Protos.Control;

namespace McGrpc.Tests.Control;

/// <summary>
/// Every refusal of the control API: the right status code, a message that
/// says what to do, and nothing changed. Table-driven; each case first brings
/// the daemon to the situation it needs (mc off, mc on, a session in progress).
/// </summary>
[Collection(IdleDaemonsCollection.Name)]
public sealed class ControlValidationTests
{
    private const string Target = "tcp:10.0.0.3:6666";

    private static readonly Dictionary<string, PrimaryCase> PrimaryCases = new PrimaryCase[]
    {
        new("SetCapability without a name", Situation.McOff, c => c.SetCapabilityAsync(new SetCapabilityRequest { Name = "", Enabled = true }).ResponseAsync, StatusCode.InvalidArgument, "name is required: one of mc, mc-net-disable, mc-disk-disable"),
        new("SetCapability of an unknown capability", Situation.McOff, c => c.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc-rdma-copy", Enabled = true }).ResponseAsync, StatusCode.InvalidArgument, "Unknown capability 'mc-rdma-copy'; known: mc, mc-net-disable, mc-disk-disable"),
        new("SetCapability names are exact", Situation.McOff, c => c.SetCapabilityAsync(new SetCapabilityRequest { Name = "MC", Enabled = true }).ResponseAsync, StatusCode.InvalidArgument, "Unknown capability 'MC'"),
        new("SetMcDelay of 0 (or no delay_ms)", Situation.McOff, c => c.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = 0 }).ResponseAsync, StatusCode.InvalidArgument, "delay_ms must be 1..60000 ms, not 0"),
        new("SetMcDelay above a minute", Situation.McOff, c => c.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = 60001 }).ResponseAsync, StatusCode.InvalidArgument, "delay_ms must be 1..60000 ms, not 60001"),
        new("Migrate while mc is off", Situation.McOff, c => c.MigrateAsync(new MigrateRequest { Target = Target }).ResponseAsync, StatusCode.FailedPrecondition, "Capability mc is off: turn it on first"),
        new("Cancel when not protecting", Situation.McOff, c => c.CancelAsync(new CancelRequest()).ResponseAsync, StatusCode.FailedPrecondition, "Not protecting (state idle); nothing to cancel"),
        new("WatchStatus with min_interval_ms above a minute", Situation.McOff, WatchFirstAsync(60001), StatusCode.InvalidArgument, "min_interval_ms must be 0..60000"),
        new("Migrate without a target", Situation.McOn, c => c.MigrateAsync(new MigrateRequest()).ResponseAsync, StatusCode.InvalidArgument, "The target is empty; give tcp:HOST:PORT"),
        new("Migrate to tcp: without a port", Situation.McOn, c => c.MigrateAsync(new MigrateRequest { Target = "tcp:10.0.0.3" }).ResponseAsync, StatusCode.InvalidArgument, "is not tcp:HOST:PORT"),
        new("Migrate to tcp: with a port that is no number", Situation.McOn, c => c.MigrateAsync(new MigrateRequest { Target = "tcp:10.0.0.3:http" }).ResponseAsync, StatusCode.InvalidArgument, "tcp:10.0.0.3:http"),
        new("Migrate to a port out of range", Situation.McOn, c => c.MigrateAsync(new MigrateRequest { Target = "tcp:10.0.0.3:70000" }).ResponseAsync, StatusCode.InvalidArgument, "tcp:10.0.0.3:70000"),
        new("Migrate to an unsupported scheme", Situation.McOn, c => c.MigrateAsync(new MigrateRequest { Target = "rdma:10.0.0.3:6666" }).ResponseAsync, StatusCode.InvalidArgument, "is not a supported target; give tcp:HOST:PORT, http://HOST:PORT or https://HOST:PORT"),
        new("Migrate to a URL with a path", Situation.McOn, c => c.MigrateAsync(new MigrateRequest { Target = "http://10.0.0.3:6666/vm" }).ResponseAsync, StatusCode.InvalidArgument, "must be just a host and a port"),
        new("Migrate to a URL without a port", Situation.McOn, c => c.MigrateAsync(new MigrateRequest { Target = "http://10.0.0.3" }).ResponseAsync, StatusCode.InvalidArgument, "has no port"),
        new("Migrate to a target with a leading space", Situation.McOn, c => c.MigrateAsync(new MigrateRequest { Target = " " + Target }).ResponseAsync, StatusCode.InvalidArgument, "is not a supported target"),
        new(
            "Migrate of a VM with a writable disk while mc-disk-disable is off",
            Situation.McOn,
            c => c.MigrateAsync(new MigrateRequest { Target = Target }).ResponseAsync,
            StatusCode.FailedPrecondition,
            "Until disk replication exists, the only safe disk is one on storage shared by both hosts: put the image there, then turn on mc-disk-disable"),
        new("Migrate while already protecting", Situation.Protecting, c => c.MigrateAsync(new MigrateRequest { Target = Target }).ResponseAsync, StatusCode.FailedPrecondition, "Already protecting to tcp:127.0.0.1:"),
        new("mc off while protecting", Situation.Protecting, c => c.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc", Enabled = false }).ResponseAsync, StatusCode.FailedPrecondition, "call Cancel to stop it, then turn mc off"),
        new("mc-disk-disable off while protecting a VM with a writable disk", Situation.Protecting, c => c.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc-disk-disable", Enabled = false }).ResponseAsync, StatusCode.FailedPrecondition, "mc-disk-disable cannot be turned off while protecting it"),
        new("SetMcDelay of 0 while protecting", Situation.Protecting, c => c.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = 0 }).ResponseAsync, StatusCode.InvalidArgument, "delay_ms must be 1..60000 ms"),
        new("Unknown capability while protecting", Situation.Protecting, c => c.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc-xbzrle", Enabled = true }).ResponseAsync, StatusCode.InvalidArgument, "Unknown capability 'mc-xbzrle'"),
    }.ToDictionary(c => c.Name);

    private static readonly Dictionary<string, BackupCase> BackupCases = new BackupCase[]
    {
        new("Failover with no checkpoint", c => c.FailoverAsync(new FailoverRequest()).ResponseAsync, StatusCode.FailedPrecondition, "No checkpoint to resume: no full copy of this VM was ever applied here. The VM stays paused."),
        new("forced Failover with no checkpoint", c => c.FailoverAsync(new FailoverRequest { Force = true }).ResponseAsync, StatusCode.FailedPrecondition, "No checkpoint to resume"),
        new("SetFailoverPolicy without a policy", c => c.SetFailoverPolicyAsync(new SetFailoverPolicyRequest()).ResponseAsync, StatusCode.InvalidArgument, "policy is required: auto (fail over when the primary is declared dead) or manual"),
        new("SetFailoverPolicy of an unknown policy", c => c.SetFailoverPolicyAsync(new SetFailoverPolicyRequest { Policy = "witness" }).ResponseAsync, StatusCode.InvalidArgument, "Unknown failover policy 'witness'; use auto or manual."),
        new("SetFailoverPolicy names are exact", c => c.SetFailoverPolicyAsync(new SetFailoverPolicyRequest { Policy = "Manual" }).ResponseAsync, StatusCode.InvalidArgument, "Unknown failover policy 'Manual'"),
    }.ToDictionary(c => c.Name);

    private readonly IdleDaemons _daemons;

    public ControlValidationTests(IdleDaemons daemons)
    {
        _daemons = daemons;
    }

    private enum Situation
    {
        McOff,
        McOn,
        Protecting,
    }

    public static TheoryData<string> PrimaryCaseNames => [.. PrimaryCases.Keys];

    public static TheoryData<string> BackupCaseNames => [.. BackupCases.Keys];

    [Theory]
    [MemberData(nameof(PrimaryCaseNames))]
    public async Task Primary_refuses_with_the_right_code_and_changes_nothing(string name)
    {
        var test = PrimaryCases[name];
        switch (test.Situation)
        {
            case Situation.McOff:
                await _daemons.ResetPrimaryAsync(mc: false);
                break;
            case Situation.McOn:
                await _daemons.ResetPrimaryAsync(mc: true);
                break;
            default:
                await _daemons.StartHopelessProtectionAsync();
                break;
        }

        var before = await _daemons.Primary.QueryStatusAsync(new QueryStatusRequest());
        var refused = await Assert.ThrowsAsync<RpcException>(() => test.Call(_daemons.Primary));
        var after = await _daemons.Primary.QueryStatusAsync(new QueryStatusRequest());

        Assert.True(test.Code == refused.StatusCode, $"{name}: expected {test.Code}, got {refused.StatusCode} ({refused.Status.Detail})");
        Assert.Contains(test.Message, refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(Settings(before), Settings(after));
        if (test.Situation != Situation.Protecting)
        {
            // While connecting, the reason (and its time) follow the retries; otherwise they must stay as they were.
            Assert.Equal((before.StateReason, before.StateSinceUnixMs), (after.StateReason, after.StateSinceUnixMs));
        }
    }

    [Theory]
    [MemberData(nameof(BackupCaseNames))]
    public async Task Backup_refuses_with_the_right_code_and_changes_nothing(string name)
    {
        var test = BackupCases[name];
        var before = await _daemons.Backup.QueryStatusAsync(new QueryStatusRequest());
        Assert.Equal("waiting", before.State);
        var refused = await Assert.ThrowsAsync<RpcException>(() => test.Call(_daemons.Backup));
        var after = await _daemons.Backup.QueryStatusAsync(new QueryStatusRequest());

        Assert.True(test.Code == refused.StatusCode, $"{name}: expected {test.Code}, got {refused.StatusCode} ({refused.Status.Detail})");
        Assert.Contains(test.Message, refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(
            (before.State, before.StateReason, before.FailoverPolicy, before.CanFailover, before.CannotFailoverReason, before.LastAppliedEpoch, before.StateSinceUnixMs),
            (after.State, after.StateReason, after.FailoverPolicy, after.CanFailover, after.CannotFailoverReason, after.LastAppliedEpoch, after.StateSinceUnixMs));
    }

    /// <summary>What a refused call must leave as it was.</summary>
    private static string Settings(PrimaryStatus s)
        => $"state={s.State} target={s.Target} delay={s.DelayMs} epoch={s.Epoch} "
           + string.Join(" ", s.Capabilities.Select(c => $"{c.Name}={c.Enabled}"));

    /// <summary>WatchStatus refuses when the stream is read: the first read throws.</summary>
    private static Func<PrimaryControl.PrimaryControlClient, Task> WatchFirstAsync(uint minIntervalMs) => async c =>
    {
        using var call = c.WatchStatus(new WatchStatusRequest { MinIntervalMs = minIntervalMs });
        await call.ResponseStream.MoveNext(CancellationToken.None);
    };

    private sealed record PrimaryCase(string Name, Situation Situation, Func<PrimaryControl.PrimaryControlClient, Task> Call, StatusCode Code, string Message);

    private sealed record BackupCase(string Name, Func<BackupControl.BackupControlClient, Task> Call, StatusCode Code, string Message);
}
