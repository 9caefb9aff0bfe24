namespace McGrpc.Tests.Tracking;

/// <summary>
/// The tracking tests against real QEMU share one guest and run one after
/// another: on two cores, two TCG guests at once would make speed checks meaningless.
/// </summary>
[CollectionDefinition(Name)]
public sealed class TrackingQemuCollection : ICollectionFixture<MemverifyGuestFixture>
{
    public const string Name = "tracking-qemu";
}
