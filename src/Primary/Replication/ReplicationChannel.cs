using System.Net.Http;
using Grpc.Net.Client;
using McGrpc.Shared.Frames;
using McGrpc.Shared.Hosting;
using Microsoft.Extensions.Logging;

namespace McGrpc.Primary.Replication;

/// <summary>
/// The gRPC channel to the backup. With TLS (the default) the primary presents
/// its certificate and accepts only a backup whose certificate chains to the
/// configured CA and names the target host (or --tls-peer-name).
/// </summary>
internal static class ReplicationChannel
{
    public static GrpcChannel Create(ReplicationTarget target, TlsSettings tls, ILogger logger)
    {
        HttpMessageHandler handler;
        if (!target.Resolve(tls.ReplicationTls, out var address, out var error))
        {
            // A Migrate call with a target that contradicts the transport must
            // not crash the daemon: every connection attempt fails with the
            // reason, which status and the log show while it retries.
            handler = new RefusingHttpHandler(error);
        }
        else
        {
            var sockets = new SocketsHttpHandler
            {
                ConnectTimeout = TimeSpan.FromSeconds(5),
                KeepAlivePingDelay = TimeSpan.FromSeconds(1),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(2),
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
                EnableMultipleHttp2Connections = false,
                InitialHttp2StreamWindowSize = 8 * 1024 * 1024,
            };
            if (tls.ReplicationTls)
            {
                sockets.SslOptions = tls.ClientOptions(target.ToString(), tls.PeerName ?? target.Host, logger);
            }

            handler = sockets;
        }

        return GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxSendMessageSize = 2 * FrameLimits.MaxFrameBytes,
            MaxReceiveMessageSize = 2 * FrameLimits.MaxFrameBytes,
        });
    }
}
