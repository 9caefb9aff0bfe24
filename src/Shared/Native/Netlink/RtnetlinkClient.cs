using System.Runtime.InteropServices;
using static McGrpc.Shared.Native.Netlink.NetlinkConstants;

namespace McGrpc.Shared.Native.Netlink;

/// <summary>
/// A small rtnetlink (NETLINK_ROUTE) client: links, qdiscs and filters, the
/// part of <c>ip</c> and <c>tc</c> that output buffering needs. One request
/// at a time (callers on several threads are serialised); each request gets a
/// fresh sequence number and waits for its ack or its dump to end, skipping
/// any late answer to an earlier request that timed out.
/// </summary>
internal sealed partial class RtnetlinkClient : IDisposable
{
    /// <summary>How long a request waits for the kernel when the caller does not say.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(2);

    // Dump datagrams are at most 32 KiB (the kernel's cap for a dump skb).
    private const int ReceiveBufferLength = 64 * 1024;

    private readonly Lock _gate = new();
    private readonly NetlinkSocket _socket;
    private readonly TimeSpan _timeout;
    private readonly byte[] _receiveBuffer = new byte[ReceiveBufferLength];
    private uint _sequence;
    private bool _disposed;

    private RtnetlinkClient(NetlinkSocket socket, TimeSpan timeout)
    {
        _socket = socket;
        _timeout = timeout;
        _sequence = (uint)Environment.TickCount;
    }

    /// <summary>A parser for one reply message; returns false to skip it.</summary>
    public delegate bool ReplyParser<T>(in NetlinkMessageHeader header, ReadOnlySpan<byte> payload, out T value);

    /// <summary>
    /// Opens a client in <paramref name="networkNamespace"/>, or in the
    /// namespace of the calling thread when it is null.
    /// </summary>
    public static RtnetlinkClient Open(NetworkNamespace? networkNamespace = null, TimeSpan? timeout = null)
    {
        var wait = timeout ?? DefaultTimeout;
        var socket = networkNamespace is null
            ? NetlinkSocket.Open(NetlinkRoute, wait)
            : networkNamespace.Run(() => NetlinkSocket.Open(NetlinkRoute, wait));
        return new RtnetlinkClient(socket, wait);
    }

    /// <summary>Sends a request built by <paramref name="encode"/> (given the sequence number) and waits for its ack.</summary>
    public void Execute(string operation, Func<uint, byte[]> encode, Func<int, string?>? hint = null)
    {
        Exchange<int>(operation, encode, parse: null, results: null, hint);
    }

    /// <summary>
    /// Sends a request answered by data messages: a dump (ends with
    /// NLMSG_DONE) or a get with NLM_F_ACK (ends with the ack). Parses each.
    /// </summary>
    public List<T> Dump<T>(string operation, Func<uint, byte[]> encode, ReplyParser<T> parse, Func<int, string?>? hint = null)
    {
        var results = new List<T>();
        Exchange(operation, encode, parse, results, hint);
        return results;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _socket.Dispose();
        }
    }

    private void Exchange<T>(string operation, Func<uint, byte[]> encode, ReplyParser<T>? parse, List<T>? results, Func<int, string?>? hint)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var sequence = unchecked(++_sequence);
            _socket.Send(encode(sequence), operation);
            while (true)
            {
                var length = _socket.Receive(_receiveBuffer, operation, _timeout);
                var reader = new NetlinkMessageReader(_receiveBuffer.AsSpan(0, length));
                while (reader.TryRead(out var header, out var payload))
                {
                    if (header.Sequence != sequence)
                    {
                        continue; // the late answer to an earlier request that timed out
                    }

                    switch (header.Type)
                    {
                        case NlmsgError:
                            ThrowIfError(operation, header, payload, hint);
                            return; // error 0 is the ack
                        case NlmsgDone:
                            // A dump that failed half way says so in NLMSG_DONE's payload.
                            ThrowIfError(operation, header, payload, hint);
                            return;
                        case NlmsgNoop:
                        case NlmsgOverrun:
                            continue;
                        default:
                            if (parse is not null && parse(header, payload, out var value))
                            {
                                results!.Add(value);
                            }

                            break;
                    }
                }
            }
        }
    }

    /// <summary>
    /// NLMSG_ERROR payload: int error (0 or -errno), the header of our request
    /// (the whole request unless NLM_F_CAPPED), then, with NLM_F_ACK_TLVS,
    /// extended-ack attributes of which NLMSGERR_ATTR_MSG is the kernel's text.
    /// </summary>
    private static void ThrowIfError(string operation, in NetlinkMessageHeader header, ReadOnlySpan<byte> payload, Func<int, string?>? hint)
    {
        if (payload.Length < 4)
        {
            return;
        }

        var error = MemoryMarshal.Read<int>(payload);
        if (error >= 0)
        {
            return;
        }

        var errno = -error;
        string? kernelMessage = null;
        if ((header.Flags & NlmFAckTlvs) != 0)
        {
            var offset = 4;
            if (header.Type == NlmsgError && payload.Length >= 4 + HeaderLength)
            {
                var requestLength = (int)MemoryMarshal.Read<uint>(payload[4..]);
                offset += (header.Flags & NlmFCapped) != 0 ? HeaderLength : NetlinkMessageWriter.Align(requestLength);
            }

            if (offset <= payload.Length
                && NetlinkAttributeReader.TryFind(payload[offset..], NlmsgerrAttrMsg, out var text))
            {
                kernelMessage = NetlinkAttributeReader.ReadString(text);
            }
        }

        throw new NetlinkException(operation, errno, kernelMessage, hint?.Invoke(errno));
    }
}
