using McGrpc.Backup.Control;
using McGrpc.Backup.Engine;
using McGrpc.Backup.Replication;
using McGrpc.Shared.Frames;
using McGrpc.Shared.Hosting;
using Microsoft.Extensions.Options;

namespace McGrpc.Backup;

internal static class Program
{
    public static int Main(string[] args)
    {
        var builder = DaemonHost.CreateBuilder("mc-backup", "receives micro-checkpoints from mc-primary into a paused incoming QEMU and resumes the VM when the primary dies", args, BackupOptions.Docs);
        if (builder is null)
        {
            return Environment.ExitCode;
        }

        var options = new BackupOptions();
        builder.Configuration.GetSection(BackupOptions.Section).Bind(options);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            foreach (var problem in problems)
            {
                Console.Error.WriteLine($"mc-backup: {problem}");
            }

            return 64;
        }

        var listen = ListenAddress.Parse(options.Listen, "--listen");
        var control = ListenAddress.Parse(options.Control, "--control");
        var metrics = DaemonHost.MetricsAddress(builder.Configuration, control);
        if (!DaemonHost.AddTls(builder, "mc-backup", control, PeerRole.Backup))
        {
            return Environment.ExitCode;
        }

        builder.Services.AddGrpc().AddServiceOptions<ReplicationService>(o => o.MaxReceiveMessageSize = FrameLimits.MaxFrameBytes);
        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddSingleton<BackupStats>();
        builder.Services.AddSingleton<BackupEngine>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<BackupEngine>());
        builder.Services.AddBackupHealthChecks();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.Http2.InitialConnectionWindowSize = 16 * 1024 * 1024;
            kestrel.Limits.Http2.InitialStreamWindowSize = 8 * 1024 * 1024;
            kestrel.Limits.MaxRequestBodySize = null;
            DaemonHost.ListenReplication(kestrel, listen);
            DaemonHost.ListenControl(kestrel, control);
            if (metrics is not null)
            {
                DaemonHost.ListenHttp1(kestrel, metrics);
            }
        });

        var app = builder.Build();
        var gate = new ListenerGate()
            .Allow(control, [.. DaemonHost.CommonGrpcPrefixes, "/mcgrpc.control.v1.BackupControl/"])
            .Allow(listen, [.. DaemonHost.CommonGrpcPrefixes, "/mcgrpc.replication.v1.Replication/"]);
        app.Use(gate.InvokeAsync);
        app.MapGrpcService<ReplicationService>();
        app.MapGrpcService<BackupControlService>();
        DaemonHost.MapCommon(app, gate, metrics);
        app.Lifetime.ApplicationStarted.Register(() => DaemonHost.RestrictUnixSocket(control));
        app.Run();
        return Environment.ExitCode;
    }
}
