using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace McGrpc.Primary.Output;

/// <summary>Start-up validation of <see cref="UserspaceOutputBufferOptions"/>.</summary>
internal sealed partial class UserspaceOutputBufferOptionsValidator : IValidateOptions<UserspaceOutputBufferOptions>
{
    /// <summary>Room for a burst of the largest packets QEMU can send.</summary>
    public const long MinimumMaxHeldBytes = 1024 * 1024;

    public ValidateOptionsResult Validate(string? name, UserspaceOutputBufferOptions options)
    {
        var failures = new List<string>();
        if (options.NetdevList() is { } netdevs)
        {
            foreach (var netdev in netdevs)
            {
                if (!QemuId().IsMatch(netdev))
                {
                    failures.Add($"{nameof(options.Netdevs)}: \"{netdev}\" is not a QEMU id (a letter, then letters, digits, '-', '.' or '_').");
                }
            }

            if (netdevs.Count != netdevs.Distinct(StringComparer.Ordinal).Count())
            {
                failures.Add($"{nameof(options.Netdevs)} names a netdev twice.");
            }
        }

        if (options.MaxHeldBytes < MinimumMaxHeldBytes)
        {
            failures.Add($"{nameof(options.MaxHeldBytes)} is {options.MaxHeldBytes}; it must be at least {MinimumMaxHeldBytes} bytes.");
        }

        if (options.SocketBufferBytes is < 64 * 1024 or > 256 * 1024 * 1024)
        {
            failures.Add($"{nameof(options.SocketBufferBytes)} must be 65536..268435456, not {options.SocketBufferBytes}.");
        }

        if (options.DrainTimeout < TimeSpan.Zero || options.DrainTimeout > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{nameof(options.DrainTimeout)} must be between 0 and 1 minute (is {options.DrainTimeout}).");
        }

        if (options.RepairInterval <= TimeSpan.Zero || options.RepairInterval > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{nameof(options.RepairInterval)} must be between 0 and 1 minute (is {options.RepairInterval}).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9._-]*$")]
    private static partial Regex QemuId();
}
