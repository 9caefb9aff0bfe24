using McGrpc.Primary.Output;
using McGrpc.Shared.Native;
using McGrpc.Shared.Native.Netlink;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace McGrpc.Tests.Output;

/// <summary>
/// The kernel back end against the real kernel, in a private namespace. On a
/// kernel without sch_plug (like the build machines') start-up must fail
/// with a message that says so and leave nothing behind; on one with it, the
/// same tests check that start-up installs the plug and detach removes it.
/// </summary>
public sealed class KernelPlugOutputBufferTests : IDisposable
{
    private static readonly Lazy<bool> HasPlug = new(KernelTestNamespace.KernelHasPlug);
    private readonly KernelTestNamespace _ns = new();

    public void Dispose() => _ns.Dispose();

    [Fact]
    public async Task Start_with_host_setup_fails_clearly_without_sch_plug_and_leaves_nothing_installed()
    {
        var lo = _ns.Loopback();
        var buffer = Create(new KernelOutputBufferOptions { IfbDevice = "mcifb0", GuestTap = "lo", SetUpHostNetworking = true });

        if (!HasPlug.Value)
        {
            var exception = await Assert.ThrowsAsync<KernelOutputBufferException>(() => StartAsync(buffer));
            AssertSaysPlugIsMissing(exception);
            Assert.Null(_ns.Client.FindDevice("mcifb0"));
            Assert.DoesNotContain(_ns.Client.DumpQdiscs(lo), qdisc => qdisc.Kind == "ingress");
            await buffer.DisposeAsync();
            return;
        }

        await StartAsync(buffer);
        var ifb = _ns.Client.GetDevice("mcifb0");
        Assert.Equal("plug", _ns.Client.FindRootQdisc(ifb)?.Kind);
        Assert.Contains(_ns.Client.DumpFilters(lo, TcHandle.IngressFilters), filter => filter.Mirred.Any(action => action.TargetIndex == ifb.Index));
        buffer.Barrier(1);
        buffer.Barrier(2);
        buffer.Release(2);
        await buffer.ReleaseAllAndStopAsync(CancellationToken.None);
        await buffer.DisposeAsync();
        Assert.Null(_ns.Client.FindDevice("mcifb0"));
        Assert.DoesNotContain(_ns.Client.DumpQdiscs(lo), qdisc => qdisc.Kind == "ingress");
    }

    [Fact]
    public async Task Start_on_an_operator_made_ifb_fails_clearly_without_sch_plug_and_leaves_it_as_it_was()
    {
        var ifb = _ns.Client.CreateLink("mcifb0", "ifb");
        _ns.Client.SetLinkUp(ifb, up: true);
        var rootBefore = _ns.Client.FindRootQdisc(ifb)?.Kind;
        var buffer = Create(new KernelOutputBufferOptions { IfbDevice = "mcifb0" });

        if (!HasPlug.Value)
        {
            var exception = await Assert.ThrowsAsync<KernelOutputBufferException>(() => StartAsync(buffer));
            AssertSaysPlugIsMissing(exception);
        }
        else
        {
            await StartAsync(buffer);
            await buffer.DisposeAsync();
        }

        var after = _ns.Client.GetDevice("mcifb0");
        Assert.True(after.IsUp);
        Assert.Equal(rootBefore, _ns.Client.FindRootQdisc(after)?.Kind);
        Assert.NotEqual("plug", rootBefore);
    }

    [Fact]
    public async Task Start_without_the_ifb_names_it_and_gives_the_commands()
    {
        var buffer = Create(new KernelOutputBufferOptions { IfbDevice = "mcifb0", GuestTap = "mctap0" });

        var exception = await Assert.ThrowsAsync<KernelOutputBufferException>(() => StartAsync(buffer));

        Assert.Contains("the IFB device mcifb0 does not exist", exception.Message);
        Assert.Contains("ip link add mcifb0 type ifb; ip link set mcifb0 up; tc qdisc add dev mctap0 ingress; "
            + "tc filter add dev mctap0 parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev mcifb0", exception.Message);
        Assert.Contains("SetUpHostNetworking=true", exception.Message);
        Assert.Null(_ns.Client.FindDevice("mcifb0"));
    }

