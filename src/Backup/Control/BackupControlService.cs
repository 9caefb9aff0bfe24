using Grpc.Core;
using McGrpc.Backup.Engine;
using McGrpc.Protos.Control;

namespace McGrpc.Backup.Control;

/// <summary>The operator API of mc-backup: validates, calls the engine, maps refusals to status codes.</summary>
internal sealed class BackupControlService : BackupControl.BackupControlBase
{
    private readonly BackupEngine _engine;

    public BackupControlService(BackupEngine engine)
    {
        _engine = engine;
    }

    public override Task<BackupStatus> QueryStatus(QueryStatusRequest request, ServerCallContext context)
        => Task.FromResult(_engine.GetStatus());

    public override async Task<BackupStatus> Failover(FailoverRequest request, ServerCallContext context)
    {
        try
        {
            // Not the call's token: a client that disconnects or times out must
            // not abort a failover halfway (the restore has its own time limits).
            await _engine.FailoverAsync(request.Force, requestedByOperator: true, CancellationToken.None).ConfigureAwait(false);
        }
        catch (FailoverException e)
        {
            throw new RpcException(new Status(e.Precondition ? StatusCode.FailedPrecondition : StatusCode.Internal, e.Message));
        }

        return _engine.GetStatus();
    }

    public override Task<BackupStatus> SetFailoverPolicy(SetFailoverPolicyRequest request, ServerCallContext context)
    {
        if (!BackupEngine.IsFailoverPolicy(request.Policy))
        {
            throw new RpcException(new Status(
                StatusCode.InvalidArgument,
                string.IsNullOrWhiteSpace(request.Policy)
                    ? "policy is required: auto (fail over when the primary is declared dead) or manual (wait for the Failover call)."
                    : $"Unknown failover policy '{request.Policy}'; use auto or manual."));
        }

        _engine.SetFailoverPolicy(request.Policy);
        return Task.FromResult(_engine.GetStatus());
    }
}
