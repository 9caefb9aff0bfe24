using McGrpc.Primary.Engine;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace McGrpc.Primary.Control;

/// <summary>
/// What grpc.health.v1 reports for mc-primary. The daemon check is healthy
/// while the daemon can do its job (connected to QEMU, not failed, not
/// fenced); the protection check only while the backup holds a checkpoint and
/// epochs run. A liveness probe must use the first: an idle or unprotected VM
/// is no reason to restart the daemon.
/// </summary>
internal sealed class PrimaryHealthCheck : IHealthCheck
{
    private readonly PrimaryEngine _engine;
    private readonly bool _protection;

    public PrimaryHealthCheck(PrimaryEngine engine, bool protection)
    {
        _engine = engine;
        _protection = protection;
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var state = _engine.State;
        var name = PrimaryEngine.StateName(state);
        HealthCheckResult result;
        if (_protection)
        {
            result = state == PrimaryState.Protected
                ? HealthCheckResult.Healthy("protected")
                : new HealthCheckResult(context.Registration.FailureStatus, $"the VM is not protected (state {name})");
        }
        else
        {
            result = state is PrimaryState.Starting or PrimaryState.Failed or PrimaryState.Fenced
                ? new HealthCheckResult(context.Registration.FailureStatus, $"mc-primary is {name}")
                : HealthCheckResult.Healthy(name);
        }

        return Task.FromResult(result);
    }
}
