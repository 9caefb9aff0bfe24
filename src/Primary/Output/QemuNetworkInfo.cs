using System.Text.RegularExpressions;
using McGrpc.Shared.Qmp;

namespace McGrpc.Primary.Output;

/// <summary>
/// Finds the netdevs the guest's NICs send through. QEMU 7.2 has no
/// <c>query-netdev</c> (CommandNotFound), and QOM does not list netdevs, so
/// this reads HMP <c>info network</c>, which names every NIC with its peer:
/// <code>
/// e1000.0: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:56
///  \ net0: index=0,type=tap,ifname=tap0,script=no,downscript=no
/// filters:
///   - f0: type=filter-redirector,...
/// hub 0
///  \ hub0port1: #net196: index=0,type=user,net=10.0.2.0,restrict=off
///  \ hub0port0: e1000.1: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:57
/// </code>
/// (the last two from legacy <c>-net nic -net user</c>, whose NIC peers with a hub port).
/// </summary>
internal static partial class QemuNetworkInfo
{
    public static async Task<IReadOnlyList<QemuNetdev>> FindNicNetdevsAsync(QmpClient qmp, CancellationToken cancellationToken)
        => ParseNicNetdevs(await qmp.HumanMonitorCommandAsync("info network", cancellationToken).ConfigureAwait(false));

    /// <summary>Every netdev with a NIC as its peer, in QEMU's order. NICs without a backend are skipped: they send nowhere.</summary>
    public static IReadOnlyList<QemuNetdev> ParseNicNetdevs(string infoNetwork)
    {
        var netdevs = new List<QemuNetdev>();
        string? nic = null;
        foreach (var raw in infoNetwork.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (TopLevelClient().Match(line) is { Success: true } client)
            {
                nic = client.Groups["type"].Value == "nic" ? client.Groups["name"].Value : null;
                continue;
            }

            if (HubPortWithNic().Match(line) is { Success: true } hubPort)
            {
                netdevs.Add(new QemuNetdev(hubPort.Groups["port"].Value, "hubport", hubPort.Groups["nic"].Value));
                nic = null;
                continue;
            }

            if (PeerOfPrevious().Match(line) is { Success: true } peer)
            {
                if (nic is not null)
                {
                    netdevs.Add(new QemuNetdev(peer.Groups["name"].Value, peer.Groups["type"].Value, nic));
                }

                nic = null;
                continue;
            }

            // "filters:", "  - id: ...", "hub N": keep the NIC context only across filter lines.
            if (!line.StartsWith("  - ", StringComparison.Ordinal) && line != "filters:")
            {
                nic = null;
            }
        }

        return netdevs;
    }

    [GeneratedRegex(@"^(?<name>[^\s:][^:\s]*): index=\d+,type=(?<type>[\w-]+)")]
    private static partial Regex TopLevelClient();

    [GeneratedRegex(@"^ \\ (?<name>[^\s:]+): index=\d+,type=(?<type>[\w-]+)")]
    private static partial Regex PeerOfPrevious();

    [GeneratedRegex(@"^ \\ (?<port>hub\d+port\d+): (?<nic>[^\s:]+): index=\d+,type=nic\b")]
    private static partial Regex HubPortWithNic();
}
