using System.Net;
using System.Net.Sockets;

namespace McGrpc.Tests.Infrastructure;

/// <summary>Loopback TCP ports nobody listens on right now.</summary>
internal static class FreePort
{
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
