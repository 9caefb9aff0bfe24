using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using McGrpc.Shared.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace McGrpc.Shared.Qmp;

/// <summary>
/// An asynchronous client for the QEMU Machine Protocol on a unix socket.
/// </summary>
/// <remarks>
/// <para>
/// One thread owns the socket reads and dispatches replies (matched by <c>id</c>) and events.
/// Writes are serialized by a lock and done by the calling command itself. Any number of callers
/// may run commands concurrently. When the connection ends for any reason, every waiting command
/// fails with <see cref="QmpConnectionException"/>, subscriptions fail with it,
/// <see cref="Completion"/> faults with it, and later calls throw it at once.
/// </para>
/// <para>
/// Commands run inside the guest's pause every epoch, so the reply path avoids the thread
/// pool: a command costs one thread-pool hop (resuming the caller). With a send loop and async
/// reads it cost three, and in a test host whose pool was starved single round trips took
/// 600-700 ms instead of 0.2 ms.
/// </para>
/// </remarks>
internal sealed partial class QmpClient : IAsyncDisposable
{
    private static readonly JsonSerializerOptions ArgumentSerializerOptions = new();

    private readonly Socket _socket;
    private readonly SafeHandle _socketHandle;
    private readonly string _socketPath;
    private readonly QmpClientOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<long, PendingCommand> _pending = [];
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ArrayBufferWriter<byte> _writeBuffer = new(512);
    private readonly Utf8JsonWriter _jsonWriter;
    private readonly TaskCompletionSource<QmpGreeting> _greeting = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _receiveLoopEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private QmpEventSubscription[] _subscriptions = [];
    private QmpConnectionException? _abortReason;
    private QmpGreeting? _greetingValue;
    private long _lastId;

    private QmpClient(Socket socket, string socketPath, int peerPid, QmpClientOptions options, ILogger logger)
    {
        _socket = socket;
        _socketHandle = socket.SafeHandle;
        _socketPath = socketPath;
        _options = options;
        _logger = logger;
        _jsonWriter = new Utf8JsonWriter(_writeBuffer);
        PeerPid = peerPid;
    }

    /// <summary>QEMU's greeting: its version and package string.</summary>
    public QmpGreeting Greeting => _greetingValue ?? throw new InvalidOperationException("The QMP greeting has not arrived yet.");

    /// <summary>
    /// The pid of the process serving the socket, from SO_PEERCRED: the QEMU process itself,
    /// whoever created the socket path.
    /// </summary>
    public int PeerPid { get; }

    /// <summary>The unix socket this client is connected to.</summary>
    public string SocketPath => _socketPath;

    /// <summary>
    /// Completes when the connection ends: faulted with <see cref="QmpConnectionException"/> when
    /// QEMU closed it or it broke, successfully when this client was disposed.
    /// </summary>
    public Task Completion => _completion.Task;

