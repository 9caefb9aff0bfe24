using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary>
/// Creates a userfaultfd inside another process (QEMU) without changing its
/// code: a thread of it that is blocked in a system call is stopped, made to
/// execute userfaultfd() through its own <c>syscall</c> instruction, the new
/// descriptor is copied here with pidfd_getfd, and the target's copy is closed
/// the same way before the thread resumes. Because the target holds no copy,
/// tracking ends when this process ends, however it ends.
/// </summary>
/// <remarks>
/// All-or-nothing: on every failure the borrowed thread gets its registers
/// back and is detached before <see cref="SyscallInjectionException"/> is thrown.
/// </remarks>
internal static class UserfaultfdInjector
{
    private const int Rounds = 3;
    private static readonly TimeSpan OverallTimeout = TimeSpan.FromSeconds(30);

    /// <param name="processId">The target process.</param>
    /// <param name="stopTimeout">How long one thread may take to stop after PTRACE_INTERRUPT or a single step.</param>
    public static UserfaultfdInjection Inject(int processId, TimeSpan stopTimeout)
    {
        CheckSeccomp(processId);

        UserfaultfdInjection? result = null;
        ExceptionDispatchInfo? error = null;
        // ptrace binds the tracee to the OS thread that seized it: every call
        // of one injection runs here, never on pool threads that async code could hop between.
        // When this thread ends the kernel also detaches anything it still traces.
        var tracer = new Thread(() =>
        {
            try
            {
                result = InjectOnThisThread(processId, stopTimeout);
            }
            catch (Exception e)
            {
                error = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = $"uffd-inject-{processId}",
        };
        tracer.Start();
        if (!tracer.Join(OverallTimeout))
        {
            throw new SyscallInjectionException($"Injecting userfaultfd into process {processId} did not finish within {OverallTimeout.TotalSeconds:F0} s.");
        }

        if (error is not null)
        {
            if (error.SourceException is SyscallInjectionException)
            {
                error.Throw();
            }

            throw new SyscallInjectionException($"Injecting userfaultfd into process {processId} failed: {error.SourceException.Message}", error.SourceException);
        }

        return result!;
    }

    /// <summary>Threads of <paramref name="processId"/>, those blocked in a system call first.</summary>
    internal static IReadOnlyList<int> CandidateThreads(int processId)
    {
        var inSyscall = new List<int>();
        var others = new List<int>();
        foreach (var directory in Directory.EnumerateDirectories($"/proc/{processId}/task"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var threadId))
            {
                continue;
            }

            string state;
            try
            {
                state = File.ReadAllText(Path.Combine(directory, "syscall"));
            }
            catch (IOException)
            {
                continue; // the thread exited meanwhile
            }

            // "<nr> <args...> <sp> <pc>" while blocked in a call, "-1 <sp> <pc>" when
            // blocked elsewhere, "running" when on a CPU.
            var first = state.Split(' ', 2)[0].Trim();
            if (int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                inSyscall.Add(threadId);
            }
            else
            {
                others.Add(threadId);
            }
        }

        inSyscall.Sort();
        others.Sort();
        var ordered = new List<int>([.. inSyscall, .. others]);
        if (IsChildOfThisProcess(processId))
        {
            // The .NET runtime reaps the children it started with wait4(pid),
            // which also collects the ptrace stops of the thread whose id is
            // pid, and then takes the process for exited. Never stop that thread
            // of a child: System.Diagnostics.Process would lose track of it.
            ordered.Remove(processId);
        }

        return ordered;
    }

    private static UserfaultfdInjection InjectOnThisThread(int processId, TimeSpan stopTimeout)
    {
        var pidfd = LinuxSyscall.Invoke(LinuxSyscall.PidfdOpen, processId, 0);
        if (pidfd == -1)
        {
            throw new NativeException("pidfd_open", Marshal.GetLastPInvokeError(), $"process {processId}");
        }

        using var processHandle = new FileDescriptor((int)pidfd);
        var skipped = new List<string>();
        for (var round = 0; round < Rounds; round++)
        {
            foreach (var threadId in CandidateThreads(processId))
            {
                using var thread = TracedThread.TryAttach(processId, threadId, stopTimeout, out var notUsable);
                if (thread is null)
                {
                    skipped.Add(notUsable);
                    continue;
                }

                var userfaultfd = Borrow(processId, processHandle, thread);
                return new UserfaultfdInjection(userfaultfd, threadId, skipped);
            }
        }

        throw new SyscallInjectionException($"No thread of process {processId} could be stopped inside a system call in {Rounds} rounds: {string.Join("; ", skipped.Take(12))}.");
    }

    private static Userfaultfd Borrow(int processId, FileDescriptor processHandle, TracedThread thread)
    {
        var remoteFd = thread.Syscall(LinuxSyscall.Userfaultfd, Userfaultfd.CreateFlags);
        if (remoteFd == -Errors.EPERM)
        {
            // vm.unprivileged_userfaultfd = 0 and the target lacks CAP_SYS_PTRACE.
            remoteFd = thread.Syscall(LinuxSyscall.Userfaultfd, Userfaultfd.CreateFlags | Userfaultfd.UserModeOnly);
        }

        if (remoteFd < 0)
        {
            throw new SyscallInjectionException($"userfaultfd() inside process {processId} failed: {Errors.Name((int)-remoteFd)} ({Errors.Describe((int)-remoteFd)}).");
        }

        FileDescriptor? ours = null;
        Exception? copyError = null;
        var copied = LinuxSyscall.Invoke(LinuxSyscall.PidfdGetfd, processHandle.Fd, remoteFd, 0);
        if (copied == -1)
        {
            copyError = new NativeException("pidfd_getfd", Marshal.GetLastPInvokeError(), $"fd {remoteFd} of process {processId}");
        }
        else
        {
            ours = new FileDescriptor((int)copied);
        }

        // Close the target's copy whatever happened, so that it never keeps a
        // userfaultfd alive after this process is gone.
        var closed = thread.Syscall(LinuxSyscall.Close, remoteFd);
        if (closed != 0)
        {
            ours?.Dispose();
            throw new SyscallInjectionException($"close({remoteFd}) inside process {processId} failed with {Errors.Name((int)-closed)}; it keeps an idle userfaultfd that nothing was registered on.", copyError);
        }

        if (copyError is not null)
        {
            throw new SyscallInjectionException($"Copying the injected userfaultfd out of process {processId} failed: {copyError.Message}", copyError);
        }

        return Userfaultfd.Adopt(ours!);
    }

    private static bool IsChildOfThisProcess(int processId)
    {
        try
        {
            var line = File.ReadLines($"/proc/{processId}/status").FirstOrDefault(l => l.StartsWith("PPid:", StringComparison.Ordinal));
            return line is not null && int.TryParse(line[5..].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var parent) && parent == Environment.ProcessId;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static void CheckSeccomp(int processId)
    {
        string status;
        try
        {
            status = File.ReadAllText($"/proc/{processId}/status");
        }
        catch (IOException e)
        {
            throw new SyscallInjectionException($"Process {processId} is not readable: {e.Message}", e);
        }

        foreach (var line in status.Split('\n'))
        {
            if (line.StartsWith("Seccomp:", StringComparison.Ordinal) && line[8..].Trim() != "0")
            {
                // A filter (QEMU -sandbox on) decides per call; one that denies
                // userfaultfd may kill the whole process instead of returning an error.
                throw new SyscallInjectionException($"Process {processId} runs under seccomp (mode {line[8..].Trim()}, e.g. QEMU -sandbox on); injecting a system call could make the filter kill it.");
            }
        }
    }
}
