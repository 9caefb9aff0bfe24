using System.Text;

namespace McGrpc.ComposeTester;

/// <summary>Prints the last lines of the hosts' logs so a failure can be read from the tester's output alone.</summary>
internal static class LogTail
{
    private static readonly (string File, int Lines, string? Prefix)[] Files =
    [
        ("host.log", 10, "[mc-host"),
        ("qemu.log", 10, null),
        ("mc-{0}.log", 40, null),
        ("serial.log", 15, null),
    ];

    public static void Print(string logDir)
    {
        foreach (var role in new[] { "primary", "backup" })
        {
            foreach (var (pattern, count, prefix) in Files)
            {
                var path = Path.Combine(logDir, role, string.Format(System.Globalization.CultureInfo.InvariantCulture, pattern, role));
                var lines = Read(path).Where(l => prefix is null || l.StartsWith(prefix, StringComparison.Ordinal)).ToList();
                Reporter.Raw($"----- {role}: last {Math.Min(count, lines.Count)} of {lines.Count} lines of {path}");
                foreach (var line in lines.Skip(Math.Max(0, lines.Count - count)))
                {
                    Reporter.Raw($"  {line}");
                }
            }
        }

        Reporter.Raw("----- end of logs");
    }

    private static List<string> Read(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            return [.. reader.ReadToEnd().Split('\n').Where(l => l.Length > 0)];
        }
        catch (IOException e)
        {
            return [$"(cannot read: {e.Message})"];
        }
        catch (UnauthorizedAccessException e)
        {
            return [$"(cannot read: {e.Message})"];
        }
    }
}
