using System.Text.Json;
using McGrpc.Shared.Qmp;

namespace McGrpc.Shared.Vm;

/// <summary>What the daemons need to know about the VM before protecting it, read over QMP.</summary>
/// <param name="VmId">The configured VM id, or QEMU's -name.</param>
/// <param name="HasBalloon">A virtio-balloon is active: it discards RAM without writing it.</param>
/// <param name="HasVirtioMem">A virtio-mem device exists: same blind spot.</param>
/// <param name="WritableDisks">Block devices with a writable medium ("device: file").</param>
internal sealed record VmFacts(string VmId, bool HasBalloon, bool HasVirtioMem, IReadOnlyList<string> WritableDisks)
{
    public static VmFacts Unknown { get; } = new(string.Empty, false, false, []);

    public bool DiscardsRam => HasBalloon || HasVirtioMem;

    public static async Task<VmFacts> InspectAsync(QmpClient qmp, string? configuredVmId, CancellationToken cancellationToken)
    {
        var vmId = configuredVmId;
        if (string.IsNullOrWhiteSpace(vmId))
        {
            var name = await qmp.ExecuteAsync("query-name", null, cancellationToken).ConfigureAwait(false);
            vmId = name.TryGetProperty("name", out var n) ? n.GetString() : null;
            if (string.IsNullOrWhiteSpace(vmId))
            {
                throw new McGrpcException("The VM has no id: give --vm-id (the same on both daemons) or start QEMU with -name <id>.");
            }
        }

        var hasBalloon = true;
        try
        {
            await qmp.ExecuteAsync("query-balloon", null, cancellationToken).ConfigureAwait(false);
        }
        catch (QmpCommandException e) when (e.ErrorClass == "DeviceNotActive")
        {
            hasBalloon = false;
        }

        var memoryDevices = await qmp.ExecuteAsync("query-memory-devices", null, cancellationToken).ConfigureAwait(false);
        var hasVirtioMem = memoryDevices.EnumerateArray().Any(d => d.TryGetProperty("type", out var t) && t.GetString() == "virtio-mem");

        var disks = new List<string>();
        var blocks = await qmp.ExecuteAsync("query-block", null, cancellationToken).ConfigureAwait(false);
        foreach (var block in blocks.EnumerateArray())
        {
            if (!block.TryGetProperty("inserted", out var inserted) || inserted.ValueKind != JsonValueKind.Object)
            {
                continue;
            }

            var readOnly = inserted.TryGetProperty("ro", out var ro) && ro.ValueKind == JsonValueKind.True;
            if (!readOnly)
            {
                var device = block.TryGetProperty("device", out var d) && !string.IsNullOrEmpty(d.GetString())
                    ? d.GetString()
                    : block.TryGetProperty("qdev", out var q) ? q.GetString() : "?";
                var file = inserted.TryGetProperty("file", out var f) ? f.GetString() : "?";
                disks.Add($"{device}: {file}");
            }
        }

        return new VmFacts(vmId!, hasBalloon, hasVirtioMem, disks);
    }
}
