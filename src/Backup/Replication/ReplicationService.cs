using Grpc.Core;
using McGrpc.Backup.Engine;
using McGrpc.Protos.Replication;

namespace McGrpc.Backup.Replication;

/// <summary>The replication endpoint: all checks and state live in <see cref="BackupEngine"/>.</summary>
internal sealed class ReplicationService : Protos.Replication.Replication.ReplicationBase
{
    private readonly BackupEngine _engine;

    public ReplicationService(BackupEngine engine)
    {
        _engine = engine;
    }

    public override Task Replicate(IAsyncStreamReader<PrimaryFrame> requestStream, IServerStreamWriter<BackupFrame> responseStream, ServerCallContext context)
        => _engine.RunSessionAsync(requestStream, responseStream, context.CancellationToken);
}
