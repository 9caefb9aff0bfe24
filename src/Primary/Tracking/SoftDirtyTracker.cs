using System.Diagnostics;
using McGrpc.Shared.Native;
using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Tracking;

/// <summary>
/// Dirty tracking with the kernel's soft-dirty bits (CONFIG_MEM_SOFT_DIRTY):
/// read bit 55 of QEMU's pagemap entries over the RAM mapping, then clear the
/// bits of the whole process with clear_refs. Costs a pagemap read of the whole
/// RAM (8 bytes per host page) per harvest.
/// </summary>
/// <remarks>
/// Reading and clearing are two steps, and clear_refs acts on the whole process:
/// a page written between its entry being read and the clear is lost. Harvests
/// are therefore exact only while QEMU does not write guest RAM (guest stopped);
/// in a pre-copy round with the guest running, such a page would be missed
/// until written again. Discarded RAM (balloon, virtio-mem) is not seen either.
/// </remarks>
internal sealed class SoftDirtyTracker : IDirtyTracker
{
    private const int EntriesPerRead = 64 * 1024;

    private readonly int _qemuPid;
    private readonly ulong _ramStart;
    private readonly long _hostPages;
    private readonly int _hostPageSize;
    private readonly int _hostPagesPerPage;
    private readonly ILogger _logger;
    private readonly Pagemap _pagemap;
    private readonly ulong[] _entries;
    private bool _started;
    private bool _disposed;

    /// <param name="qemuPid">The QEMU process.</param>
    /// <param name="ramAddress">Start of the guest-RAM mapping in QEMU's address space.</param>
    /// <param name="ramLength">Length of that mapping in bytes.</param>
    /// <param name="pageSize">Page size of the reported runs; a multiple of the host page size.</param>
    /// <param name="guestRam">This daemon's own mapping of the same RAM file.</param>
    /// <param name="logger">Where tracker events go.</param>
    public SoftDirtyTracker(int qemuPid, ulong ramAddress, long ramLength, int pageSize, MappedMemory guestRam, ILogger logger)
    {
        UffdWpTracker.CheckGeometry(ramAddress, ramLength, pageSize, guestRam);
        _qemuPid = qemuPid;
        _ramStart = ramAddress;
        _hostPageSize = Environment.SystemPageSize;
        _hostPages = ramLength / _hostPageSize;
        _hostPagesPerPage = pageSize / _hostPageSize;
        CopySource = guestRam;
        _logger = logger;
        _pagemap = new Pagemap(qemuPid, regionCapacity: 1);
        _entries = new ulong[(int)Math.Min(EntriesPerRead, _hostPages)];
    }

    public string Name => "soft-dirty";

    /// <summary>Reading and clearing the bits are two steps: exact only while the guest is stopped.</summary>
    public bool HarvestExactWhileRunning => false;

    public MappedMemory CopySource { get; }

    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ClearRefs.ClearSoftDirty(_qemuPid);
        _started = true;
        TrackingLog.SoftDirtyArmed(_logger, _qemuPid);
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
        for (long hostPage = 0; hostPage < _hostPages; hostPage += _entries.Length)
        {
            var count = (int)Math.Min(_entries.Length, _hostPages - hostPage);
            var entries = _entries.AsSpan(0, count);
            _pagemap.ReadEntries(_ramStart + (ulong)(hostPage * _hostPageSize), _hostPageSize, entries);
            SoftDirtyEntries.AddDirtyRuns(entries, hostPage, _hostPagesPerPage, runs);
        }

        ClearRefs.ClearSoftDirty(_qemuPid);
        if (_logger.IsEnabled(LogLevel.Trace))
        {
            TrackingLog.SoftDirtyHarvested(_logger, runs.PageCount - before, runs.RangeCount, clock.Elapsed.TotalMilliseconds);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        // Soft-dirty bits cost QEMU nothing once nobody reads them; nothing to undo.
        _disposed = true;
        _pagemap.Dispose();
    }
}
