namespace McGrpc.Shared.Hosting;

/// <summary>One command-line option: its switch, the configuration key it sets, its default and meaning.</summary>
/// <param name="Switch">The command-line switch, e.g. "--listen".</param>
/// <param name="Key">The configuration key it sets, e.g. "Backup:Listen".</param>
/// <param name="Default">The default, as --help shows it.</param>
/// <param name="Description">What it does, for --help.</param>
/// <param name="Flag">A switch that needs no value: "--switch" alone means "--switch true".</param>
internal sealed record OptionDoc(string Switch, string Key, string Default, string Description, bool Flag = false);
