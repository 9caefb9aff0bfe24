using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace McGrpc.Shared.Qmp;

/// <summary>Typed wrappers of the commands the daemons use. All wait at most <see cref="QmpClientOptions.CommandTimeout"/>.</summary>
internal sealed partial class QmpClient
{
    /// <summary><c>query-status</c>: the run state.</summary>
    public async Task<QmpRunStatus> QueryStatusAsync(CancellationToken cancellationToken)
    {
        var result = await ExecuteAsync("query-status", null, cancellationToken).ConfigureAwait(false);
        return new QmpRunStatus(RunState(result.GetProperty("status"u8)), result.GetProperty("running"u8).GetBoolean());
    }

    /// <summary><c>stop</c>: pauses the vCPUs. QEMU emits STOP before the reply, and nothing when already paused.</summary>
    public Task StopAsync(CancellationToken cancellationToken) =>
        ExecuteAsync("stop", null, cancellationToken);

    /// <summary>
    /// <c>cont</c>: resumes the vCPUs; works from <c>paused</c>, <c>prelaunch</c> and
    /// <c>postmigrate</c>. QEMU emits RESUME before the reply.
    /// </summary>
    public Task ContAsync(CancellationToken cancellationToken) =>
        ExecuteAsync("cont", null, cancellationToken);

    /// <summary><c>migrate-set-capabilities</c>, e.g. <c>x-ignore-shared</c>, <c>events</c>.</summary>
    public Task MigrateSetCapabilitiesAsync(IReadOnlyDictionary<string, bool> capabilities, CancellationToken cancellationToken)
    {
        var list = new JsonArray();
        foreach (var (capability, state) in capabilities)
        {
            list.Add(new JsonObject { ["capability"] = capability, ["state"] = state });
        }

        return ExecuteAsync("migrate-set-capabilities", new JsonObject { ["capabilities"] = list }, cancellationToken);
    }

    /// <summary><c>migrate-set-parameters</c>: <paramref name="parameters"/> are the command's arguments, kebab-case.</summary>
    public Task MigrateSetParametersAsync(JsonObject parameters, CancellationToken cancellationToken) =>
        ExecuteAsync("migrate-set-parameters", parameters, cancellationToken);

    /// <summary>
    /// <c>migrate</c>: starts an outgoing migration and returns at once; watch
    /// <see cref="QueryMigrateAsync"/> or the MIGRATION event (capability <c>events</c>).
    /// QEMU refuses it from <c>postmigrate</c>: <c>cont</c> first.
    /// </summary>
    public Task MigrateAsync(string uri, CancellationToken cancellationToken) =>
        ExecuteAsync("migrate", new Dictionary<string, string> { ["uri"] = uri }, cancellationToken);

    /// <summary><c>migrate-incoming</c> on a QEMU started with <c>-incoming defer</c>; works once per process.</summary>
    public Task MigrateIncomingAsync(string uri, CancellationToken cancellationToken) =>
        ExecuteAsync("migrate-incoming", new Dictionary<string, string> { ["uri"] = uri }, cancellationToken);

    /// <summary><c>query-migrate</c>.</summary>
    public async Task<QmpMigrationInfo> QueryMigrateAsync(CancellationToken cancellationToken)
    {
        var result = await ExecuteAsync("query-migrate", null, cancellationToken).ConfigureAwait(false);
        var status = result.TryGetProperty("status"u8, out var value) ? value.GetString() ?? "none" : "none";
        return new QmpMigrationInfo(status, result);
    }

    /// <summary><c>query-memdev</c>: the memory backends.</summary>
    public async Task<IReadOnlyList<QmpMemdev>> QueryMemdevAsync(CancellationToken cancellationToken)
    {
        var result = await ExecuteAsync("query-memdev", null, cancellationToken).ConfigureAwait(false);
        var backends = new List<QmpMemdev>(result.GetArrayLength());
        foreach (var backend in result.EnumerateArray())
        {
            var hostNodes = new List<int>();
            if (backend.TryGetProperty("host-nodes"u8, out var nodes))
            {
                foreach (var node in nodes.EnumerateArray())
                {
                    hostNodes.Add(node.GetInt32());
                }
            }

            backends.Add(new QmpMemdev(
                backend.TryGetProperty("id"u8, out var id) ? id.GetString() : null,
                backend.GetProperty("size"u8).GetInt64(),
                backend.GetProperty("share"u8).GetBoolean(),
                backend.GetProperty("merge"u8).GetBoolean(),
                backend.GetProperty("dump"u8).GetBoolean(),
                backend.GetProperty("prealloc"u8).GetBoolean(),
                backend.TryGetProperty("reserve"u8, out var reserve) ? reserve.GetBoolean() : null,
                backend.GetProperty("policy"u8).GetString() ?? "",
                hostNodes,
                backend));
        }

        return backends;
    }

