using System.Diagnostics;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

namespace McGrpc.Shared.Hosting;

/// <summary>
/// The loaded TLS material of a daemon (its certificate and key, the CA) and
/// what the listeners and the replication client do with it. One per daemon,
/// a DI singleton; <see cref="ReplicationTls"/> is what status reports.
/// </summary>
internal sealed class TlsSettings
{
    private static readonly TimeSpan RefusalLogInterval = TimeSpan.FromSeconds(30);

    private readonly TlsOptions _options;
    private readonly PeerCertificateValidator? _validator;
    private readonly SslStreamCertificateContext? _context;
    private readonly Lock _refusalLock = new();
    private string _lastRefusal = string.Empty;
    private long _lastRefusalAt;

    private TlsSettings(TlsOptions options, ListenAddress control, X509Certificate2? certificate, X509Certificate2Collection roots, SslStreamCertificateContext? context, IReadOnlyList<string> warnings)
    {
        _options = options;
        Control = control;
        ControlTls = options.ControlUsesTls(control);
        Certificate = certificate;
        CaCertificates = roots;
        _context = context;
        _validator = roots.Count > 0 ? new PeerCertificateValidator(roots) : null;
        Warnings = warnings;
    }

    /// <summary>Replication (the backup's listener, the primary's link) uses mutual TLS; false only with --insecure-plaintext.</summary>
    public bool ReplicationTls => !_options.InsecurePlaintext;

    /// <summary>The control listener's address.</summary>
    public ListenAddress Control { get; }

    /// <summary>The control listener uses TLS (it is bound to a non-loopback address).</summary>
    public bool ControlTls { get; }

    /// <summary>Client certificates are required on a TLS control listener.</summary>
    public bool ControlClientCertificateRequired => _options.ControlClientCertificate == "required";

    /// <summary>The name the peer's certificate must carry, if configured.</summary>
    public string? PeerName => string.IsNullOrWhiteSpace(_options.PeerName) ? null : _options.PeerName;

    /// <summary>This daemon's certificate (with its private key), when certificates are configured.</summary>
    public X509Certificate2? Certificate { get; }

    public X509Certificate2Collection CaCertificates { get; }

    public string? CaFile => _options.CaFile;

    /// <summary>Things an operator should fix that do not stop the daemon (logged at start).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>
    /// Reads the files <paramref name="options"/> names (only when something
    /// needs them). Throws <see cref="TlsSetupException"/> with an actionable
    /// message when they cannot be used.
    /// </summary>
    public static TlsSettings Load(TlsOptions options, ListenAddress control, PeerRole role)
    {
        if (!options.NeedsCertificates(control))
        {
            return new TlsSettings(options, control, null, [], null, []);
        }

        var warnings = new List<string>();
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(options.CaFile!);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new TlsSetupException($"--tls-ca {options.CaFile}: cannot read CA certificates: {e.Message}", e);
        }

        if (roots.Count == 0)
        {
            throw new TlsSetupException($"--tls-ca {options.CaFile}: no PEM certificate in it.");
        }

