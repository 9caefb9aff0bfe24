using System.Diagnostics;
using System.Globalization;

namespace McGrpc.Bench;

/// <summary>The machine a report was measured on, read from the system at run time.</summary>
internal sealed record MachineInfo(int Cores, string CpuModel, string Kernel, string QemuVersion, string DotnetVersion, DateTimeOffset Started, string LoadAtStart)
{
    public static async Task<MachineInfo> CollectAsync()
    {
        var cpu = File.ReadLines("/proc/cpuinfo")
            .FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        var kernel = (await File.ReadAllTextAsync("/proc/sys/kernel/osrelease")).Trim();
        var qemu = await FirstLineAsync("qemu-system-x86_64", "--version");
        return new MachineInfo(Environment.ProcessorCount, cpu, kernel, qemu, Environment.Version.ToString(), DateTimeOffset.UtcNow, LoadAverage());
    }

    /// <summary>1, 5 and 15 minute load averages: other work on the machine distorts every number here.</summary>
    public static string LoadAverage()
    {
        var parts = File.ReadAllText("/proc/loadavg").Split(' ');
        return string.Create(CultureInfo.InvariantCulture, $"{parts[0]} {parts[1]} {parts[2]}");
    }

    private static async Task<string> FirstLineAsync(string program, string argument)
    {
        var start = new ProcessStartInfo(program, [argument]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {program}.");
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim() ?? "unknown";
    }
}
