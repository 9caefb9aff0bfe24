using System.Threading.Channels;
using Grpc.Core;
using McGrpc.Primary.Engine;
using McGrpc.Protos.Control;

namespace McGrpc.Primary.Control;

/// <summary>The operator API of mc-primary: validates, calls the engine, maps refusals to status codes.</summary>
internal sealed class PrimaryControlService : PrimaryControl.PrimaryControlBase
{
    private readonly PrimaryEngine _engine;

    public PrimaryControlService(PrimaryEngine engine)
    {
        _engine = engine;
    }

    public override async Task<Capabilities> SetCapability(SetCapabilityRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Name))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "name is required: mc, mc-net-disable or mc-disk-disable."));
        }

        await Guard(() => _engine.SetCapabilityAsync(request.Name, request.Enabled, context.CancellationToken)).ConfigureAwait(false);
        return BuildCapabilities();
    }

    public override Task<Capabilities> GetCapabilities(GetCapabilitiesRequest request, ServerCallContext context)
        => Task.FromResult(BuildCapabilities());

    public override Task<PrimaryStatus> SetMcDelay(SetMcDelayRequest request, ServerCallContext context)
    {
        Guard(() => _engine.SetDelay(request.DelayMs));
        return Task.FromResult(_engine.GetStatus());
    }

    public override Task<PrimaryStatus> Migrate(MigrateRequest request, ServerCallContext context)
    {
        Guard(() => _engine.Migrate(request.Target));
        return Task.FromResult(_engine.GetStatus());
    }

    public override Task<PrimaryStatus> Cancel(CancelRequest request, ServerCallContext context)
    {
        Guard(_engine.Cancel);
        return Task.FromResult(_engine.GetStatus());
    }

    public override Task<PrimaryStatus> QueryStatus(QueryStatusRequest request, ServerCallContext context)
        => Task.FromResult(_engine.GetStatus());

    public override async Task WatchStatus(WatchStatusRequest request, IServerStreamWriter<PrimaryStatus> responseStream, ServerCallContext context)
    {
        if (request.MinIntervalMs > 60000)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"min_interval_ms must be at most 60000, not {request.MinIntervalMs}."));
        }

        var changes = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        void OnChanged() => changes.Writer.TryWrite(true);
        _engine.Changed += OnChanged;
        try
        {
            var token = context.CancellationToken;
            var lastState = string.Empty;
            while (!token.IsCancellationRequested)
            {
                var status = _engine.GetStatus();
                await responseStream.WriteAsync(status, token).ConfigureAwait(false);
                var stateChanged = status.State != lastState;
                lastState = status.State;
                if (!stateChanged && request.MinIntervalMs > 0)
                {
                    await Task.Delay((int)request.MinIntervalMs, token).ConfigureAwait(false);
                }

                await changes.Reader.ReadAsync(token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            _engine.Changed -= OnChanged;
        }
    }

    private Capabilities BuildCapabilities()
    {
        var capabilities = new Capabilities();
        capabilities.Capabilities_.AddRange(_engine.GetCapabilities());
        return capabilities;
    }

    private static void Guard(Action action)
    {
        try
        {
            action();
        }
        catch (ControlException e)
        {
            throw ToRpc(e);
        }
    }

    private static async Task Guard(Func<Task> action)
    {
        try
        {
            await action().ConfigureAwait(false);
        }
        catch (ControlException e)
        {
            throw ToRpc(e);
        }
    }

    private static RpcException ToRpc(ControlException e) => new(new Status(
        e.Kind == ControlErrorKind.InvalidArgument ? StatusCode.InvalidArgument : StatusCode.FailedPrecondition,
        e.Message));
}
