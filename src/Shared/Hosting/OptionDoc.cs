namespace McGrpc.Shared.Hosting;

/// <summary>One command-line option: its switch, the configuration key it sets, its default and meaning.</summary>
internal sealed record OptionDoc(string Switch, string Key, string Default, string Description);
