using Grpc.AspNetCore.HealthChecks;
using McGrpc.Backup.Engine;
using McGrpc.Protos.Control;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace McGrpc.Backup.Control;

/// <summary>
/// The services grpc.health.v1 knows on mc-backup:
/// "" and "mcgrpc.control.v1.BackupControl": SERVING while the daemon works
/// (NOT_SERVING while starting or failed; a failed-over backup still serves);
/// "mcgrpc.replication.v1.Replication": SERVING while it accepts checkpoints
/// (not once it is failing or has failed over);
/// "mcgrpc.protection": SERVING only while it holds a checkpoint it would
/// resume from if the primary died now.
/// </summary>
internal static class BackupHealth
{
    /// <summary>Health service name of "this backup protects the VM right now"; the same name on mc-primary.</summary>
    public const string ProtectionService = "mcgrpc.protection";

    /// <summary>Registers the checks and maps them to health service names; call after AddGrpcHealthChecks.</summary>
    public static IServiceCollection AddBackupHealthChecks(this IServiceCollection services)
    {
        var checks = services.AddHealthChecks();
        foreach (var aspect in Enum.GetValues<BackupHealthAspect>())
        {
            checks.Add(new HealthCheckRegistration(
                $"mc-backup-{aspect.ToString().ToLowerInvariant()}",
                sp => new BackupHealthCheck(sp.GetRequiredService<BackupEngine>(), aspect),
                HealthStatus.Unhealthy,
                [aspect.ToString()]));
        }

        services.Configure<GrpcHealthChecksOptions>(o =>
        {
            // Replaces the default "" mapping, which would include every check.
            o.Services.Map(string.Empty, r => r.Tags.Contains(nameof(BackupHealthAspect.Daemon)));
            o.Services.Map(BackupControl.Descriptor.FullName, r => r.Tags.Contains(nameof(BackupHealthAspect.Daemon)));
            o.Services.Map(Protos.Replication.Replication.Descriptor.FullName, r => r.Tags.Contains(nameof(BackupHealthAspect.Replication)));
            o.Services.Map(ProtectionService, r => r.Tags.Contains(nameof(BackupHealthAspect.Protection)));
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
