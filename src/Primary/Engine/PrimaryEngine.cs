using System.Diagnostics;
using System.Threading.Channels;
using McGrpc.Primary.Checkpoint;
using McGrpc.Primary.Output;
using McGrpc.Primary.Tracking;
using McGrpc.Shared.Hosting;
using McGrpc.Shared.Memory;
using McGrpc.Shared.Vm;
using McGrpc.Shared.Qmp;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace McGrpc.Primary.Engine;

/// <summary>
/// The primary's epoch loop and its state machine. One instance per daemon
/// (one protected VM). Control calls only set requests and read state; all
/// QEMU interaction runs on the engine's own task.
/// </summary>
internal sealed partial class PrimaryEngine : BackgroundService
{
    private readonly PrimaryOptions _options;
    private readonly ILogger<PrimaryEngine> _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly PrimaryStats _stats;
    private readonly TlsSettings _tls;
    private readonly Lock _lock = new();
    private readonly Channel<ProtectRequest> _protectRequests = Channel.CreateUnbounded<ProtectRequest>();
    private string _sessionId = Guid.NewGuid().ToString("N");

    private QmpClient? _qmp;
    private GuestRam? _ram;
    private DeviceStateCapture? _deviceState;
    private VmFacts _vm = VmFacts.Unknown;
    private PrimaryState _state = PrimaryState.Starting;
    private string _stateReason = "connecting to QEMU";
    private long _stateSinceUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    private volatile int _delayMs;
    private bool _mc;
    private bool _netDisable;
    private bool _diskDisable;
    private string? _target;
    private CancellationTokenSource? _protection;
    private volatile bool _guestShutdown;
    private volatile bool _qemuGone;

    public PrimaryEngine(IOptions<PrimaryOptions> options, PrimaryStats stats, ILoggerFactory loggerFactory, IHostApplicationLifetime lifetime, TlsSettings tls)
    {
        _tls = tls;
        _options = options.Value;
        _stats = stats;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<PrimaryEngine>();
        _lifetime = lifetime;
        _delayMs = _options.DelayMs;
        _netDisable = _options.NetDisable;
        _diskDisable = _options.DiskDisable;
        _stats.ObserveOutput(() => _output?.Stats);
    }

    /// <summary>Raised after every state change and every epoch; handlers must not block.</summary>
    public event Action? Changed;

    public PrimaryState State
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
            if (_options.Target is not null)
            {
                lock (_lock)
                {
                    _mc = true;
                }

                Migrate(_options.Target);
            }

            await foreach (var request in _protectRequests.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                await RunProtectionAsync(request, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is McGrpc.Shared.McGrpcException or IOException or System.Net.Sockets.SocketException)
        {
            SetState(PrimaryState.Failed, e.Message);
            PrimaryLog.Fatal(_logger, e.Message, e);
            Environment.ExitCode = 2;
            _lifetime.StopApplication();
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_deviceState is not null)
        {
            await _deviceState.DisposeAsync().ConfigureAwait(false);
        }

        _ram?.Dispose();
        if (_qmp is not null)
        {
            await _qmp.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task StartUpAsync(CancellationToken cancellationToken)
    {
        _qmp = await QmpClient.ConnectAsync(_options.QmpSocket, null, _loggerFactory.CreateLogger<QmpClient>(), cancellationToken).ConfigureAwait(false);
        _vm = await VmFacts.InspectAsync(_qmp, _options.VmId, cancellationToken).ConfigureAwait(false);
        var location = await GuestRamLocator.LocateAsync(_qmp, _options.RamFile, cancellationToken).ConfigureAwait(false);
        _ram = GuestRam.Map(location, writable: false);
        var socketPath = _options.DeviceStateSocket ?? Path.Combine(Path.GetTempPath(), $"mcgrpc-{Environment.ProcessId}-devstate.sock");
        _deviceState = await DeviceStateCapture.StartAsync(_qmp, socketPath, _options.MaxDeviceStateBytes, cancellationToken).ConfigureAwait(false);
        WatchQemu(_qmp);
        PrimaryLog.Ready(_logger, _vm.VmId, location.Path, location.Size / (1024 * 1024), location.QemuPid, _qmp.Greeting.ToString());
        SetState(PrimaryState.Idle, "waiting for Migrate");
    }

    /// <summary>
    /// QEMU gone means the protected VM is gone: the stream must break (not say
    /// goodbye) so the backup takes over, unless the guest powered itself off.
    /// </summary>
    private void WatchQemu(QmpClient qmp)
    {
        var shutdowns = qmp.Subscribe(e => e.Name == "SHUTDOWN");
        _ = Task.Run(async () =>
        {
            await foreach (var shutdown in shutdowns.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                if (shutdown.Data.TryGetProperty("guest", out var guest) && guest.ValueKind == System.Text.Json.JsonValueKind.True)
                {
                    _guestShutdown = true;
                    PrimaryLog.GuestShutdown(_logger);
                }
            }
        });
        _ = qmp.Completion.ContinueWith(
            t =>
            {
                shutdowns.Dispose();
                var reason = _guestShutdown ? "the guest powered off" : $"lost QEMU: {t.Exception?.InnerException?.Message ?? "QMP connection closed"}";
                _qemuGone = true;
                PrimaryLog.QemuGone(_logger, reason);
                CancellationTokenSource? protection;
                lock (_lock)
                {
                    protection = _protection;
                }

                protection?.Cancel();
                SetState(PrimaryState.Failed, reason);
                Environment.ExitCode = _guestShutdown ? 0 : 2;
                _lifetime.StopApplication();
            },
            TaskScheduler.Default);
    }

    private void SetState(PrimaryState state, string reason)
    {
        PrimaryState previous;
        lock (_lock)
        {
            previous = _state;
            if (previous == state && _stateReason == reason)
            {
                return;
            }

            // Failed and Fenced are final until the daemon restarts.
            if (previous is PrimaryState.Failed || (previous is PrimaryState.Fenced && state is not PrimaryState.Failed))
            {
                return;
            }

            _state = state;
            _stateReason = reason;
            _stateSinceUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        }

        if (state is PrimaryState.Degraded or PrimaryState.Unprotected or PrimaryState.Failed or PrimaryState.Fenced)
        {
            PrimaryLog.StateChangedLoud(_logger, previous, state, reason);
        }
        else
        {
            PrimaryLog.StateChanged(_logger, previous, state, reason);
        }

        _stats.SetState(state);
        Changed?.Invoke();
    }

    private static double Ms(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;
}
