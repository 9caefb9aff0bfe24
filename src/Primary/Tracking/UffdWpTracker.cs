using System.Diagnostics;
using McGrpc.Shared;
using McGrpc.Shared.Native;
using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Tracking;

/// <summary>
/// Exact dirty tracking with an asynchronous write-protect userfaultfd that
/// belongs to QEMU's address space (Linux 6.7+). A harvest is one pass of
/// PAGEMAP_SCAN that returns the written ranges and write-protects them again,
/// atomically per page, so it costs in proportion to the dirty pages and is
/// exact even while the guest runs.
/// </summary>
/// <remarks>
/// The userfaultfd is created inside QEMU by <see cref="UserfaultfdInjector"/>
/// and only this process keeps a copy: when this process ends, however it
/// ends, the kernel releases the context and drops every protection bit, so
/// QEMU is never left write-protected. RAM discarded by a balloon or virtio-mem
/// is not a write and is not seen; the selector refuses such VMs.
/// </remarks>
internal sealed class UffdWpTracker : IDirtyTracker
{
    /// <summary>How long one QEMU thread may take to stop for the injection.</summary>
    private static readonly TimeSpan ThreadStopTimeout = TimeSpan.FromSeconds(2);

    private readonly int _qemuPid;
    private readonly ulong _ramStart;
    private readonly ulong _ramEnd;
    private readonly int _pageSize;
    private readonly long _pageCount;
    private readonly ILogger _logger;
    private readonly Pagemap _pagemap;
    private readonly Userfaultfd _userfaultfd;
    private bool _started;
    private bool _disposed;

    /// <summary>Injects a userfaultfd into QEMU and registers its guest-RAM mapping. Throws when any step fails, leaving QEMU as it was.</summary>
    /// <param name="qemuPid">The QEMU process.</param>
    /// <param name="ramAddress">Start of the guest-RAM mapping in QEMU's address space (from /proc/&lt;pid&gt;/maps).</param>
    /// <param name="ramLength">Length of that mapping in bytes.</param>
    /// <param name="pageSize">Page size of the reported runs; a multiple of the host page size.</param>
    /// <param name="guestRam">This daemon's own mapping of the same RAM file, read by the engine.</param>
    /// <param name="logger">Where tracker events go.</param>
    public UffdWpTracker(int qemuPid, ulong ramAddress, long ramLength, int pageSize, MappedMemory guestRam, ILogger logger)
    {
        CheckGeometry(ramAddress, ramLength, pageSize, guestRam);
        _qemuPid = qemuPid;
        _ramStart = ramAddress;
        _ramEnd = ramAddress + (ulong)ramLength;
        _pageSize = pageSize;
        _pageCount = ramLength / pageSize;
        CopySource = guestRam;
        _logger = logger;

        // Opened before anything touches QEMU: a pagemap we cannot read makes
        // the injection pointless.
        _pagemap = new Pagemap(qemuPid);
        try
        {
            var clock = Stopwatch.StartNew();
            var injection = UserfaultfdInjector.Inject(qemuPid, ThreadStopTimeout);
            foreach (var skipped in injection.SkippedThreads)
            {
                TrackingLog.UffdThreadSkipped(logger, qemuPid, skipped);
            }

            TrackingLog.UffdInjected(logger, qemuPid, injection.ThreadId, clock.Elapsed.TotalMilliseconds, injection.SkippedThreads.Count);
            _userfaultfd = injection.Userfaultfd;
        }
        catch
        {
            _pagemap.Dispose();
            throw;
        }

        try
        {
            var features = _userfaultfd.Handshake(Userfaultfd.AsyncWriteProtectFeatures);
            try
            {
                _userfaultfd.RegisterWriteProtect(_ramStart, (ulong)ramLength);
            }
            catch (NativeException e) when (e.Errno == Errors.EBUSY)
            {
                throw new McGrpcException($"QEMU {qemuPid}'s guest RAM is already registered with another userfaultfd (another tracker still attached, or a process holding an old one): {e.Message}", e);
            }

            TrackingLog.UffdRegistered(logger, qemuPid, ramAddress, ramLength, features);
        }
        catch (Exception e)
        {
            // The only copy of the descriptor is ours: closing it undoes the registration.
            TrackingLog.UffdSetupFailed(logger, qemuPid, e);
            _userfaultfd.Dispose();
            _pagemap.Dispose();
            throw;
        }
    }

