using Microsoft.Extensions.Options;

namespace McGrpc.Primary.Output;

/// <summary>Start-up validation of <see cref="KernelOutputBufferOptions"/>.</summary>
internal sealed class KernelOutputBufferOptionsValidator : IValidateOptions<KernelOutputBufferOptions>
{
    /// <summary>
    /// A GSO packet redirected from a tap can be up to 64 KiB; a limit below
    /// a few of those would drop whole bursts even when the link is idle.
    /// </summary>
    public const uint MinimumLimitBytes = 256 * 1024;

    private const int InterfaceNameMaximum = 15; // IFNAMSIZ - 1

    public ValidateOptionsResult Validate(string? name, KernelOutputBufferOptions options)
    {
        var failures = new List<string>();
        CheckInterfaceName(nameof(options.IfbDevice), options.IfbDevice, failures);
        if (options.GuestTap is not null)
        {
            CheckInterfaceName(nameof(options.GuestTap), options.GuestTap, failures);
            if (options.GuestTap == options.IfbDevice)
            {
                failures.Add($"{nameof(options.GuestTap)} and {nameof(options.IfbDevice)} must be different devices.");
            }
        }
        else if (options.SetUpHostNetworking)
        {
            failures.Add($"{nameof(options.SetUpHostNetworking)} needs {nameof(options.GuestTap)}: the redirect starts at the guest's tap.");
        }

        if (options.LimitBytes < MinimumLimitBytes)
        {
            failures.Add($"{nameof(options.LimitBytes)} is {options.LimitBytes}; it must be at least {MinimumLimitBytes} bytes.");
        }

        if (options.NetlinkTimeout <= TimeSpan.Zero || options.NetlinkTimeout > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{nameof(options.NetlinkTimeout)} must be between 0 and 1 minute (is {options.NetlinkTimeout}).");
        }

        if (options.DrainTimeout < TimeSpan.Zero)
        {
            failures.Add($"{nameof(options.DrainTimeout)} must not be negative.");
        }

        if (options.NetworkNamespace is { Length: 0 })
        {
            failures.Add($"{nameof(options.NetworkNamespace)} is empty; leave it unset for the daemon's own namespace.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckInterfaceName(string property, string? value, List<string> failures)
    {
        if (string.IsNullOrEmpty(value)
            || value.Length > InterfaceNameMaximum
            || value is "." or ".."
            || value.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || c > 127))
        {
            failures.Add($"{property} \"{value}\" is not a valid interface name (1 to {InterfaceNameMaximum} ASCII characters, no '/', ':' or spaces).");
        }
    }
}
