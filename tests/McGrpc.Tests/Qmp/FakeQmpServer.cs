using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using McGrpc.Shared.Native;

namespace McGrpc.Tests.Qmp;

/// <summary>
/// A scripted QMP server on a temp unix socket: the test decides what it reads and what it
/// answers, in which order. Reads go through recvmsg so descriptors passed with SCM_RIGHTS
/// arrive with the command they travelled with.
/// </summary>
internal sealed class FakeQmpServer : IAsyncDisposable
{
    /// <summary>The greeting QEMU 7.2.22 from Debian 12 sends, byte for byte.</summary>
    public const string Qemu72Greeting =
        """{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}""";

    private static readonly TimeSpan WaitTimeout = TimeSpan.FromSeconds(10);

    private readonly string _directory;
    private readonly Socket _listener;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly List<(long Offset, FileDescriptor Descriptor)> _descriptors = [];
    private readonly List<FileDescriptor> _received = [];
    private Socket? _connection;
    private long _bufferOffset;
    private int _start;
    private int _end;

    private FakeQmpServer(string directory, Socket listener)
    {
        _directory = directory;
        _listener = listener;
    }

    public string SocketPath => Path.Combine(_directory, "qmp.sock");

    public static FakeQmpServer Start()
    {
        var directory = Directory.CreateTempSubdirectory("mcgrpc-qmp-").FullName;
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(Path.Combine(directory, "qmp.sock")));
        listener.Listen(4);
        return new FakeQmpServer(directory, listener);
    }

    /// <summary>Accepts the client and sends the greeting (unless told not to).</summary>
    public async Task AcceptAsync(bool sendGreeting = true)
    {
        using var timeout = new CancellationTokenSource(WaitTimeout);
        _connection = await _listener.AcceptAsync(timeout.Token);
        if (sendGreeting)
        {
            await SendAsync(Qemu72Greeting);
        }
    }

    /// <summary>Accepts, greets and answers qmp_capabilities, as QEMU does.</summary>
    public async Task AcceptAndNegotiateAsync()
    {
        await AcceptAsync();
        var capabilities = await ReceiveCommandAsync();
        Assert.Equal("qmp_capabilities", capabilities.GetProperty("execute").GetString());
        await ReplyAsync(capabilities, "{}");
    }

    /// <summary>Sends one message; "\r\n" is appended as QEMU does.</summary>
    public async Task SendAsync(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json + "\r\n");
        await Connection.SendAsync(bytes, SocketFlags.None);
    }

    public Task ReplyAsync(JsonElement command, string returnJson) =>
        SendAsync($$"""{"return": {{returnJson}}, "id": {{command.GetProperty("id").GetRawText()}}}""");

    public Task ReplyErrorAsync(JsonElement command, string errorClass, string description) =>
        SendAsync($$$"""{"id": {{{command.GetProperty("id").GetRawText()}}}, "error": {"class": "{{{errorClass}}}", "desc": "{{{description}}}"}}""");

    public Task SendEventAsync(string name, string? dataJson = null) =>
        SendAsync(dataJson is null
            ? $$"""{"timestamp": {"seconds": 1700000000, "microseconds": 250000}, "event": "{{name}}"}"""
            : $$"""{"timestamp": {"seconds": 1700000000, "microseconds": 250000}, "event": "{{name}}", "data": {{dataJson}}}""");

    public async Task<JsonElement> ReceiveCommandAsync()
    {
        var (command, descriptor) = await ReceiveCommandWithDescriptorAsync();
        Assert.Null(descriptor);
        return command;
    }

    /// <summary>The next command, and the descriptor that arrived with it, if any.</summary>
    public async Task<(JsonElement Command, FileDescriptor? Descriptor)> ReceiveCommandWithDescriptorAsync()
    {
        var deadline = DateTime.UtcNow + WaitTimeout;
        while (true)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (newline >= 0)
            {
                using var document = JsonDocument.Parse(_buffer.AsMemory(_start, newline - _start));
                // The kernel attaches a descriptor to the first byte of the sendmsg that carried it.
                FileDescriptor? descriptor = null;
                var index = _descriptors.FindIndex(d => d.Offset <= _bufferOffset + newline);
                if (index >= 0)
                {
                    descriptor = _descriptors[index].Descriptor;
                    _descriptors.RemoveAt(index);
                }

                _start = newline + 1;
                return (document.RootElement.Clone(), descriptor);
            }

            if (_start > 0)
            {
                Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
                _bufferOffset += _start;
                _end -= _start;
                _start = 0;
            }

            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
            {
                throw new TimeoutException("The fake QMP server got no command in time.");
            }

            // A zero-byte receive completes when data (or the end of the stream) is there,
            // without consuming it; recvmsg then reads the data with its descriptors.
            var connection = Connection;
            using (var timeout = new CancellationTokenSource(remaining))
            {
                await connection.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, timeout.Token);
            }

            if (FdPassing.TryReceive(connection.SafeHandle, _buffer.AsSpan(_end), _received, out var received))
            {
                foreach (var descriptor in _received)
                {
                    _descriptors.Add((_bufferOffset + _end, descriptor));
                }

                _received.Clear();
                if (received == 0)
                {
                    throw new EndOfStreamException("The QMP client closed the connection.");
                }

                _end += received;
            }
        }
    }

    /// <summary>Closes the client connection, as QEMU does when it exits.</summary>
    public void CloseConnection()
    {
        _connection?.Shutdown(SocketShutdown.Both);
        _connection?.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        _connection?.Dispose();
        _listener.Dispose();
        foreach (var (_, descriptor) in _descriptors)
        {
            descriptor.Dispose();
        }

        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }

    private Socket Connection => _connection ?? throw new InvalidOperationException("No client has connected.");
}
