namespace McGrpc.Tests.Control;

/// <summary>Tests that share the daemons of <see cref="IdleDaemons"/>; they run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class IdleDaemonsCollection : ICollectionFixture<IdleDaemons>
{
    public const string Name = "idle daemons";
}
