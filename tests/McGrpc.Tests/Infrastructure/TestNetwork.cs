using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using McGrpc.Shared.Native.Netlink;

namespace McGrpc.Tests.Infrastructure;

/// <summary>
/// A private test network: a bridge in the host namespace (no address, so
/// the host neither routes nor answers on it) with one tap per test VM, and a
/// veth to a client namespace made with <c>ip netns add</c>, where the test's
/// observer and TCP client live. Traffic stays between the guests and that
/// namespace. Every name carries the test process's pid, so concurrent runs
/// never collide, and a later run removes what a crashed one left (its pid
/// is gone). Dispose removes everything.
/// </summary>
internal sealed partial class TestNetwork : IDisposable
{
    public const string Subnet = "10.99.0";
    public static readonly IPAddress GuestAddress = IPAddress.Parse($"{Subnet}.10");
    public static readonly IPAddress ClientAddress = IPAddress.Parse($"{Subnet}.1");

    private readonly string _prefix;
    private readonly List<string> _taps = [];
    private readonly NetworkNamespace _client;
    private bool _disposed;

    private TestNetwork(string prefix, NetworkNamespace client)
    {
        _prefix = prefix;
        _client = client;
    }

    public string Bridge => $"{_prefix}b";

    public string ClientNamespace => NamespaceName(_prefix);

    /// <summary>The guest's kernel command line for this network (see tests/guest/README.md).</summary>
    public static string GuestAppend => $"mc.ip={GuestAddress}/24";

    public static TestNetwork Create()
    {
        RemoveStale();
        var prefix = $"mcn{Environment.ProcessId}";
        var bridge = $"{prefix}b";
        var hostVeth = $"{prefix}h";
        var clientVeth = $"{prefix}c";
        var ns = NamespaceName(prefix);
        try
        {
            Ip("link", "add", bridge, "type", "bridge");
            DisableIpv6(bridge);
            Ip("link", "set", bridge, "up");
            Ip("netns", "add", ns);
            Ip("link", "add", hostVeth, "type", "veth", "peer", "name", clientVeth);
            DisableIpv6(hostVeth);
            Ip("link", "set", clientVeth, "netns", ns);
            Ip("link", "set", hostVeth, "master", bridge);
            Ip("link", "set", hostVeth, "up");
            Ip("-n", ns, "link", "set", "lo", "up");
            Ip("-n", ns, "addr", "add", $"{ClientAddress}/24", "dev", clientVeth);
            Ip("-n", ns, "link", "set", clientVeth, "up");
            return new TestNetwork(prefix, NetworkNamespace.Open(ns));
        }
        catch
        {
            Remove(prefix);
            throw;
        }
    }

    /// <summary>A new tap in the bridge, for one QEMU (<c>-netdev tap,ifname=...</c>).</summary>
    public string AddTap()
    {
        var tap = $"{_prefix}t{_taps.Count}";
        Ip("tuntap", "add", "dev", tap, "mode", "tap");
        _taps.Add(tap);
        DisableIpv6(tap);
        Ip("link", "set", tap, "master", Bridge);
        Ip("link", "set", tap, "up");
        return tap;
    }

    /// <summary>QEMU arguments for a VM on <paramref name="tap"/>; both VMs of a pair must use the same device options.</summary>
    public static string[] QemuArgs(string tap) =>
    [
        "-netdev", $"tap,id=net0,ifname={tap},script=no,downscript=no",
        "-device", "e1000,netdev=net0,romfile=,autonegotiation=off",
    ];

    /// <summary>Runs <paramref name="action"/> in the client namespace; sockets made there stay there and work from any thread.</summary>
    public T InClient<T>(Func<T> action) => _client.Run(action);

    /// <summary>A UDP observer bound to the client's address.</summary>
    public UdpSeqObserver BindObserver(int port) => InClient(() => UdpSeqObserver.Bind(ClientAddress, port));

