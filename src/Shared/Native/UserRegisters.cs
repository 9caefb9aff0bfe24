using System.Runtime.InteropServices;

namespace McGrpc.Shared.Native;

/// <summary>x86_64 <c>struct user_regs_struct</c> as PTRACE_GETREGS/SETREGS exchange it (27 u64).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UserRegisters
{
    public ulong R15;
    public ulong R14;
    public ulong R13;
    public ulong R12;
    public ulong Rbp;
    public ulong Rbx;
    public ulong R11;
    public ulong R10;
    public ulong R9;
    public ulong R8;
    public ulong Rax;
    public ulong Rcx;
    public ulong Rdx;
    public ulong Rsi;
    public ulong Rdi;
    public ulong OrigRax;
    public ulong Rip;
    public ulong Cs;
    public ulong Eflags;
    public ulong Rsp;
    public ulong Ss;
    public ulong FsBase;
    public ulong GsBase;
    public ulong Ds;
    public ulong Es;
    public ulong Fs;
    public ulong Gs;
}
