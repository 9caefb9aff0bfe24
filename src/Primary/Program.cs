using McGrpc.Primary.Control;
using McGrpc.Primary.Engine;
using McGrpc.Shared.Hosting;
using Microsoft.Extensions.Options;

namespace McGrpc.Primary;

internal static class Program
{
    public static int Main(string[] args)
    {
        var builder = DaemonHost.CreateBuilder("mc-primary", "protects a running QEMU VM by streaming micro-checkpoints to mc-backup", args, PrimaryOptions.Docs);
        if (builder is null)
        {
            return Environment.ExitCode;
        }

        var options = new PrimaryOptions();
        builder.Configuration.GetSection(PrimaryOptions.Section).Bind(options);
        builder.Configuration.GetSection(Output.OutputBufferOptions.Section).Bind(options.Output); // Output:Userspace, Output:Kernel
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            foreach (var problem in problems)
            {
                Console.Error.WriteLine($"mc-primary: {problem}");
            }

            return 64;
        }

        var control = ListenAddress.Parse(options.Control, "--control");
        var metrics = DaemonHost.MetricsAddress(builder.Configuration, control);
        if (!DaemonHost.AddTls(builder, "mc-primary", control, PeerRole.Primary, options.Target))
        {
            return Environment.ExitCode;
        }

        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddSingleton<PrimaryStats>();
        builder.Services.AddSingleton<PrimaryEngine>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<PrimaryEngine>());
        builder.Services.AddPrimaryHealthChecks();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            DaemonHost.ListenControl(kestrel, control);
            if (metrics is not null)
            {
                DaemonHost.ListenHttp1(kestrel, metrics);
            }
        });

        var app = builder.Build();
        var gate = new ListenerGate().Allow(control, [.. DaemonHost.CommonGrpcPrefixes, "/mcgrpc.control.v1.PrimaryControl/"]);
        app.Use(gate.InvokeAsync);
        app.MapGrpcService<PrimaryControlService>();
        DaemonHost.MapCommon(app, gate, metrics);
        app.Lifetime.ApplicationStarted.Register(() => DaemonHost.RestrictUnixSocket(control));
        app.Run();
        return Environment.ExitCode;
    }
}
