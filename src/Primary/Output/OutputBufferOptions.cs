using McGrpc.Shared.Hosting;

namespace McGrpc.Primary.Output;

/// <summary>
/// Options of both output buffer back ends, bound from the <c>Output</c>
/// configuration section (<c>Output:Userspace:*</c>, <c>Output:Kernel:*</c>);
/// which back end runs is <c>Primary:OutputBuffer</c> (--output-buffer).
/// </summary>
internal sealed class OutputBufferOptions
{
    public const string Section = "Output";

    public UserspaceOutputBufferOptions Userspace { get; set; } = new();

    public KernelOutputBufferOptions Kernel { get; set; } = new();

    public static readonly OptionDoc[] Docs =
    [
        new("--output-netdevs", $"{UserspaceOutputBufferOptions.SectionName}:Netdevs", "every netdev with a NIC", "Userspace output buffer: netdev ids to hold output on, comma-separated."),
        new("--output-max-held", $"{UserspaceOutputBufferOptions.SectionName}:MaxHeldBytes", "67108864", "Userspace output buffer: bytes of held and not yet re-injected packets; beyond it packets are dropped (counted, logged)."),
        new("--kernel-ifb", $"{KernelOutputBufferOptions.SectionName}:IfbDevice", "ifb0", "Kernel output buffer: the IFB device whose root qdisc becomes the plug."),
        new("--kernel-tap", $"{KernelOutputBufferOptions.SectionName}:GuestTap", "none", "Kernel output buffer: the guest's tap device (its ingress is redirected to the IFB)."),
        new("--kernel-setup", $"{KernelOutputBufferOptions.SectionName}:SetUpHostNetworking", "false", "Kernel output buffer: create the IFB and the tap's redirect (and remove them on exit)."),
    ];

    /// <summary>Checks both back ends' options; returns the problems, each naming its key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        var userspace = new UserspaceOutputBufferOptionsValidator().Validate(null, Userspace);
        if (userspace.Failed)
        {
            problems.AddRange(userspace.Failures.Select(f => $"{UserspaceOutputBufferOptions.SectionName}: {f}"));
        }

        var kernel = new KernelOutputBufferOptionsValidator().Validate(null, Kernel);
        if (kernel.Failed)
        {
            problems.AddRange(kernel.Failures.Select(f => $"{KernelOutputBufferOptions.SectionName}: {f}"));
        }

        return problems;
    }
}
