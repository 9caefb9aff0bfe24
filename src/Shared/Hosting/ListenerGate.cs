using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace McGrpc.Shared.Hosting;

/// <summary>
/// Kestrel serves every endpoint on every listener. This gate lets each
/// listener reach only its own services, judged by the socket a connection
/// really arrived on (not by the Host header a client chooses): the
/// replication port must never expose Failover or Cancel.
/// </summary>
internal sealed class ListenerGate
{
    private static readonly object ListenerKey = new();

    private readonly List<(ListenAddress Address, string[] Prefixes)> _rules = [];

    public ListenerGate Allow(ListenAddress address, params string[] pathPrefixes)
    {
        _rules.Add((address, pathPrefixes));
        return this;
    }

    /// <summary>
    /// Marks every connection of a listener with its address. HTTP middleware
    /// is not told which listener a connection came in on, and a unix socket
    /// connection has no local IP endpoint to tell by.
    /// </summary>
    public static void Tag(ListenOptions listen, ListenAddress address)
        => listen.Use(next => connection =>
        {
            connection.Items[ListenerKey] = address;
            return next(connection);
        });

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var tagged = context.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(ListenerKey, out var tag) == true ? tag as ListenAddress : null;
        var local = context.Features.Get<IConnectionEndPointFeature>()?.LocalEndPoint
            ?? (context.Connection.LocalIpAddress is { } ip ? new IPEndPoint(ip, context.Connection.LocalPort) : null);
        var path = context.Request.Path.Value ?? string.Empty;
        foreach (var (address, prefixes) in _rules)
        {
            if (tagged is not null ? tagged == address : Matches(address, local))
            {
                if (prefixes.Any(p => path.StartsWith(p, StringComparison.Ordinal)))
                {
                    await next(context).ConfigureAwait(false);
                    return;
                }

                break;
            }
        }

        context.Response.StatusCode = StatusCodes.Status404NotFound;
    }

    private static bool Matches(ListenAddress address, EndPoint? local) => local switch
    {
        IPEndPoint ip when address.Endpoint is { } endpoint =>
            ip.Port == endpoint.Port && (endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any) || endpoint.Address.Equals(ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address)),
        UnixDomainSocketEndPoint unix when address.UnixPath is { } path => unix.ToString() == path,
        _ => false,
    };
}
