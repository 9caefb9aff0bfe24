using System.Diagnostics;

namespace McGrpc.Shared.Native;

/// <summary>
/// One thread of another process, seized and stopped by the calling OS thread,
/// that can be made to execute system calls through its own <c>syscall</c>
/// instruction. Dispose restores its registers and detaches.
/// </summary>
/// <remarks>
/// Only a thread stopped inside a system call is used: then the two bytes
/// before RIP are certainly the <c>syscall</c> instruction it entered the
/// kernel with, so no code byte has to be written and other threads of the
/// process never see a change. The interrupted call is restarted by the
/// kernel on detach exactly as after any ptrace stop, because the saved
/// registers (RAX = -ERESTART*, ORIG_RAX = call number) are put back.
/// </remarks>
internal sealed class TracedThread : IDisposable
{
    private const int Sigtrap = 5;
    private const int Sigstop = 19;
    private const long Tgkill = 234;
    private const int MaxStepStops = 16;

    private readonly int _processId;
    private readonly TimeSpan _timeout;
    private readonly UserRegisters _saved;
    private readonly ulong _syscallAddress;
    private readonly List<int> _interceptedSignals;
    private bool _disposed;

    private TracedThread(int processId, int threadId, TimeSpan timeout, UserRegisters saved, ulong syscallAddress, List<int> signals)
    {
        _processId = processId;
        ThreadId = threadId;
        _timeout = timeout;
        _saved = saved;
        _syscallAddress = syscallAddress;
        _interceptedSignals = signals;
    }

    public int ThreadId { get; }

    /// <summary>
    /// Seizes and stops thread <paramref name="threadId"/>. Returns null with
    /// <paramref name="notUsable"/> when the thread is gone or not inside a system
    /// call (it was detached again, untouched); throws when it cannot be stopped at all.
    /// </summary>
    public static TracedThread? TryAttach(int processId, int threadId, TimeSpan timeout, out string notUsable)
    {
        notUsable = string.Empty;
        try
        {
            Ptrace.Seize(threadId);
        }
        catch (NativeException e) when (e.Errno == Errors.ESRCH)
        {
            notUsable = $"thread {threadId} exited";
            return null;
        }
        catch (NativeException e) when (e.Errno == Errors.EPERM)
        {
            throw new SyscallInjectionException($"Cannot trace process {processId}: {e.Message}. Is it already traced (TracerPid in /proc/{processId}/status), or is this daemon missing CAP_SYS_PTRACE?", e);
        }

        var signals = new List<int>();
        var detached = false;
        try
        {
            Ptrace.Interrupt(threadId);
            var status = WaitForStop(processId, threadId, timeout, "PTRACE_INTERRUPT");
            if (!status.Stopped)
            {
                detached = true;
                notUsable = $"thread {threadId} {status}";
                return null;
            }

            if (status.Event == WaitStatus.PtraceEventStop && status.StopSignal != Sigtrap)
            {
                // A group stop: the whole process is stopped by job control
                // (SIGSTOP, SIGTSTP). Injecting would work, but the process must
                // stay as its owner left it, and nothing it does now needs tracking.
                throw new SyscallInjectionException($"Process {processId} is stopped by signal {status.StopSignal} (job control); not injecting into a stopped process.");
            }

            if (status.IsSignalDeliveryStop)
            {
                // A signal reached the thread before our interrupt did; it is
                // handed back after detaching.
                signals.Add(status.StopSignal);
            }

            var registers = Ptrace.GetRegisters(threadId);
            if ((long)registers.OrigRax < 0)
            {
                Release(processId, threadId, registers, signals);
                detached = true;
                notUsable = $"thread {threadId} was running user code, not inside a system call";
                return null;
            }

            var syscallAddress = registers.Rip - 2;
            ulong word;
            try
            {
                word = Ptrace.PeekWord(threadId, syscallAddress);
            }
            catch (NativeException e)
            {
                Release(processId, threadId, registers, signals);
                detached = true;
                notUsable = $"thread {threadId}: cannot read the code before RIP 0x{registers.Rip:x}: {e.Message}";
                return null;
            }

            if ((word & 0xffff) != 0x050f)
            {
                Release(processId, threadId, registers, signals);
                detached = true;
                notUsable = $"thread {threadId}: the bytes before RIP 0x{registers.Rip:x} are {word & 0xff:x2} {(word >> 8) & 0xff:x2}, not a syscall instruction (0f 05)";
                return null;
            }

            detached = true;
            return new TracedThread(processId, threadId, timeout, registers, syscallAddress, signals);
        }
        catch when (!detached)
        {
            // Nothing was changed yet; if even detaching fails the tracer
            // thread's exit makes the kernel detach.
            try
            {
                Ptrace.Detach(threadId);
            }
            catch (NativeException)
            {
            }

            throw;
        }
    }

