namespace McGrpc.Shared.Qmp;

/// <summary>One entry of <c>qom-list</c>.</summary>
/// <param name="Name">Property name, e.g. <c>mem-path</c>, or a child such as <c>ram0[0]</c>.</param>
/// <param name="Type">QOM type, e.g. <c>string</c>, <c>int</c>, <c>bool</c>, <c>child&lt;memory-region&gt;</c>, <c>link&lt;thread-context&gt;</c>.</param>
/// <param name="Description">The property's description, when QEMU gives one (7.2 does not in qom-list).</param>
internal sealed record QmpObjectProperty(string Name, string Type, string? Description);
