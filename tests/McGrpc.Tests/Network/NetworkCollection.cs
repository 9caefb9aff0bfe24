using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Network;

/// <summary>Output-commit tests that share one networked guest (see <see cref="NetworkGuestChain"/>); they run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class NetworkCollection : ICollectionFixture<NetworkGuestChain>
{
    public const string Name = "network guest chain";
}
