using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace McGrpc.Shared.Hosting;

/// <summary>
/// Decides whether a peer's certificate is one of ours: it must chain to the
/// configured CA certificates only (a custom root store, so a certificate that
/// any public CA or the host's trust store would accept is still refused), be
/// within its validity period, allow the purpose it is used for (extended key
/// usage), and carry the expected name when one is required.
/// </summary>
internal sealed class PeerCertificateValidator
{
    /// <summary>id-kp-serverAuth: the backup (or a control listener) proves itself to a client.</summary>
    public static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1", "Server Authentication");

    /// <summary>id-kp-clientAuth: the primary (or an operator) proves itself to a listener.</summary>
    public static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2", "Client Authentication");

    /// <summary>The certificates a peer sent after its own, from the chain TLS hands to a validation callback.</summary>
    public static IEnumerable<X509Certificate2> Intermediates(X509Chain? presented)
        => presented is null ? [] : presented.ChainElements.Skip(1).Select(e => e.Certificate).ToList();

    private readonly X509Certificate2Collection _roots;

    public PeerCertificateValidator(X509Certificate2Collection roots)
    {
        if (roots.Count == 0)
        {
            throw new ArgumentException("At least one CA certificate is needed.", nameof(roots));
        }

        _roots = roots;
    }

    /// <summary>
    /// Returns null when <paramref name="certificate"/> is acceptable, else why
    /// not, in words an operator can act on. <paramref name="intermediates"/> are
    /// certificates the peer sent along; they may complete the path but never
    /// become trusted themselves.
    /// </summary>
    public string? Check(X509Certificate2? certificate, IEnumerable<X509Certificate2>? intermediates, Oid purpose, string? expectedName)
    {
        if (certificate is null)
        {
            return "the peer presented no certificate";
        }

        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(_roots);
        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.DisableCertificateDownloads = true;
        policy.VerificationFlags = X509VerificationFlags.NoFlag;
        policy.ApplicationPolicy.Add(purpose);
        if (intermediates is not null)
        {
            foreach (var intermediate in intermediates)
            {
                policy.ExtraStore.Add(intermediate);
            }
        }

        if (!chain.Build(certificate))
        {
            var reasons = chain.ChainStatus
                .Where(s => s.Status != X509ChainStatusFlags.NoError)
                .Select(s => Describe(s.Status))
                .Distinct()
                .ToList();
            return $"certificate '{certificate.Subject}' (issuer '{certificate.Issuer}') is not acceptable: {string.Join("; ", reasons.Count > 0 ? reasons : ["its chain does not lead to the configured CA"])}";
        }

        if (!string.IsNullOrEmpty(expectedName) && !certificate.MatchesHostname(expectedName, allowWildcards: true, allowCommonName: false))
        {
            return $"certificate '{certificate.Subject}' is not for '{expectedName}' (its subjectAltName does not name it)";
        }

        return null;
    }

    private static string Describe(X509ChainStatusFlags status) => status switch
    {
        X509ChainStatusFlags.UntrustedRoot or X509ChainStatusFlags.PartialChain => "not issued by the configured CA (--tls-ca)",
        X509ChainStatusFlags.NotTimeValid => "expired or not yet valid",
        X509ChainStatusFlags.NotValidForUsage => "its extended key usage does not allow this purpose",
        X509ChainStatusFlags.NotSignatureValid => "bad signature",
        _ => status.ToString(),
    };
}
