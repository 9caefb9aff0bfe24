using System.Globalization;

namespace McGrpc.Shared.Hosting;

/// <summary>
/// Where the primary sends checkpoints: "tcp:HOST:PORT" (as in QEMU's
/// "migrate tcp:..."), "http://HOST:PORT" or "https://HOST:PORT". "tcp:" takes
/// the transport the daemon is configured for (TLS unless --insecure-plaintext);
/// an explicit scheme must agree with it (<see cref="Resolve"/>).
/// </summary>
/// <param name="Address">The target; scheme "tcp" when given as tcp:HOST:PORT.</param>
internal sealed record ReplicationTarget(Uri Address)
{
    public const string TcpScheme = "tcp";

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

            uriText = $"{TcpScheme}://{host}:{hostPort[(colon + 1)..]}";
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

        if ((uri.IsDefaultPort || uri.Port < 0) && !uriText.Contains($":{uri.Port.ToString(CultureInfo.InvariantCulture)}", StringComparison.Ordinal))
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

    /// <summary>The host the backup's certificate must name unless --tls-peer-name says otherwise.</summary>
    public string Host => Address.IdnHost;

    /// <summary>
    /// The address to connect to with the configured transport: "tcp:" becomes
    /// https (TLS) or http (plaintext); an explicit scheme that contradicts the
    /// configuration is refused rather than silently downgraded or upgraded.
    /// </summary>
    public bool Resolve(bool tls, out Uri address, out string error)
    {
        error = string.Empty;
        var scheme = Address.Scheme;
        if (scheme == TcpScheme)
        {
            address = new UriBuilder(Address) { Scheme = tls ? Uri.UriSchemeHttps : Uri.UriSchemeHttp }.Uri;
            return true;
        }

        address = Address;
        if (tls && scheme == Uri.UriSchemeHttp)
        {
            error = $"{this} is plaintext but replication uses TLS; give tcp:{Address.Authority} or https://{Address.Authority}, or start mc-primary with --insecure-plaintext (tests only).";
            return false;
        }

        if (!tls && scheme == Uri.UriSchemeHttps)
        {
            error = $"{this} asks for TLS but mc-primary runs with --insecure-plaintext; give tcp:{Address.Authority} or http://{Address.Authority}, or configure --tls-ca/--tls-cert/--tls-key instead.";
            return false;
        }

        return true;
    }

    public override string ToString() => Address.Scheme == TcpScheme
        ? $"tcp:{Address.Authority}"
        : Address.GetLeftPart(UriPartial.Authority);
}
