using System.Net.Sockets;
using McGrpc.Shared.Native;

namespace McGrpc.Primary.Output;

/// <summary>
/// A connected pair of unix stream sockets, one end for this process and one
/// to hand to QEMU with getfd. Made with a listener in a fresh 0700 temp
/// directory (removed at once), and checked with SO_PEERCRED, because .NET
/// has no socketpair(2): no path is left behind and no other process can
/// have taken the place of our own connection.
/// </summary>
internal static class UnixSocketPair
{
    public static (Socket Ours, Socket Theirs) Create()
    {
        var directory = Directory.CreateTempSubdirectory("mcgrpc-pair-");
        Socket? ours = null;
        var theirs = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            var endPoint = new UnixDomainSocketEndPoint(Path.Combine(directory.FullName, "s"));
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(endPoint);
            listener.Listen(1);
            theirs.Connect(endPoint);
            ours = listener.Accept();
            var peer = SocketCredentials.GetPeer(ours.SafeHandle);
            if (peer.Pid != Environment.ProcessId)
            {
                throw new UserspaceOutputBufferException($"A socket pair in {directory.FullName} was connected by process {peer.Pid}, not by mc-primary.");
            }

            return (ours, theirs);
        }
        catch
        {
            ours?.Dispose();
            theirs.Dispose();
            throw;
        }
        finally
        {
            directory.Delete(recursive: true);
        }
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