    /// <summary>A TCP socket of the client namespace, connected to the guest.</summary>
    public async Task<Socket> ConnectToGuestAsync(int port, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            // A modest receive window keeps a guest that sends as fast as it may from queueing megabytes per epoch.
            var socket = InClient(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveBufferSize = 128 * 1024 });
            try
            {
                using var attempt = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await socket.ConnectAsync(new IPEndPoint(GuestAddress, port), attempt.Token);
                return socket;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                socket.Dispose();
                if (Stopwatch.GetTimestamp() > deadline)
                {
                    throw new TimeoutException($"Could not connect to the guest at {GuestAddress}:{port} from {NamespaceName(_prefix)}: {e.Message}", e);
                }

                await Task.Delay(200);
            }
        }
    }

    /// <summary>"ip -n client ..." output, for failure messages.</summary>
    public string Describe()
    {
        try
        {
            return $"bridge fdb:\n{Run("bridge", ["fdb", "show", "br", Bridge])}\nlinks:\n{Run("ip", ["-br", "link", "show", "master", Bridge])}\nclient neighbours:\n{Run("ip", ["-n", ClientNamespace, "neigh"])}";
        }
        catch (InvalidOperationException e)
        {
            return e.Message;
        }
    }

    /// <summary>Names of the host namespace's network devices.</summary>
    public IReadOnlyList<string> Links()
        => [.. Run("ip", ["-o", "link", "show"]).Split('\n').Select(l => l.Split(':', 3) is [_, var n, ..] ? n.Trim().Split('@')[0] : string.Empty).Where(n => n.Length > 0)];

    /// <summary>"tc qdisc show dev DEVICE".</summary>
    public string Qdiscs(string device) => Run("tc", ["qdisc", "show", "dev", device]);

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _client.Dispose();
        Remove(_prefix);
    }

    private static string NamespaceName(string prefix) => $"{prefix}-client";

    /// <summary>Removes links and namespaces of test processes that are gone.</summary>
    private static void RemoveStale()
    {
        var prefixes = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match match in StaleName().Matches(Run("ip", ["-o", "link", "show"]) + "\n" + Run("ip", ["netns", "list"])))
        {
            var pid = int.Parse(match.Groups["pid"].Value, System.Globalization.CultureInfo.InvariantCulture);
            if (pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
            {
                prefixes.Add($"mcn{pid}");
            }
        }

        foreach (var prefix in prefixes)
        {
            Remove(prefix);
        }
    }

    private static void Remove(string prefix)
    {
        var ns = NamespaceName(prefix);
        if (Run("ip", ["netns", "list"]).Split('\n').Any(l => l.Split(' ')[0] == ns))
        {
            TryRun("ip", ["netns", "del", ns]);
        }

        foreach (var line in Run("ip", ["-o", "link", "show"]).Split('\n'))
        {
            var name = line.Split(':', 3) is [_, var n, ..] ? n.Trim().Split('@')[0] : string.Empty;
            if (name.StartsWith(prefix, StringComparison.Ordinal) && name.Length > prefix.Length && char.IsLetter(name[prefix.Length]))
            {
                TryRun("ip", ["link", "del", name]);
            }
        }
    }

    private static void DisableIpv6(string device)
    {
        // The host must not send router solicitations or DAD probes into the test network.
        var path = $"/proc/sys/net/ipv6/conf/{device}/disable_ipv6";
        if (File.Exists(path))
        {
            File.WriteAllText(path, "1");
        }
    }

    private static void Ip(params string[] args) => Run("ip", args);

    private static void TryRun(string program, string[] args)
    {
        try
        {
            Run(program, args);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static string Run(string program, string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(30_000))
        {
            process.Kill();
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} did not finish in 30 s.");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Trim()}");
        }

        return stdout.Result;
    }

    [GeneratedRegex(@"\bmcn(?<pid>\d+)(?:[a-z]\d*\b|-client\b)")]
    private static partial Regex StaleName();
}
