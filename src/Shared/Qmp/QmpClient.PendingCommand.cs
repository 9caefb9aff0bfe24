using System.Runtime.InteropServices;
using System.Text.Json;

namespace McGrpc.Shared.Qmp;

internal sealed partial class QmpClient
{
    /// <summary>
    /// A command from the moment it is registered until its reply, its timeout or the end of the
    /// connection. Being the completion source itself saves an allocation per command.
    /// </summary>
    private sealed class PendingCommand(long id, string command, SafeHandle? descriptor)
        : TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public long Id { get; } = id;

        public string Command { get; } = command;

        /// <summary>A descriptor to pass with SCM_RIGHTS together with the command (getfd).</summary>
        public SafeHandle? Descriptor { get; } = descriptor;

        /// <summary>Stopwatch timestamp of the write, for the debug log.</summary>
        public long SentTimestamp { get; set; }
    }
}
