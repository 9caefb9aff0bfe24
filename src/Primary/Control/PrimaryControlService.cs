using System.Diagnostics;
using Grpc.Core;
using McGrpc.Primary.Engine;
using McGrpc.Protos.Control;
using McGrpc.Shared;
using Microsoft.Extensions.Hosting;

namespace McGrpc.Primary.Control;

/// <summary>The operator API of mc-primary: validates, calls the engine, maps refusals to status codes.</summary>
internal sealed class PrimaryControlService : PrimaryControl.PrimaryControlBase
{
    /// <summary>Upper bound of WatchStatus's min_interval_ms.</summary>
    public const uint MaxWatchIntervalMs = 60000;

    private readonly PrimaryEngine _engine;
    private readonly IHostApplicationLifetime _lifetime;

    public PrimaryControlService(PrimaryEngine engine, IHostApplicationLifetime lifetime)
    {
        _engine = engine;
        _lifetime = lifetime;
    }

    public override async Task<Capabilities> SetCapability(SetCapabilityRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Name))
        {
            throw Invalid($"name is required: one of {PrimaryEngine.CapabilityMc}, {PrimaryEngine.CapabilityNetDisable}, {PrimaryEngine.CapabilityDiskDisable}.");
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

    public override async Task<PrimaryStatus> Cancel(CancelRequest request, ServerCallContext context)
    {
        await Guard(() => _engine.CancelAsync(context.CancellationToken)).ConfigureAwait(false);
        return _engine.GetStatus();
    }

    public override Task<PrimaryStatus> QueryStatus(QueryStatusRequest request, ServerCallContext context)
        => Task.FromResult(_engine.GetStatus());

    /// <summary>
    /// One message at once; then one per change of state, configuration or
    /// target without delay, and one per epoch, ack or initial-copy progress
    /// at most every min_interval_ms (the latest numbers; none are queued).
    /// Ends when the client goes away or the daemon stops.
    /// </summary>
    public override async Task WatchStatus(WatchStatusRequest request, IServerStreamWriter<PrimaryStatus> responseStream, ServerCallContext context)
    {
        if (request.MinIntervalMs > MaxWatchIntervalMs)
        {
            throw Invalid($"min_interval_ms must be 0..{MaxWatchIntervalMs}, not {request.MinIntervalMs}.");
        }

        using var watch = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, _lifetime.ApplicationStopping);
        var token = watch.Token;
        var minInterval = TimeSpan.FromMilliseconds(request.MinIntervalMs);
        using var signal = new ChangeSignal(_engine);
        try
        {
            var last = _engine.GetStatus();
            await responseStream.WriteAsync(last, token).ConfigureAwait(false);
            var lastSentAt = Stopwatch.GetTimestamp();
            var progressPending = false;
            while (true)
            {
                if (progressPending)
                {
                    // Rate-limited: wake for a change, or when the interval is over to send what is pending.
                    var left = minInterval - Stopwatch.GetElapsedTime(lastSentAt);
                    if (left > TimeSpan.Zero)
                    {
                        await signal.WaitAsync(left, token).ConfigureAwait(false);
                    }
                }
                else
                {
                    await signal.WaitAsync(token).ConfigureAwait(false);
                }

                var status = _engine.GetStatus();
                var urgent = ChangedConfiguration(last, status);
                var progress = progressPending || ChangedProgress(last, status);
                if (urgent || (progress && Stopwatch.GetElapsedTime(lastSentAt) >= minInterval))
                {
                    await responseStream.WriteAsync(status, token).ConfigureAwait(false);
                    last = status;
                    lastSentAt = Stopwatch.GetTimestamp();
                    progressPending = false;
                }
                else
                {
                    progressPending = progress;
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The client went away or the daemon stops.
        }
    }

    /// <summary>State, target and settings: an operator watching wants these at once.</summary>
    private static bool ChangedConfiguration(PrimaryStatus before, PrimaryStatus now)
        => before.State != now.State
           || before.StateReason != now.StateReason
           || before.Target != now.Target
           || before.DelayMs != now.DelayMs
           || before.OutputBuffer != now.OutputBuffer
           || before.Tracker != now.Tracker
           || !before.Capabilities.Equals(now.Capabilities);

    /// <summary>Epochs, acks and initial-copy progress: these come many times a second.</summary>
    private static bool ChangedProgress(PrimaryStatus before, PrimaryStatus now)
        => before.Epoch != now.Epoch
           || before.LastAckedEpoch != now.LastAckedEpoch
           || before.Stats.Checkpoints != now.Stats.Checkpoints
           || before.Stats.AckedCheckpoints != now.Stats.AckedCheckpoints
           || !Equals(before.Sync, now.Sync);

    private Capabilities BuildCapabilities()
    {
        var capabilities = new Capabilities();
        capabilities.Capabilities_.AddRange(_engine.GetCapabilities());
        return capabilities;
    }

    private static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));

    /// <summary>Runs an engine call and turns its refusal into the status code the caller gets.</summary>
    private static void Guard(Action call)
    {
        try
        {
            call();
        }
        catch (McGrpcException e)
        {
            throw ToRpc(e);
        }
    }

    /// <inheritdoc cref="Guard(Action)"/>
    private static async Task Guard(Func<Task> call)
    {
        try
        {
            await call().ConfigureAwait(false);
        }
        catch (McGrpcException e)
        {
            throw ToRpc(e);
        }
    }

    /// <summary>Refusals keep their kind; anything else failed while doing what was asked.</summary>
    private static RpcException ToRpc(McGrpcException e) => new(new Status(
        e is ControlException control
            ? control.Kind == ControlErrorKind.InvalidArgument ? StatusCode.InvalidArgument : StatusCode.FailedPrecondition
            : StatusCode.Internal,
        e.Message));
}
