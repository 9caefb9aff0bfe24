using System.Diagnostics;
using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary>
/// The ptrace requests that syscall injection needs, on one thread id.
/// </summary>
/// <remarks>
/// The kernel binds a tracee to the tracing *thread*, not process: every call
/// for one tracee must come from the OS thread that seized it.
/// </remarks>
internal static unsafe class Ptrace
{
    private const long PeekText = 1;
    private const long Cont = 7;
    private const long SingleStepRequest = 9;
    private const long GetRegs = 12;
    private const long SetRegs = 13;
    private const long DetachRequest = 17;
    private const long GetSigInfoRequest = 0x4202;
    private const long SeizeRequest = 0x4206;
    private const long InterruptRequest = 0x4207;

    private const int Wall = 0x40000000;
    private const int Wnohang = 1;

    public static void Seize(int tid) => Call(SeizeRequest, tid, 0, 0, "ptrace(PTRACE_SEIZE)");

    public static void Interrupt(int tid) => Call(InterruptRequest, tid, 0, 0, "ptrace(PTRACE_INTERRUPT)");

    public static UserRegisters GetRegisters(int tid)
    {
        UserRegisters registers;
        Call(GetRegs, tid, 0, (long)&registers, "ptrace(PTRACE_GETREGS)");
        return registers;
    }

    public static void SetRegisters(int tid, in UserRegisters registers)
    {
        fixed (UserRegisters* pointer = &registers)
        {
            Call(SetRegs, tid, 0, (long)pointer, "ptrace(PTRACE_SETREGS)");
        }
    }

    /// <summary>Reads one 8-byte word of the tracee's memory.</summary>
    public static ulong PeekWord(int tid, ulong address)
    {
        // The raw syscall stores the word through the data pointer (only the
        // glibc wrapper returns it).
        ulong word;
        Call(PeekText, tid, (long)address, (long)&word, "ptrace(PTRACE_PEEKTEXT)");
        return word;
    }

    /// <summary>
    /// PTRACE_GETSIGINFO of a stopped tracee: the signal and si_code of its stop
    /// (for a ptrace event stop si_code is <c>event &lt;&lt; 8 | SIGTRAP</c>); null when
    /// the thread is not in a stop that has one (a group stop, or running).
    /// </summary>
    public static (int Signal, int Code)? GetSignalInfo(int tid)
    {
        // siginfo_t is 128 bytes; si_signo and si_code are its first and third int.
        var info = stackalloc int[32];
        var result = LinuxSyscall.Invoke(LinuxSyscall.Ptrace, GetSigInfoRequest, tid, 0, (long)info);
        return result == -1 ? null : (info[0], info[2]);
    }

    /// <summary>Resumes for one instruction; <paramref name="signal"/> is delivered first when not 0.</summary>
    public static void SingleStep(int tid, int signal = 0) => Call(SingleStepRequest, tid, 0, signal, "ptrace(PTRACE_SINGLESTEP)");

    public static void Continue(int tid, int signal = 0) => Call(Cont, tid, 0, signal, "ptrace(PTRACE_CONT)");

    /// <summary>Detaches a stopped tracee; from a signal-delivery stop, <paramref name="signal"/> is delivered.</summary>
    public static void Detach(int tid, int signal = 0) => Call(DetachRequest, tid, 0, signal, "ptrace(PTRACE_DETACH)");

    /// <summary>
    /// Waits for the next state change of <paramref name="tid"/>; null when none came within <paramref name="timeout"/>.
    /// </summary>
    /// <remarks>
    /// Polls with WNOHANG: a blocking wait cannot be given a deadline, and a
    /// thread in uninterruptible sleep may take long to reach its stop.
    /// </remarks>
    public static WaitStatus? Wait(int tid, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        var pause = 0;
        while (true)
        {
            int status;
            var result = LinuxSyscall.Invoke(LinuxSyscall.Wait4, tid, (long)&status, Wall | Wnohang, 0);
            if (result == -1)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Errors.EINTR)
                {
                    continue;
                }

                throw new NativeException("wait4", errno, $"thread {tid}");
            }

            if (result == tid)
            {
                return new WaitStatus(status);
            }

            if (clock.Elapsed >= timeout)
            {
                return null;
            }

            // Stops normally arrive within microseconds; back off to 1 ms only for slow ones.
            if (pause < 50)
            {
                pause++;
                Thread.Yield();
            }
            else
            {
                Thread.Sleep(1);
            }
        }
    }

    private static void Call(long request, int tid, long address, long data, string call)
    {
        while (true)
        {
            var result = LinuxSyscall.Invoke(LinuxSyscall.Ptrace, request, tid, address, data);
            if (result != -1)
            {
                return;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errors.EINTR)
            {
                throw new NativeException(call, errno, $"thread {tid}");
            }
        }
    }
}
