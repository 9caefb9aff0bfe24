namespace McGrpc.Tests.Tracking;

/// <summary>
/// One booted test guest running the memory verifier, shared by the tracking
/// tests against real QEMU (booting under TCG takes a while).
/// </summary>
public sealed class MemverifyGuestFixture : IAsyncLifetime
{
    internal TrackingQemu Qemu { get; private set; } = null!;

    public async Task InitializeAsync() => Qemu = await TrackingQemu.StartAsync("memverify");

    public async Task DisposeAsync()
    {
        if (Qemu is not null)
        {
            await Qemu.DisposeAsync();
        }
    }
}
