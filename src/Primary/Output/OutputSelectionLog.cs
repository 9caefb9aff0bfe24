using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Output;

/// <summary>Log events of the output buffer choice, ids 3190-3199.</summary>
internal static partial class OutputSelectionLog
{
    [LoggerMessage(EventId = 3190, Level = LogLevel.Information, Message = "Output buffer: {Choice} ({Reason})")]
    public static partial void Chosen(ILogger logger, string choice, string reason);

    [LoggerMessage(EventId = 3191, Level = LogLevel.Warning,
        Message = "Output buffer: none. The VM has no NIC with a network backend, so there is no network output to hold; a NIC added later is NOT protected until protection restarts")]
    public static partial void NoNic(ILogger logger);

    [LoggerMessage(EventId = 3192, Level = LogLevel.Information, Message = "mc-net-disable is on: the {Choice} output buffer attaches when it is turned off")]
    public static partial void DeferredByNetDisable(ILogger logger, string choice);
}
