using McGrpc.Shared.Hosting;

namespace McGrpc.Primary.Engine;

/// <summary>A Migrate waiting for the engine loop; Cancel signals <see cref="Cancellation"/>.</summary>
internal sealed record ProtectRequest(ReplicationTarget Target, CancellationTokenSource Cancellation);