    /// <summary>
    /// Executes system call <paramref name="number"/> in the thread and returns
    /// its raw result (a negative errno on failure).
    /// </summary>
    public long Syscall(long number, long arg1 = 0, long arg2 = 0, long arg3 = 0)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var registers = _saved;
        registers.Rip = _syscallAddress;
        registers.Rax = (ulong)number;
        registers.Rdi = (ulong)arg1;
        registers.Rsi = (ulong)arg2;
        registers.Rdx = (ulong)arg3;
        // ORIG_RAX = -1 tells the kernel this is not an interrupted call, so
        // it does not apply restart logic when the thread resumes.
        registers.OrigRax = ulong.MaxValue;
        Ptrace.SetRegisters(ThreadId, registers);

        for (var stops = 0; stops < MaxStepStops; stops++)
        {
            Ptrace.SingleStep(ThreadId);
            var status = WaitForStop(_processId, ThreadId, _timeout, "PTRACE_SINGLESTEP");
            if (!status.Stopped)
            {
                throw new SyscallInjectionException($"Thread {ThreadId} of process {_processId} {status} while executing system call {number}.");
            }

            var now = Ptrace.GetRegisters(ThreadId);
            var executed = now.Rip == _syscallAddress + 2;
            if (status.IsSignalDeliveryStop && status.StopSignal == Sigtrap && executed)
            {
                // The single-step trap: the SIGTRAP is ours and is dropped by not passing it on.
                return (long)now.Rax;
            }

            if (now.Rip != _syscallAddress && !executed)
            {
                throw new SyscallInjectionException($"Thread {ThreadId} of process {_processId} stopped at unexpected RIP 0x{now.Rip:x} ({status}) while executing system call {number} at 0x{_syscallAddress:x}.");
            }

            // Another stop came first: a signal (kept for later and stepped
            // past without delivering it) or the pending interrupt trap. The
            // kernel reports pending traps and synchronous signals such as our
            // SIGTRAP before returning to user mode, so stepping again never
            // runs a second instruction once the syscall has executed.
            if (status.IsSignalDeliveryStop)
            {
                _interceptedSignals.Add(status.StopSignal);
            }
        }

        throw new SyscallInjectionException($"Thread {ThreadId} of process {_processId} did not finish system call {number} after {MaxStepStops} stops.");
    }

    /// <summary>Restores the registers, detaches and hands back any signal that arrived meanwhile.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Release(_processId, ThreadId, _saved, _interceptedSignals);
    }

    private static void Release(int processId, int threadId, in UserRegisters saved, List<int> signals)
    {
        try
        {
            Ptrace.SetRegisters(threadId, saved);
        }
        catch (NativeException e) when (e.Errno == Errors.ESRCH)
        {
            // The thread is not in a stop (a step that never reported): stop it
            // again so that it gets its registers back before it runs on.
            Ptrace.Interrupt(threadId);
            WaitForStop(processId, threadId, TimeSpan.FromSeconds(5), "PTRACE_INTERRUPT (to restore registers)");
            Ptrace.SetRegisters(threadId, saved);
        }

        Ptrace.Detach(threadId);
        foreach (var signal in signals.Distinct())
        {
            // Re-sent rather than passed to PTRACE_DETACH, which only delivers
            // from a signal-delivery stop; QEMU's handlers (SIG_IPI, SIGALRM)
            // do not look at the sender.
            if (signal != Sigstop)
            {
                LinuxSyscall.Invoke(Tgkill, processId, threadId, signal);
            }
        }
    }

    /// <summary>
    /// Waits for the thread's next ptrace stop. Another thread of this process
    /// may take the notification first: wait4(pid) by the .NET runtime reaping
    /// a child it started (QEMU may be one) also collects the ptrace stops of
    /// the thread whose id is that pid. The stop itself stays, so a thread seen
    /// in tracing stop with nothing left to collect is read with PTRACE_GETSIGINFO.
    /// </summary>
    private static WaitStatus WaitForStop(int processId, int threadId, TimeSpan timeout, string after)
    {
        var clock = Stopwatch.StartNew();
        var slice = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            var status = Ptrace.Wait(threadId, slice);
            if (status is not null)
            {
                return status.Value;
            }

            // Checked in this order: once the state is tracing stop the
            // notification is collectable, so an empty wait after it means it was taken.
            if (IsInTracingStop(processId, threadId))
            {
                status = Ptrace.Wait(threadId, TimeSpan.Zero);
                if (status is not null)
                {
                    return status.Value;
                }

                if (Ptrace.GetSignalInfo(threadId) is { } info)
                {
                    var ptraceEvent = info.Code > 0 && (info.Code & 0xff) == Sigtrap ? info.Code >> 8 : 0;
                    return new WaitStatus((ptraceEvent << 16) | (info.Signal << 8) | 0x7f);
                }
            }

            if (clock.Elapsed >= timeout)
            {
                throw new SyscallInjectionException($"Thread {threadId} of process {processId} did not stop within {timeout.TotalMilliseconds:F0} ms after {after}.");
            }
        }
    }

    private static bool IsInTracingStop(int processId, int threadId)
    {
        try
        {
            // "tid (comm) S ...": comm may contain spaces and parentheses; the state follows the last ')'.
            var stat = File.ReadAllText($"/proc/{processId}/task/{threadId}/stat");
            var end = stat.LastIndexOf(')');
            return end >= 0 && end + 2 < stat.Length && stat[end + 2] == 't';
        }
        catch (IOException)
        {
            return false;
        }
    }
}
