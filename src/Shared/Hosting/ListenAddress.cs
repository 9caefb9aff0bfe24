using System.Globalization;
using System.Net;

namespace McGrpc.Shared.Hosting;

/// <summary>A listen address: "HOST:PORT", "[v6]:PORT" or "unix:/path/to.sock".</summary>
internal sealed record ListenAddress(IPEndPoint? Endpoint, string? UnixPath)
{
    public bool IsLoopbackOrUnix => UnixPath is not null || IPAddress.IsLoopback(Endpoint!.Address);

    public static ListenAddress Parse(string value, string optionName)
    {
        if (value.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = value["unix:".Length..];
            if (!Path.IsPathRooted(path))
            {
                throw new FormatException($"{optionName}: unix socket path '{path}' must be absolute.");
            }

            return new ListenAddress(null, path);
        }

        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 0 or > 65535)
        {
            throw new FormatException($"{optionName}: '{value}' is not HOST:PORT or unix:/path.");
        }

        var host = value[..colon].Trim('[', ']');
        IPAddress address;
        if (host is "localhost")
        {
            address = IPAddress.Loopback;
        }
        else if (host is "*" or "")
        {
            address = IPAddress.Any;
        }
        else if (!IPAddress.TryParse(host, out address!))
        {
            throw new FormatException($"{optionName}: '{host}' is not an IP address (use an address, 'localhost' or '*').");
        }

        return new ListenAddress(new IPEndPoint(address, port), null);
    }

    public override string ToString() => UnixPath is not null ? $"unix:{UnixPath}" : Endpoint!.ToString();
}
