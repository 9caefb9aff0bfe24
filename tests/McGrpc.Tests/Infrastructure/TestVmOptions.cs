namespace McGrpc.Tests.Infrastructure;

/// <summary>How to start a test VM.</summary>
internal sealed record TestVmOptions
{
    /// <summary>VM id (QEMU -name); both VMs of a pair share it.</summary>
    public string Name { get; init; } = "testvm";

    public int MemoryMiB { get; init; } = 256;

    /// <summary>Workloads of the test guest (mc.run=...).</summary>
    public string Run { get; init; } = "counter,memverify";

    /// <summary>Extra kernel command line (mc.ip=..., workload arguments).</summary>
    public string ExtraAppend { get; init; } = string.Empty;

    /// <summary>Extra QEMU arguments (netdev, NIC).</summary>
    public IReadOnlyList<string> ExtraArgs { get; init; } = [];

    /// <summary>Start paused with -incoming defer, as a backup.</summary>
    public bool Incoming { get; init; }
}