    /// <summary>
    /// Connects to the QMP socket at <paramref name="socketPath"/>, reads QEMU's greeting and
    /// leaves capabilities negotiation, all within <see cref="QmpClientOptions.ConnectTimeout"/>.
    /// </summary>
    /// <exception cref="QmpConnectionException">Nothing listens there, or no QMP session started in time.</exception>
    public static async Task<QmpClient> ConnectAsync(string socketPath, QmpClientOptions? options, ILogger? logger, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        options ??= new QmpClientOptions();
        options.Validate();
        logger ??= NullLogger.Instance;

        using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        connectTimeout.CancelAfter(options.ConnectTimeout);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        QmpClient? client = null;
        var connected = false;
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), connectTimeout.Token).ConfigureAwait(false);
            var peer = SocketCredentials.GetPeer(socket.SafeHandle);
            client = new QmpClient(socket, socketPath, peer.Pid, options, logger);
            client.StartReceiveLoop();
            client._greetingValue = await client._greeting.Task.WaitAsync(connectTimeout.Token).ConfigureAwait(false);
            // Until qmp_capabilities QEMU is in negotiation mode and refuses every other command.
            await client.ExecuteCoreAsync("qmp_capabilities", null, null, Timeout.InfiniteTimeSpan, connectTimeout.Token).ConfigureAwait(false);
            QmpLog.Connected(logger, socketPath, client._greetingValue, client.PeerPid);
            connected = true;
            return client;
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new QmpConnectionException(
                $"No QMP session on {socketPath} within {options.ConnectTimeout.TotalSeconds:0.###} s. " +
                "QEMU serves one QMP client at a time: is another client connected?",
                e);
        }
        catch (SocketException e)
        {
            throw new QmpConnectionException($"Cannot connect to the QMP socket {socketPath}: {e.Message}", e);
        }
        finally
        {
            if (!connected)
            {
                if (client is null)
                {
                    socket.Dispose();
                }
                else
                {
                    await client.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="command"/> and returns its <c>return</c> value, waiting at most
    /// <see cref="QmpClientOptions.CommandTimeout"/>.
    /// </summary>
    /// <param name="command">The QMP command, e.g. <c>query-status</c>.</param>
    /// <param name="arguments">
    /// Null, a <see cref="JsonObject"/>, a <see cref="JsonElement"/>, a dictionary or an anonymous
    /// object; serialized as given, without renaming (QMP names are kebab-case).
    /// </param>
    /// <param name="cancellationToken">
    /// Stops waiting. A command already written still runs in QEMU; its reply is ignored.
    /// </param>
    /// <returns>The reply's <c>return</c> member, owned by the caller.</returns>
    /// <exception cref="QmpCommandException">QEMU answered with an error.</exception>
    /// <exception cref="QmpTimeoutException">No reply in time; a later reply is ignored.</exception>
    /// <exception cref="QmpConnectionException">The connection ended.</exception>
    public Task<JsonElement> ExecuteAsync(string command, object? arguments, CancellationToken cancellationToken) =>
        ExecuteCoreAsync(command, arguments, descriptor: null, _options.CommandTimeout, cancellationToken);

    /// <summary>
    /// Runs <paramref name="command"/> and returns its <c>return</c> value, waiting at most
    /// <paramref name="timeout"/> (or forever with <see cref="Timeout.InfiniteTimeSpan"/>).
    /// </summary>
    /// <inheritdoc cref="ExecuteAsync(string, object?, CancellationToken)"/>
    public Task<JsonElement> ExecuteAsync(string command, object? arguments, TimeSpan timeout, CancellationToken cancellationToken) =>
        ExecuteCoreAsync(command, arguments, descriptor: null, timeout, cancellationToken);

    /// <summary>
    /// Closes the connection. Waiting commands fail with <see cref="QmpConnectionException"/>;
    /// <see cref="Completion"/> completes successfully.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        Abort(new QmpConnectionException($"The QMP connection to {_socketPath} was closed by this client."), closedByClient: true);
        await _receiveLoopEnded.Task.ConfigureAwait(false);
    }

    private void StartReceiveLoop()
    {
        var thread = new Thread(ReceiveLoop)
        {
            IsBackground = true,
            Name = "QMP receive",
        };
        // UnsafeStart: the loop outlives the caller, it must not carry the caller's AsyncLocals.
        thread.UnsafeStart();
    }

    private async Task<JsonElement> ExecuteCoreAsync(string command, object? arguments, SafeHandle? descriptor, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(command);
        QmpClientOptions.CheckTimeout(timeout, nameof(timeout));
        cancellationToken.ThrowIfCancellationRequested();

        var started = Stopwatch.GetTimestamp();
        var pending = new PendingCommand(Interlocked.Increment(ref _lastId), command, descriptor);
        lock (_gate)
        {
            // Registering under the lock Abort takes means a command is either failed by Abort
            // or sees the abort reason here: none slips in after Abort and hangs.
            if (_abortReason is not null)
            {
                throw new QmpConnectionException(_abortReason.Message, _abortReason);
            }

            // Registered before it is written: the reply can arrive before the write returns.
            _pending.Add(pending.Id, pending);
        }

        bool acquired;
        try
        {
            acquired = await _writeLock.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Not written: QEMU never sees it.
            Forget(pending);
            throw;
        }

        if (!acquired)
        {
            Forget(pending);
            QmpLog.CommandTimedOut(_logger, command, pending.Id, timeout.TotalMilliseconds);
            throw QmpTimeoutException.ForCommand(command, timeout);
        }

        try
        {
            await WriteAsync(pending, arguments).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }

        var remaining = timeout;
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            remaining = TimeSpan.FromTicks(Math.Max(0, (timeout - Stopwatch.GetElapsedTime(started)).Ticks));
        }

        try
        {
            return await pending.Task.WaitAsync(remaining, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            if (!Forget(pending))
            {
                // The reply (or the end of the connection) won the race against the timer.
                return await pending.Task.ConfigureAwait(false);
            }

            QmpLog.CommandTimedOut(_logger, command, pending.Id, timeout.TotalMilliseconds);
            throw QmpTimeoutException.ForCommand(command, timeout);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            if (!Forget(pending))
            {
                return await pending.Task.ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>
    /// Writes one command; the caller holds <see cref="_writeLock"/>. Invalid arguments fail the
    /// command only; a failed write ends the connection, which fails the command.
    /// </summary>
    private async ValueTask WriteAsync(PendingCommand pending, object? arguments)
    {
        try
        {
            Serialize(pending, arguments);
        }
        catch (Exception e) when (e is NotSupportedException or JsonException or InvalidOperationException)
        {
            if (Forget(pending))
            {
                throw new ArgumentException($"The arguments of QMP {pending.Command} cannot be serialized: {e.Message}", nameof(arguments), e);
            }

            return;
        }

        var descriptor = pending.Descriptor;
        var descriptorAdded = false;
        try
        {
            // Held across the send, so the caller closing it cannot hand QEMU a reused number.
            descriptor?.DangerousAddRef(ref descriptorAdded);
        }
        catch (ObjectDisposedException e)
        {
            if (Forget(pending))
            {
                throw new ObjectDisposedException($"The descriptor for QMP {pending.Command} was closed before it was sent.", e);
            }

            return;
        }

        pending.SentTimestamp = Stopwatch.GetTimestamp();
        QmpLog.CommandSent(_logger, pending.Command, pending.Id);
        try
        {
            await SendAsync(_writeBuffer.WrittenMemory, descriptor).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Part of the command may be on the wire: nothing after it could be framed.
            Abort(new QmpConnectionException($"Writing to the QMP socket {_socketPath} failed: {e.Message}", e));
        }
        finally
        {
            if (descriptorAdded)
            {
                descriptor!.DangerousRelease();
            }
        }
    }

    private void Serialize(PendingCommand pending, object? arguments)
    {
        _writeBuffer.ResetWrittenCount();
        _jsonWriter.Reset(_writeBuffer);
        _jsonWriter.WriteStartObject();
        _jsonWriter.WriteString("execute"u8, pending.Command);
        if (arguments is not null)
        {
            _jsonWriter.WritePropertyName("arguments"u8);
            switch (arguments)
            {
                case JsonNode node:
                    node.WriteTo(_jsonWriter);
                    break;
                case JsonElement element:
                    element.WriteTo(_jsonWriter);
                    break;
                default:
                    JsonSerializer.Serialize(_jsonWriter, arguments, arguments.GetType(), ArgumentSerializerOptions);
                    break;
            }
        }

        _jsonWriter.WriteNumber("id"u8, pending.Id);
        _jsonWriter.WriteEndObject();
        _jsonWriter.Flush();
        _writeBuffer.Write("\n"u8);
    }

    /// <summary>
    /// The single write path. A command carrying a descriptor sends its first bytes with
    /// sendmsg(SCM_RIGHTS): QEMU takes the descriptor from the read that delivers the command,
    /// so it must travel with the command's own bytes.
    /// </summary>
    private async ValueTask SendAsync(ReadOnlyMemory<byte> message, SafeHandle? descriptor)
    {
        if (descriptor is not null)
        {
            int sent;
            while (!FdPassing.TrySend(_socketHandle, message.Span, descriptor, out sent))
            {
                // Only when QEMU has left a whole socket buffer of commands unread. Rare enough
                // that blocking in poll() is simpler than an async wait.
                _socket.Poll(TimeSpan.FromMilliseconds(100), SelectMode.SelectWrite);
            }

            message = message[sent..];
        }

        while (!message.IsEmpty)
        {
            // Completes synchronously unless the socket buffer is full.
            var sent = await _socket.SendAsync(message, SocketFlags.None).ConfigureAwait(false);
            message = message[sent..];
        }
    }

    /// <summary>
    /// Gives up on a command whose caller stopped waiting. Returns false when the reply or the
    /// end of the connection already claimed it.
    /// </summary>
    private bool Forget(PendingCommand pending)
    {
        lock (_gate)
        {
            if (!_pending.Remove(pending.Id))
            {
                return false;
            }
        }

        pending.TrySetCanceled();
        return true;
    }

    private bool TryTake(long id, out PendingCommand pending)
    {
        lock (_gate)
        {
            return _pending.Remove(id, out pending!);
        }
    }

    /// <summary>
    /// The one way the connection ends. Safe to call from any thread, any number of times; the
    /// first reason wins.
    /// </summary>
    private void Abort(QmpConnectionException reason, bool closedByClient = false)
    {
        PendingCommand[] pending;
        QmpEventSubscription[] subscriptions;
        lock (_gate)
        {
            if (_abortReason is not null)
            {
                return;
            }

            _abortReason = reason;
            pending = [.. _pending.Values];
            _pending.Clear();
            subscriptions = _subscriptions;
            _subscriptions = [];
        }

        if (closedByClient)
        {
            QmpLog.ConnectionClosed(_logger, _socketPath);
        }
        else
        {
            QmpLog.ConnectionLost(_logger, reason, _socketPath, pending.Length, reason.Message);
        }

        try
        {
            // Wakes the receive thread from poll(): closing alone does not wake a poll() on Linux.
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Already disconnected.
        }

        _socket.Dispose();

        foreach (var command in pending)
        {
            command.TrySetException(reason);
        }

        foreach (var subscription in subscriptions)
        {
            subscription.Complete(reason);
        }

        // Nobody is obliged to observe these two; reading Exception keeps them from being
        // reported as unobserved.
        if (_greeting.TrySetException(reason))
        {
            _ = _greeting.Task.Exception;
        }

        if (closedByClient)
        {
            _completion.TrySetResult();
        }
        else if (_completion.TrySetException(reason))
        {
            _ = _completion.Task.Exception;
        }
    }

    private void ReceiveLoop()
    {
        Exception? error = null;
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        var start = 0;
        var end = 0;
        try
        {
            while (true)
            {
                // QEMU ends every message with "\r\n" and never puts a raw newline inside one.
                int newline;
                while ((newline = buffer.AsSpan(start, end - start).IndexOf((byte)'\n')) >= 0)
                {
                    var line = buffer.AsMemory(start, newline);
                    start += newline + 1;
                    if (!line.Span.Trim("\r "u8).IsEmpty)
                    {
                        Dispatch(line);
                    }
                }

                if (start == end)
                {
                    start = end = 0;
                }
                else if (end == buffer.Length)
                {
                    buffer = MakeRoom(buffer, ref start, ref end);
                }

                // Wait in poll(), then read what is there: .NET puts the socket in non-blocking
                // mode after async operations, and a blocking Receive on such a socket waits
                // through the thread pool, which this thread exists to avoid.
                _socket.Poll(Timeout.InfiniteTimeSpan, SelectMode.SelectRead);
                var received = _socket.Receive(buffer.AsSpan(end), SocketFlags.None, out var socketError);
                if (socketError == SocketError.WouldBlock)
                {
                    continue;
                }

                if (socketError != SocketError.Success)
                {
                    throw new SocketException((int)socketError);
                }

                if (received == 0)
                {
                    break;
                }

                end += received;
            }
        }
        catch (Exception e)
        {
            error = e;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            Abort(error switch
            {
                null => new QmpConnectionException($"QEMU closed the QMP connection {_socketPath}."),
                QmpConnectionException connectionError => connectionError,
                JsonException jsonError => new QmpConnectionException($"QEMU sent a message that is not JSON on {_socketPath}: {jsonError.Message}", jsonError),
                _ => new QmpConnectionException($"Reading from the QMP socket {_socketPath} failed: {error.Message}", error),
            });
            _receiveLoopEnded.TrySetResult();
        }
    }

    /// <summary>Moves a partial message to the front, or grows the buffer when it already is there.</summary>
    private byte[] MakeRoom(byte[] buffer, ref int start, ref int end)
    {
        if (start > 0)
        {
            buffer.AsSpan(start, end - start).CopyTo(buffer);
            end -= start;
            start = 0;
            return buffer;
        }

        if (buffer.Length >= _options.MaxMessageBytes)
        {
            throw new QmpConnectionException($"QEMU sent a QMP message over {_options.MaxMessageBytes} bytes on {_socketPath}.");
        }

        var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, _options.MaxMessageBytes));
        buffer.AsSpan(0, end).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(buffer);
        return larger;
    }

    private void Dispatch(ReadOnlyMemory<byte> line)
    {
        // The document points into the receive buffer: everything kept past this call is cloned.
        using var document = JsonDocument.Parse(line);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            QmpLog.UnexpectedMessage(_logger, root.GetRawText());
            return;
        }

        if (root.TryGetProperty("event"u8, out var eventName))
        {
            DispatchEvent(root, eventName);
        }
        else if (root.TryGetProperty("id"u8, out var id))
        {
            DispatchReply(root, id);
        }
        else if (root.TryGetProperty("QMP"u8, out var greeting))
        {
            _greeting.TrySetResult(ParseGreeting(greeting));
        }
        else if (root.TryGetProperty("error"u8, out var error))
        {
            QmpLog.ErrorWithoutId(_logger, GetString(error, "class"u8), GetString(error, "desc"u8));
        }
        else
        {
            QmpLog.UnexpectedMessage(_logger, root.GetRawText());
        }
    }

    private void DispatchReply(JsonElement root, JsonElement idElement)
    {
        // Replies are matched by id, not by order: QEMU answers in order today, but an
        // out-of-band capable QEMU may not.
        if (idElement.ValueKind != JsonValueKind.Number || !idElement.TryGetInt64(out var id) || !TryTake(id, out var command))
        {
            QmpLog.ReplyIgnored(_logger, idElement.GetRawText());
            return;
        }

        if (root.TryGetProperty("return"u8, out var value))
        {
            if (_logger.IsEnabled(LogLevel.Debug))
            {
                QmpLog.CommandCompleted(_logger, command.Command, id, Stopwatch.GetElapsedTime(command.SentTimestamp).TotalMilliseconds);
            }

            command.TrySetResult(value.Clone());
        }
        else if (root.TryGetProperty("error"u8, out var error))
        {
            var exception = new QmpCommandException(command.Command, GetString(error, "class"u8), GetString(error, "desc"u8));
            QmpLog.CommandFailed(_logger, command.Command, id, exception.ErrorClass, exception.Description);
            command.TrySetException(exception);
        }
        else
        {
            command.TrySetException(new QmpException($"QMP {command.Command} got a reply with neither return nor error: {root.GetRawText()}"));
        }
    }

    private static string GetString(JsonElement element, ReadOnlySpan<byte> name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : "?";

    private static QmpGreeting ParseGreeting(JsonElement greeting)
    {
        try
        {
            var version = greeting.GetProperty("version"u8);
            var qemu = version.GetProperty("qemu"u8);
            var capabilities = new List<string>();
            if (greeting.TryGetProperty("capabilities"u8, out var offered) && offered.ValueKind == JsonValueKind.Array)
            {
                foreach (var capability in offered.EnumerateArray())
                {
                    capabilities.Add(capability.GetString() ?? "");
                }
            }

            return new QmpGreeting(
                qemu.GetProperty("major"u8).GetInt32(),
                qemu.GetProperty("minor"u8).GetInt32(),
                qemu.GetProperty("micro"u8).GetInt32(),
                version.TryGetProperty("package"u8, out var package) ? package.GetString()?.Trim() ?? "" : "",
                capabilities);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new QmpConnectionException($"The QMP greeting is not what QEMU sends: {greeting.GetRawText()}", e);
        }
    }
}
