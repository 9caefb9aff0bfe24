using System.Text;

namespace McGrpc.Shared.Hosting;

/// <summary>
/// Turns "--switch value" arguments into configuration keys, so that options
/// come from appsettings.json, environment (MCGRPC_ prefix) and the command
/// line alike, and prints --help from the same table.
/// </summary>
internal static class CommandLine
{
    public static bool WantsHelp(string[] args) => args.Any(a => a is "--help" or "-h" or "-?");

    public static Dictionary<string, string> SwitchMappings(IEnumerable<OptionDoc> options)
        => options.ToDictionary(o => o.Switch, o => o.Key, StringComparer.Ordinal);

    /// <summary>
    /// Gives flag switches their value: "--insecure-plaintext" not followed by
    /// "true" or "false" becomes "--insecure-plaintext true", so the
    /// configuration provider does not swallow the next argument as its value.
    /// </summary>
    public static string[] ExpandFlags(string[] args, IEnumerable<OptionDoc> options)
    {
        var flags = options.Where(o => o.Flag).Select(o => o.Switch).ToHashSet(StringComparer.Ordinal);
        var expanded = new List<string>(args.Length + 2);
        for (var i = 0; i < args.Length; i++)
        {
            expanded.Add(args[i]);
            if (flags.Contains(args[i]) && (i + 1 == args.Length || !bool.TryParse(args[i + 1], out _)))
            {
                expanded.Add("true");
            }
        }

        return [.. expanded];
    }

    /// <summary>Rejects switches that are not in the table, so a typo does not silently become a default.</summary>
    public static string? FindUnknownSwitch(string[] args, IEnumerable<OptionDoc> options)
    {
        var known = options.Select(o => o.Switch).ToHashSet(StringComparer.Ordinal);
        foreach (var arg in args)
        {
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                continue;
            }

            var name = arg.Split('=', 2)[0];
            // "--Section:Key=value" addresses configuration directly.
            if (!known.Contains(name) && !name.Contains(':', StringComparison.Ordinal))
            {
                return name;
            }
        }

        return null;
    }

    public static string Help(string program, string summary, IEnumerable<OptionDoc> options)
    {
        var text = new StringBuilder();
        text.AppendLine($"{program}: {summary}");
        text.AppendLine();
        text.AppendLine($"Usage: {program} [--option value]...");
        text.AppendLine();
        text.AppendLine("Options (also settable as configuration keys in appsettings.json, or as");
        text.AppendLine("environment variables MCGRPC_<Section>__<Key>):");
        foreach (var option in options)
        {
            text.AppendLine();
            var value = option.Flag ? string.Empty : " <value>";
            text.AppendLine($"  {option.Switch}{value}   ({option.Key}, default: {option.Default})");
            foreach (var line in Wrap(option.Description, 72))
            {
                text.AppendLine($"      {line}");
            }
        }

        return text.ToString();
    }

    private static IEnumerable<string> Wrap(string text, int width)
    {
        var line = new StringBuilder();
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.Length > 0 && line.Length + word.Length + 1 > width)
            {
                yield return line.ToString();
                line.Clear();
            }

            if (line.Length > 0)
            {
                line.Append(' ');
            }

            line.Append(word);
        }

        if (line.Length > 0)
        {
            yield return line.ToString();
        }
    }
}
