using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace McGrpc.Tests.Security;

/// <summary>
/// A throw-away CA and certificates made with System.Security.Cryptography,
/// written as PEM files the daemons load like any operator's. <see cref="Shared"/>
/// is the pair every daemon-starting test uses, so replication in the
/// integration tests runs over mutual TLS exactly as in production.
/// </summary>
internal sealed class TestPki
{
    private static readonly Lazy<TestPki> SharedPki = new(() => new TestPki(System.IO.Directory.CreateTempSubdirectory("mcgrpc-pki-").FullName, "McGrpc test CA"));

    private readonly ECDsa _caKey;

    public TestPki(string directory, string caName)
    {
        Folder = directory;
        _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={caName}", _caKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        Ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddYears(-1), DateTimeOffset.UtcNow.AddYears(5));
        CaFile = Path.Combine(directory, "ca.crt");
        File.WriteAllText(CaFile, Ca.ExportCertificatePem());
        Backup = Issue("backup", ["localhost"], [IPAddress.Loopback]);
        Primary = Issue("primary", ["primary.test"], [IPAddress.Loopback]);
    }

    /// <summary>The PKI the shared fixtures and GuestChain start the daemons with.</summary>
    public static TestPki Shared => SharedPki.Value;

    /// <summary>Where the PEM files are.</summary>
    public string Folder { get; }

    public X509Certificate2 Ca { get; }

    public string CaFile { get; }

    /// <summary>mc-backup's certificate: localhost and 127.0.0.1.</summary>
    public IssuedCertificate Backup { get; }

    public IssuedCertificate Primary { get; }

    /// <summary>Switches that give mc-backup its certificate.</summary>
    public string[] BackupArgs => ["--tls-ca", CaFile, "--tls-cert", Backup.CertFile, "--tls-key", Backup.KeyFile];

    /// <summary>Switches that give mc-primary its certificate.</summary>
    public string[] PrimaryArgs => ["--tls-ca", CaFile, "--tls-cert", Primary.CertFile, "--tls-key", Primary.KeyFile];

    /// <summary>A certificate from this CA, valid for TLS server and client use (as tools/make-certs.sh makes them).</summary>
    public IssuedCertificate Issue(string name, string[] dnsNames, IPAddress[] addresses, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, bool serverAuth = true, bool clientAuth = true)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = LeafRequest(name, key, dnsNames, addresses, serverAuth, clientAuth);
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var issued = request.Create(Ca, notBefore ?? DateTimeOffset.UtcNow.AddDays(-1), notAfter ?? DateTimeOffset.UtcNow.AddYears(1), serial);
        return Write(name, issued.CopyWithPrivateKey(key), key);
    }

    /// <summary>A self-signed certificate that looks right in every other way.</summary>
    public IssuedCertificate SelfSigned(string name, string[] dnsNames, IPAddress[] addresses)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = LeafRequest(name, key, dnsNames, addresses, serverAuth: true, clientAuth: true);
        return Write(name, request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1)), key);
    }

    private static CertificateRequest LeafRequest(string name, ECDsa key, string[] dnsNames, IPAddress[] addresses, bool serverAuth, bool clientAuth)
    {
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, critical: true));
        var usages = new OidCollection();
        if (serverAuth)
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        }

        if (clientAuth)
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.2"));
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, critical: false));
        var names = new SubjectAlternativeNameBuilder();
        foreach (var dns in dnsNames)
        {
            names.AddDnsName(dns);
        }

        foreach (var address in addresses)
        {
            names.AddIpAddress(address);
        }

        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        return request;
    }

    private IssuedCertificate Write(string name, X509Certificate2 certificate, ECDsa key)
    {
        var certFile = Path.Combine(Folder, $"{name}.crt");
        var keyFile = Path.Combine(Folder, $"{name}.key");
        File.WriteAllText(certFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return new IssuedCertificate(certFile, keyFile, certificate);
    }
}
