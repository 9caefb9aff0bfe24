using McGrpc.Shared.Native;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace McGrpc.Shared.Hosting;

/// <summary>What both daemons set up the same way: configuration, logging, listeners, reflection, health and metrics.</summary>
internal static class DaemonHost
{
    /// <summary>Options every daemon has besides its own.</summary>
    public static readonly OptionDoc[] CommonDocs =
    [
        new("--metrics", "Metrics:Listen", "127.0.0.1:<control port + 1000>", "Prometheus metrics listener (HTTP/1.1, path /metrics): HOST:PORT, unix:/path, or 'off'."),
        new("--log-level", "Logging:LogLevel:Default", "Information", "Log level: Trace, Debug, Information, Warning, Error."),
        .. TlsOptions.Docs,
    ];

    /// <summary>
    /// Builds the host with configuration from appsettings.json, MCGRPC_
    /// environment variables and the command line (switches mapped through
    /// <paramref name="docs"/>). Returns null and prints why when the command line is wrong.
    /// </summary>
    public static WebApplicationBuilder? CreateBuilder(string program, string summary, string[] args, IReadOnlyList<OptionDoc> docs)
    {
        var all = docs.Concat(CommonDocs).ToList();
        if (CommandLine.WantsHelp(args))
        {
            Console.Out.Write(CommandLine.Help(program, summary, all));
            return null;
        }

        if (CommandLine.FindUnknownSwitch(args, all) is { } unknown)
        {
            Console.Error.WriteLine($"{program}: unknown option {unknown}; see {program} --help.");
            Environment.ExitCode = 64;
            return null;
        }

        // The epoch loop blocks pool threads for short CPU bursts (harvest,
        // compression); with the pool's slow thread injection, heartbeats and
        // acks could then wait hundreds of milliseconds for a thread.
        ThreadPool.GetMinThreads(out var workers, out var completion);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(completion, 32));

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddJsonFile("appsettings.json", optional: true);
        builder.Configuration.AddEnvironmentVariables("MCGRPC_");
        builder.Configuration.AddCommandLine(CommandLine.ExpandFlags(args, all), CommandLine.SwitchMappings(all));
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Grpc", LogLevel.Warning);
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = 4 * 1024 * 1024;
            o.EnableDetailedErrors = false;
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks();
        return builder;
    }

    /// <summary>
    /// Binds, validates and loads the transport-security options ("Tls"
    /// section) and registers the resulting <see cref="TlsSettings"/>. Returns
    /// false after printing why when the daemon must not start: certificates
    /// missing or unusable, a plaintext control API on a non-loopback address,
    /// or (mc-primary) a <paramref name="target"/> whose scheme contradicts the transport.
    /// </summary>
    public static bool AddTls(WebApplicationBuilder builder, string program, ListenAddress control, PeerRole role, string? target = null)
    {
        var options = new TlsOptions();
        builder.Configuration.GetSection(TlsOptions.Section).Bind(options);
        var problems = options.Validate(control).ToList();
        TlsSettings? settings = null;
        if (problems.Count == 0)
        {
            try
            {
                settings = TlsSettings.Load(options, control, role);
            }
            catch (TlsSetupException e)
            {
                problems.Add(e.Message);
            }
        }

        if (settings is not null && target is not null && ReplicationTarget.TryParse(target, out var parsed, out _) && settings.TargetProblem(parsed!) is { } targetProblem)
        {
            problems.Add($"--target: {targetProblem}");
        }

        if (problems.Count > 0)
        {
            foreach (var problem in problems)
            {
                Console.Error.WriteLine($"{program}: {problem}");
            }

            Environment.ExitCode = 64;
            return false;
        }

        builder.Services.AddSingleton(settings!);
        return true;
    }

    /// <summary>
    /// Binds the replication listener: mutual TLS (the peer must present a
    /// certificate from the configured CA, checked before any frame is read)
    /// unless --insecure-plaintext.
    /// </summary>
    public static void ListenReplication(KestrelServerOptions kestrel, ListenAddress address)
    {
        var tls = kestrel.ApplicationServices.GetRequiredService<TlsSettings>();
        var logger = kestrel.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("McGrpc.Tls");
        Listen(kestrel, address, HttpProtocols.Http2, tls.ReplicationTls
            ? o => o.UseHttps(tls.ServerOptions("replication", clientCertificateRequired: true, tls.PeerName, logger))
            : null);
    }

    /// <summary>
    /// Binds the control listener: plaintext on loopback or a unix socket (file
    /// mode 0600), TLS everywhere else unless --control-insecure-plaintext.
    /// </summary>
    public static void ListenControl(KestrelServerOptions kestrel, ListenAddress address)
    {
        var tls = kestrel.ApplicationServices.GetRequiredService<TlsSettings>();
        var logger = kestrel.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("McGrpc.Tls");
        Listen(kestrel, address, HttpProtocols.Http2, tls.ControlTls
            ? o => o.UseHttps(tls.ServerOptions("control", tls.ControlClientCertificateRequired, expectedClientName: null, logger))
            : null);
    }

    /// <summary>The metrics address: configured, "off", or the control port + 1000 on loopback.</summary>
    public static ListenAddress? MetricsAddress(IConfiguration configuration, ListenAddress control)
    {
        var configured = configuration["Metrics:Listen"];
        if (configured == "off")
        {
            return null;
        }

        if (!string.IsNullOrEmpty(configured))
        {
            return ListenAddress.Parse(configured, "--metrics");
        }

        return control.Endpoint is { } endpoint && endpoint.Port is > 0 and <= 64535
            ? new ListenAddress(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, endpoint.Port + 1000), null)
            : null;
    }

    public static void ListenHttp1(KestrelServerOptions kestrel, ListenAddress address)
        => Listen(kestrel, address, HttpProtocols.Http1);

    /// <summary>Path prefixes of the services every gRPC listener offers: reflection and health.</summary>
    public static readonly string[] CommonGrpcPrefixes = ["/grpc.reflection.", "/grpc.health."];

    /// <summary>Reflection, health and metrics, on every daemon, behind a gate that keeps each listener to its own services.</summary>
    public static void MapCommon(WebApplication app, ListenerGate gate, ListenAddress? metrics)
    {
        app.Services.GetService<TlsSettings>()?.LogAtStart(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("McGrpc.Tls"));

        if (metrics is not null)
        {
            gate.Allow(metrics, "/metrics");
            app.MapMetrics("/metrics");
        }

        app.MapGrpcReflectionService();
        app.MapGrpcHealthChecksService();
    }

    /// <summary>Unix control sockets are for the owner only: the control API can stop protection.</summary>
    public static void RestrictUnixSocket(ListenAddress address)
    {
        if (address.UnixPath is { } path && File.Exists(path))
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    private static void Listen(KestrelServerOptions kestrel, ListenAddress address, HttpProtocols protocols, Action<ListenOptions>? secure = null)
    {
        void Configure(ListenOptions listen)
        {
            listen.Protocols = protocols;
            ListenerGate.Tag(listen, address);
            secure?.Invoke(listen);
        }

        if (address.UnixPath is { } path)
        {
            File.Delete(path);
            kestrel.ListenUnixSocket(path, Configure);
        }
        else
        {
            kestrel.Listen(address.Endpoint!, Configure);
        }
    }
}
