using System.Runtime.ExceptionServices;
using System.Text;
using Tmds.Linux;

namespace McGrpc.Shared.Native.Netlink;

/// <summary>
/// A handle on a network namespace. setns(CLONE_NEWNET) changes only the
/// calling thread, and a netlink socket belongs for good to the namespace it
/// was created in, so code that needs to talk to another namespace opens its
/// socket inside <see cref="Run{T}"/> (a dedicated thread that enters the
/// namespace and leaves again) and then uses it from any thread.
/// </summary>
internal sealed unsafe class NetworkNamespace : IDisposable
{
    private const string NamedNamespaceDirectory = "/var/run/netns";
    private const string ThreadNamespacePath = "/proc/thread-self/ns/net";

    private readonly FileDescriptor _fd;

    private NetworkNamespace(FileDescriptor fd, string description)
    {
        _fd = fd;
        Description = description;
    }

    /// <summary>The path it was opened from, or "anonymous".</summary>
    public string Description { get; }

    /// <summary>
    /// A path that opens this same namespace for as long as this handle is
    /// open (/proc/PID/fd/N), for options that name a namespace by path.
    /// </summary>
    public string ProcPath => $"/proc/{Environment.ProcessId}/fd/{_fd.Fd}";

    /// <summary>
    /// Opens a namespace by name (as <c>ip netns add NAME</c> creates it under
    /// /var/run/netns) or by path (/proc/PID/ns/net, a bind mount).
    /// </summary>
    public static NetworkNamespace Open(string nameOrPath)
    {
        var path = nameOrPath.Contains('/') ? nameOrPath : Path.Combine(NamedNamespaceDirectory, nameOrPath);
        return new NetworkNamespace(OpenReadOnly(path), path);
    }

    /// <summary>
    /// A new, empty namespace (only a down loopback) that nothing else can
    /// see. The kernel destroys it, with every interface in it, when this
    /// handle and every socket opened in it are closed, even if the process
    /// dies first: this is what makes tests that create interfaces clean.
    /// </summary>
    public static NetworkNamespace CreateAnonymous()
    {
        return OnDedicatedThread(() =>
        {
            using var original = OpenReadOnly(ThreadNamespacePath);
            Errors.Check(LibC.unshare(LibC.CLONE_NEWNET), "unshare", "CLONE_NEWNET");
            try
            {
                return new NetworkNamespace(OpenReadOnly(ThreadNamespacePath), "anonymous");
            }
            finally
            {
                // The thread ends right after; going back is hygiene, not correctness.
                LibC.setns(original.Fd, LibC.CLONE_NEWNET);
            }
        });
    }

    /// <summary>Runs <paramref name="action"/> on a fresh thread that has entered this namespace.</summary>
    public T Run<T>(Func<T> action)
    {
        return OnDedicatedThread(() =>
        {
            using var original = OpenReadOnly(ThreadNamespacePath);
            var added = false;
            _fd.DangerousAddRef(ref added);
            try
            {
                Errors.Check(LibC.setns(_fd.Fd, LibC.CLONE_NEWNET), "setns", Description);
            }
            finally
            {
                if (added)
                {
                    _fd.DangerousRelease();
                }
            }

            try
            {
                return action();
            }
            finally
            {
                LibC.setns(original.Fd, LibC.CLONE_NEWNET);
            }
        });
    }

    public void Dispose() => _fd.Dispose();

    private static FileDescriptor OpenReadOnly(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* pointer = bytes)
        {
            var address = (IntPtr)pointer;
            return new FileDescriptor((int)Errors.Retry(() => LibC.open((byte*)address, LibC.O_RDONLY | LibC.O_CLOEXEC, 0), "open", path));
        }
    }

    private static T OnDedicatedThread<T>(Func<T> action)
    {
        // Never a pool thread: a pool thread left in the wrong namespace would
        // silently move unrelated work there.
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = action();
            }
            catch (Exception exception)
            {
                failure = ExceptionDispatchInfo.Capture(exception);
            }
        })
        {
            IsBackground = true,
            Name = "netns",
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }
}
