using McGrpc.Shared.Native;

namespace McGrpc.Tests.Tracking;

/// <summary>
/// Stands in for a debugger: seizes every thread of a process (without stopping
/// them) on its own OS thread and passes any signal straight on, until disposed.
/// </summary>
internal sealed class OtherTracer : IDisposable
{
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _seized = new();
    private volatile bool _stop;
    private Exception? _error;

    private OtherTracer(int processId)
    {
        _thread = new Thread(() => Run(processId)) { IsBackground = true, Name = "other-tracer" };
    }

    public static OtherTracer Seize(int processId)
    {
        var tracer = new OtherTracer(processId);
        tracer._thread.Start();
        if (!tracer._seized.Wait(TimeSpan.FromSeconds(10)) || tracer._error is not null)
        {
            tracer.Dispose();
            throw new InvalidOperationException("Could not seize the process.", tracer._error);
        }

        return tracer;
    }

    /// <summary>Ends the tracer thread; the kernel detaches every tracee with it.</summary>
    public void Dispose()
    {
        _stop = true;
        _thread.Join(TimeSpan.FromSeconds(10));
        _seized.Dispose();
    }

    private void Run(int processId)
    {
        var threads = new List<int>();
        try
        {
            foreach (var threadId in UserfaultfdInjector.CandidateThreads(processId))
            {
                Ptrace.Seize(threadId);
                threads.Add(threadId);
            }
        }
        catch (Exception e)
        {
            _error = e;
        }

        _seized.Set();
        while (!_stop)
        {
            foreach (var threadId in threads)
            {
                var status = Ptrace.Wait(threadId, TimeSpan.Zero);
                if (status is { Stopped: true })
                {
                    Ptrace.Continue(threadId, status.Value.IsSignalDeliveryStop ? status.Value.StopSignal : 0);
                }
            }

            Thread.Sleep(1);
        }
    }
}
