namespace McGrpc.Tests.Infrastructure;

/// <summary>Tests that share one booted guest (see <see cref="GuestChain"/>); they run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class GuestCollection : ICollectionFixture<GuestChain>
{
    public const string Name = "guest chain";
}
