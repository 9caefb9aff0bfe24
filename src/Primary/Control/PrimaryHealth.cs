using Grpc.AspNetCore.HealthChecks;
using McGrpc.Primary.Engine;
using McGrpc.Protos.Control;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Control;

/// <summary>
/// The services grpc.health.v1 knows on mc-primary:
/// "" and "mcgrpc.control.v1.PrimaryControl": SERVING while the daemon works
/// (NOT_SERVING while starting, failed or fenced);
/// "mcgrpc.protection": SERVING only while the VM is protected.
/// </summary>
internal static class PrimaryHealth
{
    /// <summary>Health service name of "the VM is protected right now".</summary>
    public const string ProtectionService = "mcgrpc.protection";

    private const string DaemonTag = "daemon";
    private const string ProtectionTag = "protection";

    /// <summary>Registers the checks and maps them to health service names; call after AddGrpcHealthChecks.</summary>
    public static IServiceCollection AddPrimaryHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .Add(new HealthCheckRegistration("mc-primary", sp => new PrimaryHealthCheck(sp.GetRequiredService<PrimaryEngine>(), protection: false), HealthStatus.Unhealthy, [DaemonTag]))
            .Add(new HealthCheckRegistration("protection", sp => new PrimaryHealthCheck(sp.GetRequiredService<PrimaryEngine>(), protection: true), HealthStatus.Unhealthy, [ProtectionTag]));
        services.Configure<GrpcHealthChecksOptions>(o =>
        {
            // Replaces the default "" mapping, which would include the protection check.
            o.Services.Map(string.Empty, r => r.Tags.Contains(DaemonTag));
            o.Services.Map(PrimaryControl.Descriptor.FullName, r => r.Tags.Contains(DaemonTag));
            o.Services.Map(ProtectionService, r => r.Tags.Contains(ProtectionTag));
        });

        // A check that is not healthy is a state to report, not an error to log every second.
        services.AddLogging(logging => logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", LogLevel.Critical));

        // Watch streams are fed by the health-check publisher: every second, not the default 30 s.
        services.Configure<HealthCheckPublisherOptions>(o =>
        {
            o.Delay = TimeSpan.FromMilliseconds(500);
            o.Period = TimeSpan.FromSeconds(1);
        });
        return services;
    }
}
