using System.Security.Cryptography.X509Certificates;

namespace McGrpc.Tests.Security;

/// <summary>A certificate as PEM files, and loaded with its private key for in-process clients.</summary>
internal sealed record IssuedCertificate(string CertFile, string KeyFile, X509Certificate2 Certificate);
