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
        builder.Configuration.AddCommandLine(args, CommandLine.SwitchMappings(all));
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

    /// <summary>Binds a gRPC (HTTP/2 without TLS, as grpcurl -plaintext expects) listener.</summary>
    public static void ListenGrpc(KestrelServerOptions kestrel, ListenAddress address)
        => Listen(kestrel, address, HttpProtocols.Http2);

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

    private static void Listen(KestrelServerOptions kestrel, ListenAddress address, HttpProtocols protocols)
    {
        if (address.UnixPath is { } path)
        {
            File.Delete(path);
            kestrel.ListenUnixSocket(path, o => o.Protocols = protocols);
        }
        else
        {
            kestrel.Listen(address.Endpoint!, o => o.Protocols = protocols);
        }
    }
}
