using Grpc.Core;
using McGrpc.Backup.Engine;
using McGrpc.Protos.Control;

namespace McGrpc.Backup.Control;

/// <summary>The operator API of mc-backup.</summary>
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
            await _engine.FailoverAsync(request.Force, requestedByOperator: true, context.CancellationToken).ConfigureAwait(false);
        }
        catch (FailoverException e)
        {
            throw new RpcException(new Status(e.Precondition ? StatusCode.FailedPrecondition : StatusCode.Internal, e.Message));
        }

        return _engine.GetStatus();
    }

    public override Task<BackupStatus> SetFailoverPolicy(SetFailoverPolicyRequest request, ServerCallContext context)
    {
        try
        {
            _engine.SetFailoverPolicy(request.Policy);
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message.Split(" (Parameter", 2)[0]));
        }

        return Task.FromResult(_engine.GetStatus());
    }
}
