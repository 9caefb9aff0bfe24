using System.Globalization;

namespace McGrpc.Shared.Hosting;

/// <summary>
/// Where the primary sends checkpoints: "tcp:HOST:PORT" (as in QEMU's
/// "migrate tcp:..."), "http://HOST:PORT" or "https://HOST:PORT".
/// </summary>
internal sealed record ReplicationTarget(Uri Address)
{
    public static bool TryParse(string? value, out ReplicationTarget? target, out string error)
    {
        target = null;
        error = string.Empty;
        if (string.IsNullOrWhiteSpace(value))
        {
            error = "The target is empty; give tcp:HOST:PORT, http://HOST:PORT or https://HOST:PORT.";
            return false;
        }

        string uriText;
        if (value.StartsWith("tcp:", StringComparison.Ordinal))
        {
            var hostPort = value["tcp:".Length..];
            var colon = hostPort.LastIndexOf(':');
            if (colon <= 0 || colon == hostPort.Length - 1)
            {
                error = $"'{value}' is not tcp:HOST:PORT.";
                return false;
            }

            var host = hostPort[..colon];
            if (host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('['))
            {
                host = $"[{host}]";
            }

            uriText = $"http://{host}:{hostPort[(colon + 1)..]}";
        }
        else if (value.StartsWith("http://", StringComparison.Ordinal) || value.StartsWith("https://", StringComparison.Ordinal))
        {
            uriText = value;
        }
        else
        {
            error = $"'{value}' is not a supported target; give tcp:HOST:PORT, http://HOST:PORT or https://HOST:PORT.";
            return false;
        }

        if (!Uri.TryCreate(uriText, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            error = $"'{value}' has no valid host.";
            return false;
        }

        if (uri.IsDefaultPort && !uriText.Contains($":{uri.Port.ToString(CultureInfo.InvariantCulture)}", StringComparison.Ordinal))
        {
            error = $"'{value}' has no port; the backup's replication port must be given.";
            return false;
        }

        if (uri.Port is <= 0 or > 65535 || uri.AbsolutePath != "/" || !string.IsNullOrEmpty(uri.Query))
        {
            error = $"'{value}' must be just a host and a port.";
            return false;
        }

        target = new ReplicationTarget(uri);
        return true;
    }

    public override string ToString() => Address.GetLeftPart(UriPartial.Authority);
}
