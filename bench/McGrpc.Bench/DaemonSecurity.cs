using System.Diagnostics;
using McGrpc.Tests.Infrastructure;
using McGrpc.Tests.Security;

namespace McGrpc.Bench;

/// <summary>
/// How the bench's daemons secure replication. By default as in production
/// and in the tests' GuestChain: mutual TLS with certificates from a throw-away
/// CA (the tests' <see cref="TestPki"/>), so the numbers include what TLS
/// costs. <see cref="Plaintext"/> measures without it. Builds older than
/// replication TLS know neither switch; asking each daemon's --help once tells
/// which build this is, so the bench works with both.
/// </summary>
internal static class DaemonSecurity
{
    private static readonly Lazy<bool> PrimaryHasTls = new(() => HelpMentions("Primary", "mc-primary", "--tls-ca"));
    private static readonly Lazy<bool> BackupHasTls = new(() => HelpMentions("Backup", "mc-backup", "--tls-ca"));

    /// <summary>Replicate with --insecure-plaintext instead of mutual TLS. Default false.</summary>
    public static bool Plaintext { get; set; }

    /// <summary>What the daemons' replication link is, for the report.</summary>
    public static string Describe()
        => !PrimaryHasTls.Value ? "plaintext (this build has no replication TLS)"
            : Plaintext ? "plaintext (--insecure-plaintext)"
            : "mutual TLS (certificates from a throw-away CA, as in the tests)";

    public static string[] PrimaryArgs => !PrimaryHasTls.Value ? [] : Plaintext ? ["--insecure-plaintext"] : TestPki.Shared.PrimaryArgs;

    public static string[] BackupArgs => !BackupHasTls.Value ? [] : Plaintext ? ["--insecure-plaintext"] : TestPki.Shared.BackupArgs;

    private static bool HelpMentions(string project, string assembly, string text)
    {
        var dll = TestPaths.DaemonDll(project, assembly);
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"{assembly} is not built at {dll}; build the solution first (dotnet build -c {TestPaths.Configuration}).");
        }

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("--help");
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {assembly} --help.");
        var errors = process.StandardError.ReadToEndAsync();
        var help = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(30_000))
        {
            process.Kill();
            throw new TimeoutException($"{assembly} --help did not exit within 30 s.");
        }

        _ = errors.Result;
        return help.Contains(text, StringComparison.Ordinal);
    }
}
