using McGrpc.Shared.Native.Netlink;

namespace McGrpc.Tests.Output;

/// <summary>
/// sch_plug's queue logic transcribed from net/sched/sch_plug.c (plug_enqueue,
/// plug_dequeue, plug_init, plug_change), without the byte limit. Each packet
/// carries a label so tests can see which packets left and when.
/// </summary>
internal sealed class KernelPlugModel
{
    private readonly Queue<long> _queue = new();
    private int _pktsCurrentEpoch;
    private int _pktsLastEpoch;
    private int _pktsToRelease;
    private bool _throttled = true; // plug_init: a new plug buffers
    private bool _unplugIndefinite;

    public List<long> Sent { get; } = [];

    public int QueueLength => _queue.Count;

    public IEnumerable<long> Queued => _queue;

    public void Enqueue(long label)
    {
        if (!_unplugIndefinite)
        {
            _pktsCurrentEpoch++;
        }

        _queue.Enqueue(label);
    }

    /// <summary>What qdisc_run does whenever the queue is scheduled: dequeue until plug_dequeue says no.</summary>
    public void Drain()
    {
        while (_queue.Count > 0)
        {
            if (_throttled)
            {
                return;
            }

            if (!_unplugIndefinite)
            {
                if (_pktsToRelease == 0)
                {
                    _throttled = true;
                    return;
                }

                _pktsToRelease--;
            }

            Sent.Add(_queue.Dequeue());
        }
    }

    public void Apply(PlugAction action)
    {
        switch (action)
        {
            case PlugAction.Buffer:
                _pktsLastEpoch = _pktsCurrentEpoch;
                _pktsCurrentEpoch = 0;
                if (_unplugIndefinite)
                {
                    _throttled = true;
                }

                _unplugIndefinite = false;
                break;
            case PlugAction.ReleaseOne:
                _pktsToRelease += _pktsLastEpoch;
                _pktsLastEpoch = 0;
                _throttled = false;
                break;
            case PlugAction.ReleaseIndefinite:
                _unplugIndefinite = true;
                _pktsToRelease = 0;
                _pktsLastEpoch = 0;
                _pktsCurrentEpoch = 0;
                _throttled = false;
                break;
            case PlugAction.Limit:
                break;
        }
    }
}
