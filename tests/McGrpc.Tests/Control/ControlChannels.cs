using System.Net.Sockets;
using Grpc.Net.Client;

namespace McGrpc.Tests.Control;

/// <summary>gRPC channels to a control listener, over TCP or a unix socket, with plaintext HTTP/2 as grpcurl -plaintext uses.</summary>
internal static class ControlChannels
{
    public static GrpcChannel Tcp(int port) => GrpcChannel.ForAddress($"http://127.0.0.1:{port}");

    public static GrpcChannel Unix(string path)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };

        // The authority is not used to connect; the handler always dials the socket.
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler });
    }
}