    public string Name => "uffd-wp";

    /// <summary>
    /// PAGEMAP_SCAN with PM_SCAN_WP_MATCHING racing the guest's writes loses a
    /// few of them on Linux 6.18 (3 of 12 trials missed 1-5 pages, measured by
    /// UffdWpPrecopyOracleTests' byte-comparison oracle); with the guest
    /// stopped, none. So harvests happen only inside a stop, pre-copy rounds included.
    /// </summary>
    public bool HarvestExactWhileRunning => false;

    public MappedMemory CopySource { get; }

    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var clock = Stopwatch.StartNew();
        // Protects present pages and, with WP_UNPOPULATED, marks never-touched
        // ones, so the first write to any page is reported.
        _userfaultfd.WriteProtect(_ramStart, _ramEnd - _ramStart, protect: true);
        _started = true;
        TrackingLog.UffdArmed(_logger, _pageCount, clock.Elapsed.TotalMilliseconds);
    }

    public void Harvest(DirtyPageRuns runs)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_started)
        {
            throw new InvalidOperationException("Harvest before Start.");
        }

        var clock = Stopwatch.StartNew();
        var before = runs.PageCount;
        var calls = 0;
        var cursor = _ramStart;
        while (cursor < _ramEnd)
        {
            var regions = _pagemap.ScanWritten(cursor, _ramEnd, reprotect: true, out var walkEnd);
            calls++;
            AddRegions(regions, _ramStart, _pageSize, runs);
            cursor = walkEnd;
        }

        if (_logger.IsEnabled(LogLevel.Trace))
        {
            TrackingLog.UffdHarvested(_logger, runs.PageCount - before, runs.RangeCount, calls, clock.Elapsed.TotalMilliseconds);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            _userfaultfd.Unregister(_ramStart, _ramEnd - _ramStart);
        }
        catch (NativeException e)
        {
            TrackingLog.UffdUnregisterFailed(_logger, _qemuPid, e);
        }

        _userfaultfd.Dispose();
        _pagemap.Dispose();
        TrackingLog.UffdReleased(_logger, _qemuPid);
    }

    /// <summary>
    /// Appends PAGEMAP_SCAN result ranges (QEMU virtual addresses) to
    /// <paramref name="runs"/> as guest pages relative to <paramref name="mappingStart"/>.
    /// A range that is not page aligned covers every page it touches.
    /// </summary>
    internal static void AddRegions(ReadOnlySpan<PageRegion> regions, ulong mappingStart, int pageSize, DirtyPageRuns runs)
    {
        var size = (ulong)pageSize;
        foreach (var region in regions)
        {
            if (region.End <= region.Start || region.Start < mappingStart)
            {
                throw new ArgumentException($"PAGEMAP_SCAN range 0x{region.Start:x}-0x{region.End:x} is not inside the mapping at 0x{mappingStart:x}.", nameof(regions));
            }

            runs.AddCovering((long)((region.Start - mappingStart) / size), (long)((region.End - mappingStart + size - 1) / size));
        }
    }

    internal static void CheckGeometry(ulong ramAddress, long ramLength, int pageSize, MappedMemory guestRam)
    {
        var hostPage = Environment.SystemPageSize;
        if (pageSize < hostPage || pageSize % hostPage != 0 || (pageSize & (pageSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(pageSize), $"Page size {pageSize} must be a power of two and a multiple of the host page size {hostPage}.");
        }

        if (ramAddress % (ulong)hostPage != 0 || ramLength <= 0 || ramLength % pageSize != 0)
        {
            throw new ArgumentException($"Guest RAM 0x{ramAddress:x}+{ramLength} is not page aligned (page size {pageSize}).", nameof(ramAddress));
        }

        if (guestRam.Length != ramLength)
        {
            throw new ArgumentException($"The daemon's RAM mapping has {guestRam.Length} bytes, QEMU's has {ramLength}.", nameof(guestRam));
        }
    }
}
