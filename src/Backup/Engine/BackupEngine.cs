using System.Diagnostics;
using McGrpc.Backup.Replication;
using McGrpc.Shared;
using McGrpc.Shared.Memory;
using McGrpc.Shared.Qmp;
using McGrpc.Shared.Vm;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace McGrpc.Backup.Engine;

/// <summary>
/// The backup's state machine: accepts one replication session at a time,
/// keeps the last applied checkpoint (RAM in the shared file, device state
/// here), watches the primary's liveness and fails over.
/// </summary>
internal sealed partial class BackupEngine : BackgroundService
{
    private readonly BackupOptions _options;
    private readonly BackupStats _stats;
    private readonly ILogger<BackupEngine> _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private QmpClient? _qmp;
    private GuestRam? _ram;
    private EpochStager? _stager;
    private VmFacts _vm = VmFacts.Unknown;
    private BackupState _state = BackupState.Starting;
    private string _stateReason = "connecting to QEMU";
    private long _stateSinceUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    private string _policy;

    // The checkpoint: RAM is in the file; this is the rest of it.
    private bool _hasCheckpoint;
    private ulong _lastApplied;
    private bool _appliedAny;
    private byte[] _checkpointDeviceState = [];
    private string _checkpointSession = string.Empty;
    private long _checkpointStoppedAtUnixMs;
    private string _lastRamDigest = string.Empty;
    private string? _goodbyeReason;

    public BackupEngine(IOptions<BackupOptions> options, BackupStats stats, ILoggerFactory loggerFactory, IHostApplicationLifetime lifetime)
    {
        _options = options.Value;
        _stats = stats;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<BackupEngine>();
        _lifetime = lifetime;
        _policy = _options.FailoverPolicy;
    }

    /// <summary>Raised after every state change and applied epoch; handlers must not block.</summary>
    public event Action? Changed;

    public BackupState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await StartUpAsync(stoppingToken).ConfigureAwait(false);
            _ready.TrySetResult();
            await WatchPrimaryAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is McGrpcException or IOException or System.Net.Sockets.SocketException)
        {
            _ready.TrySetException(e);
            SetState(BackupState.Failed, e.Message);
            BackupLog.Fatal(_logger, e.Message, e);
            Environment.ExitCode = 2;
            _lifetime.StopApplication();
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        _stager?.Dispose();
        _ram?.Dispose();
        if (_qmp is not null)
        {
            await _qmp.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task StartUpAsync(CancellationToken cancellationToken)
    {
        _qmp = await QmpClient.ConnectAsync(_options.QmpSocket, null, _loggerFactory.CreateLogger<QmpClient>(), cancellationToken).ConfigureAwait(false);
        var status = await _qmp.QueryStatusAsync(cancellationToken).ConfigureAwait(false);
        if (status.Status != "inmigrate")
        {
            throw new McGrpcException($"The backup QEMU is '{status.Status}', not waiting for an incoming migration: start it with the primary's command line plus -incoming defer (and -S).");
        }

        _vm = await VmFacts.InspectAsync(_qmp, _options.VmId, cancellationToken).ConfigureAwait(false);
        var location = await GuestRamLocator.LocateAsync(_qmp, _options.RamFile, cancellationToken).ConfigureAwait(false);
        _ram = GuestRam.Map(location, writable: true);
        _stager = new EpochStager(_ram, _options.MaxStagingBytes, _options.MaxDeviceStateBytes, _options.MaxFullCopyPasses);

        // x-ignore-shared must be set on both ends before migrate-incoming: RAM
        // comes from the file we write, not from the stream.
        await _qmp.MigrateSetCapabilitiesAsync(new Dictionary<string, bool> { ["x-ignore-shared"] = true, ["events"] = true }, cancellationToken).ConfigureAwait(false);
        _ = _qmp.Completion.ContinueWith(
            t =>
            {
                var reason = $"lost the backup QEMU: {t.Exception?.InnerException?.Message ?? "QMP connection closed"}";
                SetState(BackupState.Failed, reason);
                BackupLog.QemuGone(_logger, reason);
                AbortSession(reason);
                Environment.ExitCode = 2;
                _lifetime.StopApplication();
            },
            TaskScheduler.Default);
        BackupLog.Ready(_logger, _vm.VmId, location.Path, location.Size / (1024 * 1024), location.QemuPid, _policy);
        SetState(BackupState.Waiting, "waiting for the primary");
    }

    private void SetState(BackupState state, string reason)
    {
        BackupState previous;
        lock (_lock)
        {
            previous = _state;
            if (previous == state && _stateReason == reason)
            {
                return;
            }

            if (previous is BackupState.Failed || (previous is BackupState.FailedOver && state is not BackupState.Failed))
            {
                return;
            }

            _state = state;
            _stateReason = reason;
            _stateSinceUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        }

        if (state is BackupState.PrimaryLost or BackupState.Failed or BackupState.FailingOver or BackupState.FailedOver)
        {
            BackupLog.StateChangedLoud(_logger, previous, state, reason);
        }
        else
        {
            BackupLog.StateChanged(_logger, previous, state, reason);
        }

        _stats.SetState(state);
        Changed?.Invoke();
    }

    private static double Ms(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;
}