    /// <summary><c>qom-get</c>: one property of a QOM object, e.g. <c>/objects/ram0</c> <c>mem-path</c>.</summary>
    public Task<JsonElement> QomGetAsync(string path, string property, CancellationToken cancellationToken) =>
        ExecuteAsync("qom-get", new Dictionary<string, string> { ["path"] = path, ["property"] = property }, cancellationToken);

    /// <summary><c>qom-list</c>: the properties and children of a QOM object.</summary>
    public async Task<IReadOnlyList<QmpObjectProperty>> QomListAsync(string path, CancellationToken cancellationToken)
    {
        var result = await ExecuteAsync("qom-list", new Dictionary<string, string> { ["path"] = path }, cancellationToken).ConfigureAwait(false);
        var properties = new List<QmpObjectProperty>(result.GetArrayLength());
        foreach (var entry in result.EnumerateArray())
        {
            properties.Add(new QmpObjectProperty(
                entry.GetProperty("name"u8).GetString() ?? "",
                entry.GetProperty("type"u8).GetString() ?? "",
                entry.TryGetProperty("description"u8, out var description) ? description.GetString() : null));
        }

        return properties;
    }

    /// <summary>
    /// <c>object-add</c>: <paramref name="properties"/> holds <c>qom-type</c>, <c>id</c> and the
    /// object's properties side by side (the flat form QEMU 6.0+ expects).
    /// </summary>
    public Task ObjectAddAsync(JsonObject properties, CancellationToken cancellationToken) =>
        ExecuteAsync("object-add", properties, cancellationToken);

    /// <summary><c>object-del</c>.</summary>
    public Task ObjectDelAsync(string id, CancellationToken cancellationToken) =>
        ExecuteAsync("object-del", new Dictionary<string, string> { ["id"] = id }, cancellationToken);

    /// <summary>
    /// <c>chardev-add</c>: <paramref name="backend"/> is the ChardevBackend, e.g.
    /// <c>{"type": "socket", "data": {"addr": {...}, "server": false}}</c>.
    /// </summary>
    /// <returns>QEMU's ChardevReturn (<c>{"pty": ...}</c> for pty backends, otherwise empty).</returns>
    public Task<JsonElement> ChardevAddAsync(string id, JsonObject backend, CancellationToken cancellationToken) =>
        // A dictionary rather than a JsonObject: adding backend to a new JsonObject would re-parent it.
        ExecuteAsync("chardev-add", new Dictionary<string, object> { ["id"] = id, ["backend"] = backend }, cancellationToken);

    /// <summary><c>chardev-remove</c>.</summary>
    public Task ChardevRemoveAsync(string id, CancellationToken cancellationToken) =>
        ExecuteAsync("chardev-remove", new Dictionary<string, string> { ["id"] = id }, cancellationToken);

    /// <summary><c>human-monitor-command</c>, for HMP-only output such as <c>info mtree</c>. Lines end in "\r\n".</summary>
    public async Task<string> HumanMonitorCommandAsync(string commandLine, CancellationToken cancellationToken)
    {
        var result = await ExecuteAsync("human-monitor-command", new Dictionary<string, string> { ["command-line"] = commandLine }, cancellationToken).ConfigureAwait(false);
        return result.GetString() ?? "";
    }

    /// <summary>
    /// <c>getfd</c>: passes <paramref name="descriptor"/> to QEMU with SCM_RIGHTS and names it
    /// <paramref name="fdname"/>, for later use as <c>fd:NAME</c> (e.g. <c>migrate fd:NAME</c>).
    /// QEMU holds its own duplicate; the caller may close <paramref name="descriptor"/> once this
    /// returns. Reusing a name replaces (and closes) QEMU's previous descriptor.
    /// </summary>
    public Task GetfdAsync(string fdname, SafeHandle descriptor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        return ExecuteCoreAsync("getfd", new Dictionary<string, string> { ["fdname"] = fdname }, descriptor, _options.CommandTimeout, cancellationToken);
    }

    /// <summary><c>closefd</c>: closes a descriptor QEMU received with <see cref="GetfdAsync"/> and did not consume.</summary>
    public Task ClosefdAsync(string fdname, CancellationToken cancellationToken) =>
        ExecuteAsync("closefd", new Dictionary<string, string> { ["fdname"] = fdname }, cancellationToken);

    /// <summary>The common run states come back as shared strings: query-status runs every epoch.</summary>
    private static string RunState(JsonElement status) =>
        status.ValueEquals("running"u8) ? "running"
        : status.ValueEquals("paused"u8) ? "paused"
        : status.ValueEquals("postmigrate"u8) ? "postmigrate"
        : status.ValueEquals("finish-migrate"u8) ? "finish-migrate"
        : status.ValueEquals("inmigrate"u8) ? "inmigrate"
        : status.ValueEquals("prelaunch"u8) ? "prelaunch"
        : status.GetString() ?? "";
}
