using McGrpc.Primary.Tracking;
using McGrpc.Shared.Memory;
using McGrpc.Shared.Vm;
using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Engine;

/// <summary>Creates the dirty tracker the options ask for, with the reason for the choice.</summary>
internal static class TrackerFactory
{
    public static IDirtyTracker Create(string requested, GuestRam ram, VmFacts vm, ILoggerFactory loggers, out string reason)
    {
        if (requested is not ("auto" or "compare"))
        {
            throw new TrackerUnavailableException($"Tracker '{requested}' is not available in this build; use auto or compare.");
        }

        reason = requested == "compare" ? "forced by option" : "the only tracker in this build";
        return new CompareTracker(ram.Memory, ram.PageSize, loggers.CreateLogger<CompareTracker>());
    }
}
