namespace McGrpc.Shared.Native;

/// <summary>A userfaultfd of another process's address space, now held only by this process.</summary>
/// <param name="Userfaultfd">Our copy; the target's copy is already closed.</param>
/// <param name="ThreadId">The target thread whose syscall instruction was borrowed.</param>
/// <param name="SkippedThreads">Threads tried first and why they were not used.</param>
internal sealed record UserfaultfdInjection(Userfaultfd Userfaultfd, int ThreadId, IReadOnlyList<string> SkippedThreads);
