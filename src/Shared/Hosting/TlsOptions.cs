namespace McGrpc.Shared.Hosting;

/// <summary>
/// Transport security of both daemons, bound from the "Tls" configuration
/// section. Replication is mutual TLS by default: each daemon presents its
/// certificate and accepts only a peer whose certificate chains to the
/// configured CA (never the system store).
/// </summary>
internal sealed class TlsOptions
{
    public const string Section = "Tls";

    /// <summary>PEM file with the CA certificate(s) a peer's certificate must chain to. Required unless both plaintext options cover every listener and link.</summary>
    public string? CaFile { get; set; }

    /// <summary>PEM file with this daemon's certificate, optionally followed by intermediate CA certificates. Required with <see cref="CaFile"/>.</summary>
    public string? CertFile { get; set; }

    /// <summary>PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1, unencrypted; keep it mode 0600).</summary>
    public string? KeyFile { get; set; }

    /// <summary>
    /// Name (DNS name or IP address) the peer's certificate must carry in its
    /// subjectAltName. On mc-primary default: the host of the target. On
    /// mc-backup default: none, any certificate issued by the CA is accepted
    /// (use a CA per host pair, or set this to the primary's name).
    /// </summary>
    public string? PeerName { get; set; }

    /// <summary>
    /// Replicate without TLS: checkpoints (the VM's whole memory) travel in
    /// clear and anyone who reaches the backup's port can write into the VM.
    /// For tests and demos on one host only. Default false.
    /// </summary>
    public bool InsecurePlaintext { get; set; }

    /// <summary>
    /// Serve the control API without TLS even on a non-loopback address.
    /// Default false: a control listener on anything but loopback or a unix
    /// socket requires TLS, because the control API can fail the VM over or
    /// stop protection.
    /// </summary>
    public bool ControlInsecurePlaintext { get; set; }

    /// <summary>
    /// Client certificates on a TLS control listener: "required" (default;
    /// operators present a certificate issued by the CA) or "optional" (a
    /// certificate, when presented, must be valid; without one anyone who
    /// reaches the port may call the API).
    /// </summary>
    public string ControlClientCertificate { get; set; } = "required";

    public static readonly OptionDoc[] Docs =
    [
        new("--tls-ca", $"{Section}:CaFile", "none (required unless --insecure-plaintext)", "PEM file of the CA that issued both daemons' certificates; a peer is accepted only if its certificate chains to it (the system trust store is never used)."),
        new("--tls-cert", $"{Section}:CertFile", "none (required unless --insecure-plaintext)", "PEM file with this daemon's certificate (subjectAltName = its host name or address), optionally followed by intermediates."),
        new("--tls-key", $"{Section}:KeyFile", "none (required unless --insecure-plaintext)", "PEM file with the certificate's unencrypted private key (mode 0600)."),
        new("--tls-peer-name", $"{Section}:PeerName", "primary: the target's host; backup: any name", "Name the other daemon's certificate must carry in its subjectAltName."),
        new("--insecure-plaintext", $"{Section}:InsecurePlaintext", "false", "Replicate WITHOUT TLS (tests and demos only): the VM's memory travels in clear and anyone reaching the backup's port can write into the VM.", Flag: true),
        new("--control-insecure-plaintext", $"{Section}:ControlInsecurePlaintext", "false", "Serve the control API without TLS even on a non-loopback address (otherwise refused at start).", Flag: true),
        new("--control-client-cert", $"{Section}:ControlClientCertificate", "required", "On a TLS control listener: required (operators present a certificate from the CA) or optional."),
    ];

    /// <summary>Whether a control listener on <paramref name="control"/> uses TLS.</summary>
    public bool ControlUsesTls(ListenAddress control) => !control.IsLoopbackOrUnix && !ControlInsecurePlaintext;

    /// <summary>Certificate material is needed by replication TLS or by a TLS control listener.</summary>
    public bool NeedsCertificates(ListenAddress control) => !InsecurePlaintext || ControlUsesTls(control);

    /// <summary>Checks the combination; returns the problems, empty when valid. Files are read later, by <see cref="TlsSettings"/>.</summary>
    public IReadOnlyList<string> Validate(ListenAddress control)
    {
        var problems = new List<string>();
        if (ControlClientCertificate is not ("required" or "optional"))
        {
            problems.Add($"--control-client-cert must be required or optional, not '{ControlClientCertificate}'.");
        }

        if (NeedsCertificates(control))
        {
            var why = !InsecurePlaintext
                ? "replication uses mutual TLS by default"
                : $"the control listener {control} is not on loopback, so it uses TLS";
            var missing = new List<string>();
            if (string.IsNullOrWhiteSpace(CaFile))
            {
                missing.Add("--tls-ca");
            }

            if (string.IsNullOrWhiteSpace(CertFile))
            {
                missing.Add("--tls-cert");
            }

            if (string.IsNullOrWhiteSpace(KeyFile))
            {
                missing.Add("--tls-key");
            }

            if (missing.Count > 0)
            {
                var way = !InsecurePlaintext
                    ? "make them with tools/make-certs.sh (docs/security.md), or give --insecure-plaintext for a test setup"
                    : "make them with tools/make-certs.sh (docs/security.md), bind the control API to loopback or a unix socket, or give --control-insecure-plaintext";
                problems.Add($"{string.Join(", ", missing)} missing: {why}; {way}.");
            }
        }

        if (PeerName is { Length: > 253 } || (PeerName is not null && PeerName.Any(char.IsWhiteSpace)))
        {
            problems.Add($"--tls-peer-name '{PeerName}' is not a host name or address.");
        }

        return problems;
    }
}
