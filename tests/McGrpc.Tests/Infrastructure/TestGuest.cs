using System.Diagnostics;

namespace McGrpc.Tests.Infrastructure;

/// <summary>The test guest (kernel + initramfs), built once per test run by tests/guest/build.sh (cached).</summary>
internal static class TestGuest
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static (string Kernel, string Initrd)? _built;

    public static async Task<(string Kernel, string Initrd)> EnsureBuiltAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_built is { } built)
            {
                return built;
            }

            var script = Path.Combine(TestPaths.RepoRoot, "tests", "guest", "build.sh");
            var start = new ProcessStartInfo("bash", [script]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(15));
            await process.WaitForExitAsync(timeout.Token);
            var output = await stdout;
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"tests/guest/build.sh failed ({process.ExitCode}):\n{output}\n{await stderr}");
            }

            string? kernel = null, initrd = null;
            foreach (var line in output.Split('\n'))
            {
                if (line.StartsWith("KERNEL=", StringComparison.Ordinal))
                {
                    kernel = line["KERNEL=".Length..].Trim();
                }
                else if (line.StartsWith("INITRD=", StringComparison.Ordinal))
                {
                    initrd = line["INITRD=".Length..].Trim();
                }
            }

            if (kernel is null || initrd is null)
            {
                throw new InvalidOperationException($"tests/guest/build.sh did not print KERNEL= and INITRD=:\n{output}");
            }

            _built = (kernel, initrd);
            return _built.Value;
        }
        finally
        {
            Gate.Release();
        }
    }
}
