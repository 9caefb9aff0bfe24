using Grpc.Core;
using Grpc.Health.V1;
using McGrpc.Protos.Control;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Control;

/// <summary>
/// The control plane of both daemons without a protected guest: defaults,
/// reflection, health, the unix control socket, the metrics listener and the
/// writable-disk refusal.
/// </summary>
[Collection(IdleDaemonsCollection.Name)]
public sealed class IdleDaemonTests
{
    private static readonly string[] PrimaryMethods =
    [
        "SetCapability(mcgrpc.control.v1.SetCapabilityRequest) returns (mcgrpc.control.v1.Capabilities)",
        "GetCapabilities(mcgrpc.control.v1.GetCapabilitiesRequest) returns (mcgrpc.control.v1.Capabilities)",
        "SetMcDelay(mcgrpc.control.v1.SetMcDelayRequest) returns (mcgrpc.control.v1.PrimaryStatus)",
        "Migrate(mcgrpc.control.v1.MigrateRequest) returns (mcgrpc.control.v1.PrimaryStatus)",
        "Cancel(mcgrpc.control.v1.CancelRequest) returns (mcgrpc.control.v1.PrimaryStatus)",
        "QueryStatus(mcgrpc.control.v1.QueryStatusRequest) returns (mcgrpc.control.v1.PrimaryStatus)",
        "WatchStatus(mcgrpc.control.v1.WatchStatusRequest) returns (stream mcgrpc.control.v1.PrimaryStatus)",
    ];

    private static readonly string[] BackupMethods =
    [
        "QueryStatus(mcgrpc.control.v1.QueryStatusRequest) returns (mcgrpc.control.v1.BackupStatus)",
        "Failover(mcgrpc.control.v1.FailoverRequest) returns (mcgrpc.control.v1.BackupStatus)",
        "SetFailoverPolicy(mcgrpc.control.v1.SetFailoverPolicyRequest) returns (mcgrpc.control.v1.BackupStatus)",
    ];

    private readonly IdleDaemons _daemons;

    public IdleDaemonTests(IdleDaemons daemons)
    {
        _daemons = daemons;
    }

