namespace McGrpc.Tests.Infrastructure;

/// <summary>Where the repository, the daemons' builds and the test guest are.</summary>
internal static class TestPaths
{
    /// <summary>tests/McGrpc.Tests/bin/&lt;Configuration&gt;/net10.0/ → the repository root.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The build configuration the tests were built with (the daemons are built the same way).</summary>
    public static string Configuration { get; } = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

    /// <summary>Full logs of every daemon the tests start, kept after the run for post-mortems.</summary>
    public static string LogDirectory { get; } = Directory.CreateDirectory(Path.Combine(RepoRoot, "tests", "McGrpc.Tests", "TestResults", "daemon-logs")).FullName;

    public static string DaemonDll(string project, string assembly)
        => Path.Combine(RepoRoot, "src", project, "bin", Configuration, "net10.0", $"{assembly}.dll");

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "McGrpc.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No McGrpc.sln above {AppContext.BaseDirectory}.");
    }
}
