using System.Text.Json;

namespace McGrpc.Shared.Qmp;

/// <summary>The answer to <c>query-migrate</c>.</summary>
/// <param name="Status">
/// The migration status: <c>none</c> (also when QEMU returns <c>{}</c>, as 7.2 does before the
/// first migration), <c>setup</c>, <c>active</c>, <c>device</c>, <c>completed</c>,
/// <c>failed</c>, <c>cancelled</c>...
/// </param>
/// <param name="Raw">The whole reply (ram statistics, total-time, downtime, error-desc...).</param>
internal sealed record QmpMigrationInfo(string Status, JsonElement Raw)
{
    /// <summary>QEMU's explanation when <see cref="Status"/> is <c>failed</c>.</summary>
    public string? ErrorDescription =>
        Raw.TryGetProperty("error-desc"u8, out var description) ? description.GetString() : null;
}
