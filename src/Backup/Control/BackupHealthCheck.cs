using McGrpc.Backup.Engine;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace McGrpc.Backup.Control;

/// <summary>What grpc.health.v1 reports for mc-backup; see <see cref="BackupHealth"/>.</summary>
internal sealed class BackupHealthCheck : IHealthCheck
{
    private readonly BackupEngine _engine;
    private readonly BackupHealthAspect _aspect;

    public BackupHealthCheck(BackupEngine engine, BackupHealthAspect aspect)
    {
        _engine = engine;
        _aspect = aspect;
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var status = _engine.GetStatus();
        var healthy = _aspect switch
        {
            BackupHealthAspect.Daemon => status.State is not ("starting" or "failed"),
            BackupHealthAspect.Replication => status.State is "waiting" or "syncing" or "protected" or "primary_lost",
            _ => status.State is "protected" && status.CanFailover,
        };
        return Task.FromResult(healthy
            ? HealthCheckResult.Healthy(status.State)
            : new HealthCheckResult(context.Registration.FailureStatus, $"state {status.State}: {(status.CanFailover ? status.StateReason : status.CannotFailoverReason)}"));
    }
}
