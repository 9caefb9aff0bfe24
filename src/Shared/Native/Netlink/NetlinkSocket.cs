using System.Runtime.InteropServices;
using Tmds.Linux;

namespace McGrpc.Shared.Native.Netlink;

/// <summary>
/// A bound AF_NETLINK datagram socket. Receives have a timeout so that a
/// request the kernel never answers fails instead of hanging the epoch loop.
/// The network namespace is the one of the thread that opened it, for the
/// socket's whole life (see <see cref="NetworkNamespace"/>).
/// </summary>
internal sealed unsafe class NetlinkSocket : IDisposable
{
    private readonly FileDescriptor _fd;

    private NetlinkSocket(FileDescriptor fd, uint portId)
    {
        _fd = fd;
        PortId = portId;
    }

    /// <summary>The port id the kernel assigned at bind time (nl_pid).</summary>
    public uint PortId { get; }

    public static NetlinkSocket Open(int protocol, TimeSpan receiveTimeout)
    {
        var fd = new FileDescriptor(Errors.Check(
            LibC.socket(LibC.AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, protocol),
            "socket",
            "AF_NETLINK"));
        try
        {
            var timeout = new Timeval
            {
                Seconds = (nint)(long)receiveTimeout.TotalSeconds,
                Microseconds = (nint)(receiveTimeout.Ticks % TimeSpan.TicksPerSecond / TimeSpan.TicksPerMicrosecond),
            };
            Errors.Check(
                LibC.setsockopt(fd.Fd, LibC.SOL_SOCKET, LibC.SO_RCVTIMEO, &timeout, (socklen_t)sizeof(Timeval)),
                "setsockopt",
                "SO_RCVTIMEO");

            // Both are best effort (older kernels lack them): extended acks carry the
            // kernel's own words ("Specified qdisc kind is unknown"), and capped
            // acks stop it from echoing our whole request back in every error.
            var one = 1;
            LibC.setsockopt(fd.Fd, NetlinkConstants.SolNetlink, NetlinkConstants.NetlinkExtAck, &one, sizeof(int));
            LibC.setsockopt(fd.Fd, NetlinkConstants.SolNetlink, NetlinkConstants.NetlinkCapAck, &one, sizeof(int));

            var address = new SockaddrNl { Family = (ushort)LibC.AF_NETLINK };
            Errors.Check(LibC.bind(fd.Fd, (sockaddr*)&address, (socklen_t)sizeof(SockaddrNl)), "bind", "AF_NETLINK");
            socklen_t length = (socklen_t)sizeof(SockaddrNl);
            Errors.Check(LibC.getsockname(fd.Fd, (sockaddr*)&address, &length), "getsockname", "AF_NETLINK");
            return new NetlinkSocket(fd, address.PortId);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>Sends one request to the kernel (port 0).</summary>
    public void Send(ReadOnlySpan<byte> message, string operation)
    {
        fixed (byte* pointer = message)
        {
            while (true)
            {
                long sent = LibC.send(_fd.Fd, pointer, message.Length, 0);
                if (sent == message.Length)
                {
                    return;
                }

                var errno = sent == -1 ? LibC.errno : 0;
                if (errno == Errors.EINTR)
                {
                    continue;
                }

                throw new NetlinkException(operation, errno, hint: sent == -1 ? "send() to the kernel failed" : $"send() took {sent} of {message.Length} bytes");
            }
        }
    }

    /// <summary>
    /// Receives one datagram into <paramref name="buffer"/> and returns its
    /// length. Throws on timeout, and when the datagram did not fit (MSG_TRUNC
    /// makes recv report the real size), because a cut dump would silently
    /// lose entries.
    /// </summary>
    public int Receive(Span<byte> buffer, string operation, TimeSpan timeout)
    {
        fixed (byte* pointer = buffer)
        {
            while (true)
            {
                long received = LibC.recv(_fd.Fd, pointer, buffer.Length, LibC.MSG_TRUNC);
                if (received >= 0)
                {
                    if (received > buffer.Length)
                    {
                        throw new NetlinkException(operation, 0, hint: $"a {received}-byte reply did not fit the {buffer.Length}-byte receive buffer");
                    }

                    return (int)received;
                }

                var errno = LibC.errno;
                if (errno == Errors.EINTR)
                {
                    continue;
                }

                throw errno == Errors.EAGAIN
                    ? new NetlinkException(operation, errno, hint: $"the kernel did not answer within {timeout.TotalSeconds:0.###} s")
                    : new NetlinkException(operation, errno, hint: "recv() from the kernel failed");
            }
        }
    }

    public void Dispose() => _fd.Dispose();

    [StructLayout(LayoutKind.Sequential)]
    private struct SockaddrNl
    {
        public ushort Family;
        public ushort Padding;
        public uint PortId;
        public uint Groups;
    }

    /// <summary>struct timeval on a 64-bit (LP64) Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Timeval
    {
        public nint Seconds;
        public nint Microseconds;
    }
}
