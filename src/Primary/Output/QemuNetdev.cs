namespace McGrpc.Primary.Output;

/// <summary>A QEMU network backend that a guest NIC sends through: where output filters attach.</summary>
/// <param name="Id">The netdev id (<c>-netdev ...,id=ID</c>), or a hub port (<c>hub0port0</c>) for legacy <c>-net</c>.</param>
/// <param name="Type">tap, user, socket, hubport...</param>
/// <param name="Nic">The NIC that sends through it (<c>e1000.0</c>, or the device id).</param>
internal sealed record QemuNetdev(string Id, string Type, string Nic);