    [Fact]
    public async Task Start_on_a_down_ifb_says_it_is_down()
    {
        _ns.Client.CreateLink("mcifb0", "ifb");
        var buffer = Create(new KernelOutputBufferOptions { IfbDevice = "mcifb0" });

        var exception = await Assert.ThrowsAsync<KernelOutputBufferException>(() => StartAsync(buffer));

        Assert.Contains("the IFB device mcifb0 is down (ip link set mcifb0 up)", exception.Message);
    }

    [Fact]
    public async Task Start_on_a_device_that_is_not_an_ifb_refuses_it()
    {
        _ns.Loopback();
        var buffer = Create(new KernelOutputBufferOptions { IfbDevice = "lo" });

        var exception = await Assert.ThrowsAsync<KernelOutputBufferException>(() => StartAsync(buffer));

        Assert.Contains("lo is a physical or loopback device, not an ifb", exception.Message);
    }

    [Fact]
    public void Calls_before_start_are_refused()
    {
        var buffer = Create(new KernelOutputBufferOptions());

        Assert.Equal("kernel", buffer.Name);
        Assert.Equal(default, buffer.Stats);
        Assert.Throws<InvalidOperationException>(() => buffer.Barrier(1));
        Assert.Throws<InvalidOperationException>(() => buffer.Release(1));
    }

    [Fact]
    public void Options_are_validated_at_construction()
    {
        var exception = Assert.Throws<OptionsValidationException>(() => Create(new KernelOutputBufferOptions
        {
            IfbDevice = "a-name-that-is-too-long",
            SetUpHostNetworking = true,
            LimitBytes = 1000,
        }));

        Assert.Contains(exception.Failures, failure => failure.Contains("IfbDevice") && failure.Contains("not a valid interface name"));
        Assert.Contains(exception.Failures, failure => failure.Contains("SetUpHostNetworking needs GuestTap"));
        Assert.Contains(exception.Failures, failure => failure.Contains("LimitBytes is 1000"));
    }

    [Fact]
    public void Default_options_are_valid()
    {
        var options = new KernelOutputBufferOptions();

        Assert.True(new KernelOutputBufferOptionsValidator().Validate(null, options).Succeeded);
        Assert.Equal("ifb0", options.IfbDevice);
        Assert.Equal(32u * 1024 * 1024, options.LimitBytes);
        Assert.False(options.SetUpHostNetworking);
    }

    private static void AssertSaysPlugIsMissing(KernelOutputBufferException exception)
    {
        Assert.Contains("sch_plug is not available in this kernel", exception.Message);
        Assert.Contains("adding the plug qdisc to mcifb0 failed with ENOENT", exception.Message);
        Assert.Contains("CONFIG_NET_SCH_PLUG", exception.Message);
        Assert.Contains("use the userspace output buffer", exception.Message);
        var netlink = Assert.IsType<NetlinkException>(exception.InnerException);
        Assert.Equal(Errors.ENOENT, netlink.Errno);
        Assert.Equal(
            "RTM_NEWQDISC plug on mcifb0 failed: ENOENT (No such file or directory): "
            + "kernel says \"Specified qdisc kind is unknown\" — is sch_plug available? (modprobe sch_plug)",
            netlink.Message);
    }

    private static async Task StartAsync(IOutputBuffer buffer)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await buffer.StartAsync(timeout.Token).WaitAsync(timeout.Token);
    }

    private KernelPlugOutputBuffer Create(KernelOutputBufferOptions options)
    {
        options.NetworkNamespace ??= _ns.Namespace.ProcPath;
        return new KernelPlugOutputBuffer(options, NullLogger<KernelPlugOutputBuffer>.Instance);
    }
}
