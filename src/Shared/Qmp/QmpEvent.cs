using System.Text.Json;

namespace McGrpc.Shared.Qmp;

/// <summary>An asynchronous QMP event, e.g. <c>STOP</c>, <c>RESUME</c>, <c>MIGRATION</c>.</summary>
internal sealed class QmpEvent
{
    private static readonly JsonElement EmptyData = CreateEmptyObject();

    public QmpEvent(string name, JsonElement? data, DateTimeOffset timestamp)
    {
        Name = name;
        Data = data ?? EmptyData;
        Timestamp = timestamp;
    }

    /// <summary>The event name, upper case as QEMU sends it.</summary>
    public string Name { get; }

    /// <summary>
    /// The event's <c>data</c> member; an empty object for events that have none (STOP and
    /// RESUME in 7.2). Owned by this event, safe to keep and to read from any thread.
    /// </summary>
    public JsonElement Data { get; }

    /// <summary>When QEMU emitted the event (QEMU's host wall clock).</summary>
    public DateTimeOffset Timestamp { get; }

    public override string ToString() => $"{Name} {Data.GetRawText()}";

    private static JsonElement CreateEmptyObject()
    {
        using var document = JsonDocument.Parse("{}");
        return document.RootElement.Clone();
    }
}