        X509Certificate2 certificate;
        var chain = new X509Certificate2Collection();
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(options.CertFile!, options.KeyFile!);
            chain.ImportFromPemFile(options.CertFile!);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new TlsSetupException($"--tls-cert {options.CertFile} / --tls-key {options.KeyFile}: cannot load the certificate and its private key: {e.Message}", e);
        }

        var now = DateTime.Now;
        if (certificate.NotAfter < now || certificate.NotBefore > now)
        {
            throw new TlsSetupException($"--tls-cert {options.CertFile}: '{certificate.Subject}' is valid only from {certificate.NotBefore:u} to {certificate.NotAfter:u}; renew it (tools/make-certs.sh).");
        }

        if (certificate.NotAfter < now.AddDays(30))
        {
            warnings.Add($"this daemon's certificate '{certificate.Subject}' expires on {certificate.NotAfter:u}; renew it before then or replication stops.");
        }

        var intermediates = new X509Certificate2Collection();
        foreach (var extra in chain.Skip(1))
        {
            intermediates.Add(extra);
        }

        // The peer validates us with the same CA: a certificate that does not
        // chain to it is almost always a mix-up of files, so say so now.
        var ownPurpose = role == PeerRole.Backup ? PeerCertificateValidator.ServerAuth : PeerCertificateValidator.ClientAuth;
        var ownProblem = new PeerCertificateValidator(roots).Check(certificate, intermediates, ownPurpose, null);
        if (ownProblem is not null)
        {
            warnings.Add($"this daemon's own {ownProblem}; a peer using the same CA will refuse it.");
        }

        if (File.GetUnixFileMode(options.KeyFile!) is var mode && (mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            warnings.Add($"--tls-key {options.KeyFile} is readable by other users (mode {Convert.ToString((int)mode, 8)}); chmod 600 it.");
        }

        var context = SslStreamCertificateContext.Create(certificate, intermediates, offline: true);
        return new TlsSettings(options, control, certificate, roots, context, warnings);
    }

    /// <summary>Why the primary cannot use <paramref name="target"/> with this configuration, or null.</summary>
    public string? TargetProblem(ReplicationTarget target) => target.Resolve(ReplicationTls, out _, out var error) ? null : error;

    /// <summary>
    /// Server side of a TLS listener: a per-connection callback (so that a
    /// refusal names the remote address) that requires a client certificate
    /// (<paramref name="clientCertificateRequired"/>) and accepts only one
    /// issued by the configured CA, before Kestrel reads a single HTTP/2 frame.
    /// </summary>
    public TlsHandshakeCallbackOptions ServerOptions(string listener, bool clientCertificateRequired, string? expectedClientName, ILogger logger)
    {
        var context = _context ?? throw new InvalidOperationException("No certificate is configured.");
        var validator = _validator!;
        return new TlsHandshakeCallbackOptions
        {
            HandshakeTimeout = TimeSpan.FromSeconds(10),
            OnConnection = callback =>
            {
                var remote = callback.Connection.RemoteEndPoint?.ToString() ?? "?";
                var options = new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = context,
                    // Always ask, so an optional certificate is still checked when presented.
                    ClientCertificateRequired = true,
                    EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                    AllowRenegotiation = false,
                    RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
                    {
                        if (certificate is null && !clientCertificateRequired)
                        {
                            return true;
                        }

                        var problem = validator.Check(AsCertificate2(certificate), PeerCertificateValidator.Intermediates(chain), PeerCertificateValidator.ClientAuth, expectedClientName);
                        if (problem is not null && ShouldLogRefusal($"{listener}|{RemoteHost(remote)}|{problem}"))
                        {
                            TlsLog.PeerRefused(logger, listener, remote, problem);
                        }

                        return problem is null;
                    },
                };
                return ValueTask.FromResult(options);
            },
        };
    }

    /// <summary>
    /// Client side of the replication link: presents this daemon's certificate
    /// and accepts only a backup whose certificate chains to the configured CA
    /// and names <paramref name="expectedServerName"/>.
    /// </summary>
    public SslClientAuthenticationOptions ClientOptions(string target, string expectedServerName, ILogger logger)
    {
        var context = _context ?? throw new InvalidOperationException("No certificate is configured.");
        var validator = _validator!;
        return new SslClientAuthenticationOptions
        {
            ClientCertificateContext = context,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowRenegotiation = false,
            RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
            {
                // sslPolicyErrors is computed against the system store and the
                // URI host; both are replaced by our own checks.
                var problem = validator.Check(AsCertificate2(certificate), PeerCertificateValidator.Intermediates(chain), PeerCertificateValidator.ServerAuth, expectedServerName);
                if (problem is not null && ShouldLogRefusal($"client|{target}|{problem}"))
                {
                    TlsLog.ServerRefused(logger, target, problem);
                }

                return problem is null;
            },
        };
    }

    /// <summary>Logs the state of transport security once at start: loudly when anything runs in clear.</summary>
    public void LogAtStart(ILogger logger)
    {
        var control = Control;
        if (ReplicationTls)
        {
            var peer = PeerName is null ? string.Empty : $", and name '{PeerName}'";
            TlsLog.ReplicationTls(logger, Certificate!.Subject, Certificate.NotAfter, CaCertificates.Count, CaFile!, peer);
        }
        else
        {
            TlsLog.ReplicationPlaintext(logger);
        }

        if (ControlTls)
        {
            TlsLog.ControlTls(logger, control.ToString(), ControlClientCertificateRequired ? "required" : "optional");
        }
        else if (!control.IsLoopbackOrUnix)
        {
            TlsLog.ControlPlaintext(logger, control.ToString());
        }

        foreach (var warning in Warnings)
        {
            TlsLog.SetupWarning(logger, warning);
        }
    }

    private static X509Certificate2? AsCertificate2(X509Certificate? certificate) => certificate switch
    {
        null => null,
        X509Certificate2 certificate2 => certificate2,
        _ => X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()),
    };

    private static string RemoteHost(string remote)
    {
        var colon = remote.LastIndexOf(':');
        return colon > 0 ? remote[..colon] : remote;
    }

    /// <summary>A peer retrying every half second must not flood the log: the same refusal is logged every 30 s.</summary>
    private bool ShouldLogRefusal(string key)
    {
        lock (_refusalLock)
        {
            var now = Stopwatch.GetTimestamp();
            if (key == _lastRefusal && Stopwatch.GetElapsedTime(_lastRefusalAt, now) < RefusalLogInterval)
            {
                return false;
            }

            _lastRefusal = key;
            _lastRefusalAt = now;
            return true;
        }
    }
}