    [Fact]
    public void A_fresh_primary_has_every_capability_off_and_a_100_ms_delay()
    {
        var status = _daemons.InitialPrimaryStatus;
        Assert.Equal("idle", status.State);
        Assert.Equal(100u, status.DelayMs);
        Assert.Equal(IdleDaemons.VmName, status.VmId);
        Assert.Equal(["mc=False", "mc-net-disable=False", "mc-disk-disable=False"], status.Capabilities.Select(c => $"{c.Name}={c.Enabled}"));
        Assert.All(status.Capabilities, c => Assert.False(string.IsNullOrEmpty(c.Description)));
        Assert.Equal(string.Empty, status.Target);
        Assert.Equal(0ul, status.Stats.Checkpoints);

        var backup = _daemons.InitialBackupStatus;
        Assert.Equal("waiting", backup.State);
        Assert.Equal("auto", backup.FailoverPolicy);
        Assert.False(backup.CanFailover);
        Assert.Contains("nothing to resume", backup.CannotFailoverReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reflection_lists_both_services_and_their_methods_with_no_proto_files()
    {
        foreach (var probe in new[] { ReflectionProbe.V1AlphaAsync, ReflectionProbe.V1Async })
        {
            var (services, methods) = await probe(_daemons.PrimaryChannel, "mcgrpc.control.v1.PrimaryControl");
            Assert.Contains("mcgrpc.control.v1.PrimaryControl", services);
            Assert.Contains("grpc.health.v1.Health", services);
            Assert.Contains("grpc.reflection.v1alpha.ServerReflection", services);
            Assert.Equal(PrimaryMethods, methods);

            (services, methods) = await probe(_daemons.BackupChannel, "mcgrpc.control.v1.BackupControl");
            Assert.Contains("mcgrpc.control.v1.BackupControl", services);
            Assert.Contains("grpc.health.v1.Health", services);
            Assert.Equal(BackupMethods, methods);
        }
    }

    [Fact]
    public async Task Health_says_the_daemons_work_and_the_vm_is_not_protected()
    {
        await _daemons.ResetPrimaryAsync(mc: false);
        var primary = new Health.HealthClient(_daemons.PrimaryChannel);
        var backup = new Health.HealthClient(_daemons.BackupChannel);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await primary.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await primary.CheckAsync(new HealthCheckRequest { Service = "mcgrpc.control.v1.PrimaryControl" })).Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await primary.CheckAsync(new HealthCheckRequest { Service = "mcgrpc.protection" })).Status);
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await primary.CheckAsync(new HealthCheckRequest { Service = "mcgrpc.nothing" }));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await backup.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await backup.CheckAsync(new HealthCheckRequest { Service = "mcgrpc.control.v1.BackupControl" })).Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await backup.CheckAsync(new HealthCheckRequest { Service = "mcgrpc.replication.v1.Replication" })).Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await backup.CheckAsync(new HealthCheckRequest { Service = "mcgrpc.protection" })).Status);

        // Watch gives the current status at once (grpc-health-probe and Kubernetes use Check; monitors use Watch).
        using var watch = primary.Watch(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(20));
        Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, watch.ResponseStream.Current.Status);
    }

    [Fact]
    public async Task The_unix_control_socket_is_for_its_owner_only()
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_daemons.PrimaryControlSocket));
        var capabilities = await _daemons.Primary.GetCapabilitiesAsync(new GetCapabilitiesRequest());
        Assert.Equal(["mc", "mc-net-disable", "mc-disk-disable"], capabilities.Capabilities_.Select(c => c.Name));
    }

    [Fact]
    public async Task Migrate_of_a_vm_with_a_writable_disk_needs_mc_disk_disable_and_Cancel_ends_it()
    {
        await _daemons.ResetPrimaryAsync(mc: true);
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await _daemons.Primary.MigrateAsync(new MigrateRequest { Target = $"tcp:127.0.0.1:{_daemons.DeadPort}" }));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("writable disks (virtio0", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("the only safe disk is one on storage shared by both hosts", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("turn on mc-disk-disable", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("idle", (await _daemons.Primary.QueryStatusAsync(new QueryStatusRequest())).State);

        var capabilities = await _daemons.Primary.SetCapabilityAsync(new SetCapabilityRequest { Name = "mc-disk-disable", Enabled = true });
        Assert.Contains(capabilities.Capabilities_, c => c.Name == "mc-disk-disable" && c.Enabled);
        var started = await _daemons.Primary.MigrateAsync(new MigrateRequest { Target = $"tcp:127.0.0.1:{_daemons.DeadPort}" });
        Assert.Equal("connecting", started.State);
        Assert.Equal($"tcp:127.0.0.1:{_daemons.DeadPort}", started.Target);
        Assert.False(started.ReplicationTls);

        // The session really runs: it keeps trying the backup and says why it cannot reach it.
        await Wait.UntilAsync(
            async () => (await _daemons.Primary.QueryStatusAsync(new QueryStatusRequest())).StateReason.Contains("cannot reach the backup", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30),
            () => $"no connection attempt was reported.\n{_daemons.Diagnostics()}");

        var cancelled = await _daemons.Primary.CancelAsync(new CancelRequest());
        Assert.Equal("idle", cancelled.State);
        Assert.Equal("protection cancelled by the operator", cancelled.StateReason);
    }

    [Fact]
    public async Task Metrics_listeners_serve_prometheus_text_with_state_and_settings()
    {
        await _daemons.ResetPrimaryAsync(mc: true);
        await _daemons.Primary.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = 250 });
        var primary = await PrometheusScrape.GetAsync(_daemons.PrimaryMetricsPort);
        Assert.Equal("text/plain", primary.ContentType);
        Assert.Equal(1, primary["mcgrpc_primary_state{state=\"idle\"}"]);
        Assert.Equal(0, primary["mcgrpc_primary_state{state=\"protected\"}"]);
        Assert.Equal(0.25, primary["mcgrpc_primary_delay_seconds"]);
        Assert.Equal(1, primary["mcgrpc_primary_capability_enabled{capability=\"mc\"}"]);
        Assert.Equal(0, primary["mcgrpc_primary_capability_enabled{capability=\"mc-net-disable\"}"]);
        Assert.Equal(0, primary["mcgrpc_primary_checkpoints_total"]);
        Assert.Contains("# HELP mcgrpc_primary_pause_seconds", primary.Text, StringComparison.Ordinal);
        Assert.Contains("# TYPE mcgrpc_primary_pause_seconds histogram", primary.Text, StringComparison.Ordinal);
        await _daemons.Primary.SetMcDelayAsync(new SetMcDelayRequest { DelayMs = 100 });

        var backup = await PrometheusScrape.GetAsync(_daemons.BackupMetricsPort);
        Assert.Equal(1, backup["mcgrpc_backup_state{state=\"waiting\"}"]);
        Assert.Equal(1, backup["mcgrpc_backup_failover_policy{policy=\"auto\"}"]);
        Assert.Equal(0, backup["mcgrpc_backup_epochs_applied_total"]);
    }
}
