using System.Net.Sockets;
using McGrpc.Shared.Native;
using Tmds.Linux;

namespace McGrpc.Primary.Output;

/// <summary>
/// A connected pair of unix stream sockets (socketpair(2)), one end for this
/// process and one to hand to QEMU with getfd: no path, nothing another
/// process could connect to.
/// </summary>
internal static class UnixSocketPair
{
    public static unsafe (Socket Ours, Socket Theirs) Create()
    {
        var fds = stackalloc int[2];
        Errors.Check(LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, fds), "socketpair", "AF_UNIX stream");
        return (new Socket(new SafeSocketHandle((IntPtr)fds[0], ownsHandle: true)), new Socket(new SafeSocketHandle((IntPtr)fds[1], ownsHandle: true)));
    }

    /// <summary>
    /// Raises the send buffer of <paramref name="socket"/> to <paramref name="bytes"/>:
    /// SO_SNDBUFFORCE when allowed (CAP_NET_ADMIN), else SO_SNDBUF, which the
    /// kernel caps at net.core.wmem_max. Returns what the kernel granted.
    /// </summary>
    public static int RaiseSendBuffer(Socket socket, int bytes)
    {
        const int SolSocket = 1;
        const int SoSndBufForce = 32;
        try
        {
            socket.SetRawSocketOption(SolSocket, SoSndBufForce, BitConverter.GetBytes(bytes));
        }
        catch (SocketException)
        {
            socket.SendBufferSize = bytes;
        }

        return socket.SendBufferSize;
    }
}
