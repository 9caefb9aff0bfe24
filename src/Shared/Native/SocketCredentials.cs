using System.Runtime.InteropServices;
using Tmds.Linux;

namespace McGrpc.Shared.Native;

/// <summary>SO_PEERCRED on connected unix sockets.</summary>
internal static unsafe class SocketCredentials
{
    /// <summary>
    /// Who is at the other end of <paramref name="socket"/>. The kernel records the credentials
    /// when the peer called connect() or listen(), so for a client socket this is the server
    /// process (QEMU) even if the socket path was created by someone else.
    /// </summary>
    public static PeerCredentials GetPeer(SafeHandle socket)
    {
        var added = false;
        socket.DangerousAddRef(ref added);
        try
        {
            ucred credentials = default;
            socklen_t length = SizeOf.ucred;
            Errors.Check(
                LibC.getsockopt((int)socket.DangerousGetHandle(), LibC.SOL_SOCKET, LibC.SO_PEERCRED, &credentials, &length),
                "getsockopt",
                "SO_PEERCRED");
            return new PeerCredentials(credentials.pid, credentials.uid, credentials.gid);
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }
}
