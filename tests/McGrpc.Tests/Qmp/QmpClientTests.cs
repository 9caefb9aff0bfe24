using System.Text.Json;
using System.Text.Json.Nodes;
using McGrpc.Shared.Qmp;

namespace McGrpc.Tests.Qmp;

/// <summary>QMP framing and dispatch against <see cref="FakeQmpServer"/>.</summary>
public sealed class QmpClientTests : IAsyncLifetime
{
    private static readonly TimeSpan WaitTimeout = TimeSpan.FromSeconds(10);

    private readonly FakeQmpServer _server = FakeQmpServer.Start();
    private readonly List<QmpClient> _clients = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync();
        }

        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Connect_reads_the_greeting_and_leaves_capabilities_negotiation()
    {
        var connecting = QmpClient.ConnectAsync(_server.SocketPath, null, null, CancellationToken.None);
        await _server.AcceptAsync();
        var negotiation = await _server.ReceiveCommandAsync();

        Assert.Equal("qmp_capabilities", negotiation.GetProperty("execute").GetString());
        Assert.False(negotiation.TryGetProperty("arguments", out _));
        Assert.Equal(JsonValueKind.Number, negotiation.GetProperty("id").ValueKind);
        Assert.False(connecting.IsCompleted, "ConnectAsync must wait for the qmp_capabilities reply.");

        await _server.ReplyAsync(negotiation, "{}");
        var client = Track(await connecting.WaitAsync(WaitTimeout));

        Assert.Equal((7, 2, 22), (client.Greeting.Major, client.Greeting.Minor, client.Greeting.Micro));
        Assert.Equal("Debian 1:7.2+dfsg-7+deb12u18+b3", client.Greeting.Package);
        Assert.Equal(["oob"], client.Greeting.Capabilities);
        Assert.Equal(new Version(7, 2, 22), client.Greeting.Version);
        // The fake server runs in this process, so SO_PEERCRED names this process.
        Assert.Equal(Environment.ProcessId, client.PeerPid);
    }

    [Fact]
    public async Task Replies_sent_out_of_order_reach_the_commands_they_answer()
    {
        var client = await ConnectAsync();

        var first = client.ExecuteAsync("query-first", null, CancellationToken.None);
        var second = client.ExecuteAsync("query-second", new { value = 2 }, CancellationToken.None);
        var third = client.ExecuteAsync("query-third", null, CancellationToken.None);
        var commands = new Dictionary<string, JsonElement>();
        for (var i = 0; i < 3; i++)
        {
            var command = await _server.ReceiveCommandAsync();
            commands[command.GetProperty("execute").GetString()!] = command;
        }

        await _server.ReplyAsync(commands["query-third"], "\"three\"");
        await _server.ReplyAsync(commands["query-first"], "\"one\"");
        await _server.ReplyAsync(commands["query-second"], "\"two\"");

        Assert.Equal("one", (await first.WaitAsync(WaitTimeout)).GetString());
        Assert.Equal("two", (await second.WaitAsync(WaitTimeout)).GetString());
        Assert.Equal("three", (await third.WaitAsync(WaitTimeout)).GetString());
        Assert.Equal(2, commands["query-second"].GetProperty("arguments").GetProperty("value").GetInt32());
    }

    [Fact]
    public async Task Arguments_keep_their_names_whatever_their_form()
    {
        var client = await ConnectAsync();

        var fromDictionary = client.ExecuteAsync("a", new Dictionary<string, object> { ["x-ignore-shared"] = true }, CancellationToken.None);
        var fromNode = client.ExecuteAsync("b", new JsonObject { ["max-bandwidth"] = 1024 }, CancellationToken.None);
        var fromAnonymous = client.ExecuteAsync("c", new { uri = "unix:/x" }, CancellationToken.None);

        var a = await _server.ReceiveCommandAsync();
        var b = await _server.ReceiveCommandAsync();
        var c = await _server.ReceiveCommandAsync();
        Assert.True(a.GetProperty("arguments").GetProperty("x-ignore-shared").GetBoolean());
        Assert.Equal(1024, b.GetProperty("arguments").GetProperty("max-bandwidth").GetInt32());
        Assert.Equal("unix:/x", c.GetProperty("arguments").GetProperty("uri").GetString());

        foreach (var command in new[] { a, b, c })
        {
            await _server.ReplyAsync(command, "{}");
        }

        await Task.WhenAll(fromDictionary, fromNode, fromAnonymous).WaitAsync(WaitTimeout);
    }

    [Fact]
    public async Task Arguments_that_cannot_be_serialized_fail_only_their_command()
    {
        var client = await ConnectAsync();

        var error = await Assert.ThrowsAsync<ArgumentException>(() => client.ExecuteAsync("bad", new { handle = IntPtr.Zero }, CancellationToken.None));
        Assert.Contains("QMP bad", error.Message);

        var next = client.ExecuteAsync("query-status", null, CancellationToken.None);
        var command = await _server.ReceiveCommandAsync();
        Assert.Equal("query-status", command.GetProperty("execute").GetString());
        await _server.ReplyAsync(command, "{}");
        await next.WaitAsync(WaitTimeout);
    }

    [Fact]
    public async Task Events_interleaved_with_replies_reach_subscribers_and_leave_replies_alone()
    {
        var client = await ConnectAsync();
        using var all = client.Subscribe();
        using var onlyResume = client.Subscribe(e => e.Name == "RESUME");

        var status = client.QueryStatusAsync(CancellationToken.None);
        var command = await _server.ReceiveCommandAsync();
        await _server.SendEventAsync("STOP");
        await _server.ReplyAsync(command, """{"status": "paused", "singlestep": false, "running": false}""");
        await _server.SendEventAsync("RESUME");
        await _server.SendEventAsync("MIGRATION", """{"status": "completed"}""");

        Assert.Equal(new QmpRunStatus("paused", false), await status.WaitAsync(WaitTimeout));

        var stop = await ReadAsync(all);
        var resume = await ReadAsync(all);
        var migration = await ReadAsync(all);
        Assert.Equal("STOP", stop.Name);
        Assert.Equal(JsonValueKind.Object, stop.Data.ValueKind);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000).AddMilliseconds(250), stop.Timestamp);
        Assert.Equal("RESUME", resume.Name);
        Assert.Equal("MIGRATION", migration.Name);
        Assert.Equal("completed", migration.Data.GetProperty("status").GetString());

        Assert.Equal("RESUME", (await ReadAsync(onlyResume)).Name);
        Assert.False(onlyResume.Reader.TryRead(out _));
    }

    [Fact]
    public async Task WaitForEventAsync_sees_an_event_sent_before_the_reply_of_the_command_that_caused_it()
    {
        var client = await ConnectAsync();

        // The order QEMU uses for stop: the event first, then the reply.
        var stopped = client.WaitForEventAsync("STOP", null, WaitTimeout, CancellationToken.None);
        var stop = client.StopAsync(CancellationToken.None);
        var command = await _server.ReceiveCommandAsync();
        await _server.SendEventAsync("RESUME");
        await _server.SendEventAsync("STOP");
        await _server.ReplyAsync(command, "{}");

        await stop.WaitAsync(WaitTimeout);
        Assert.Equal("STOP", (await stopped.WaitAsync(WaitTimeout)).Name);
    }

    [Fact]
    public async Task WaitForEventAsync_applies_the_predicate_and_times_out_naming_the_event()
    {
        var client = await ConnectAsync();

        var completed = client.WaitForEventAsync("MIGRATION", e => e.Data.GetProperty("status").GetString() == "completed", WaitTimeout, CancellationToken.None);
        var never = client.WaitForEventAsync("SHUTDOWN", null, TimeSpan.FromMilliseconds(100), CancellationToken.None);
        await _server.SendEventAsync("MIGRATION", """{"status": "active"}""");
        await _server.SendEventAsync("MIGRATION", """{"status": "completed"}""");

        Assert.Equal("completed", (await completed.WaitAsync(WaitTimeout)).Data.GetProperty("status").GetString());
        var timeout = await Assert.ThrowsAsync<QmpTimeoutException>(() => never.WaitAsync(WaitTimeout));
        Assert.Equal("SHUTDOWN", timeout.EventName);
        Assert.Null(timeout.Command);
    }

    [Fact]
    public async Task A_subscriber_that_falls_behind_loses_the_oldest_events_without_stalling_replies()
    {
        var client = await ConnectAsync(new QmpClientOptions { EventBufferCapacity = 4 });
        using var subscription = client.Subscribe();

        var status = client.ExecuteAsync("query-status", null, CancellationToken.None);
        var command = await _server.ReceiveCommandAsync();
        for (var i = 0; i < 10; i++)
        {
            await _server.SendEventAsync("TICK", $$"""{"n": {{i}}}""");
        }

        await _server.ReplyAsync(command, "{}");
        // The reply comes after the events, so once it is here every event was dispatched.
        await status.WaitAsync(WaitTimeout);

        Assert.Equal(6, subscription.DroppedCount);
        var kept = new List<int>();
        while (subscription.Reader.TryRead(out var tick))
        {
            kept.Add(tick.Data.GetProperty("n").GetInt32());
        }

        Assert.Equal([6, 7, 8, 9], kept);
    }

    [Fact]
    public async Task An_error_reply_becomes_a_QmpCommandException_with_class_and_description()
    {
        var client = await ConnectAsync();

        var migrate = client.MigrateAsync("unix:/nowhere", CancellationToken.None);
        var command = await _server.ReceiveCommandAsync();
        Assert.Equal("unix:/nowhere", command.GetProperty("arguments").GetProperty("uri").GetString());
        await _server.ReplyErrorAsync(command, "GenericError", "Failed to connect socket: No such file or directory");

        var error = await Assert.ThrowsAsync<QmpCommandException>(() => migrate.WaitAsync(WaitTimeout));
        Assert.Equal("migrate", error.Command);
        Assert.Equal("GenericError", error.ErrorClass);
        Assert.Equal("Failed to connect socket: No such file or directory", error.Description);
        Assert.Equal("QMP migrate failed: GenericError: Failed to connect socket: No such file or directory", error.Message);
        Assert.IsAssignableFrom<QmpException>(error);
    }

    [Fact]
    public async Task A_command_without_a_reply_times_out_and_its_late_reply_is_ignored()
    {
        var client = await ConnectAsync();

        var slow = client.ExecuteAsync("query-slow", null, TimeSpan.FromMilliseconds(100), CancellationToken.None);
        var slowCommand = await _server.ReceiveCommandAsync();
        var timeout = await Assert.ThrowsAsync<QmpTimeoutException>(() => slow.WaitAsync(WaitTimeout));
        Assert.Equal("query-slow", timeout.Command);
        Assert.Equal(TimeSpan.FromMilliseconds(100), timeout.Timeout);
        Assert.Contains("query-slow", timeout.Message);
        Assert.Contains("100 ms", timeout.Message);

        var next = client.ExecuteAsync("query-next", null, CancellationToken.None);
        var nextCommand = await _server.ReceiveCommandAsync();
        await _server.ReplyAsync(slowCommand, "\"late\"");
        await _server.ReplyAsync(nextCommand, "\"next\"");

        Assert.Equal("next", (await next.WaitAsync(WaitTimeout)).GetString());
        Assert.False(client.Completion.IsCompleted);
    }

    [Fact]
    public async Task Cancelling_one_command_leaves_the_connection_working()
    {
        var client = await ConnectAsync();

        using var cancellation = new CancellationTokenSource();
        var cancelled = client.ExecuteAsync("query-cancelled", null, cancellation.Token);
        var other = client.ExecuteAsync("query-other", null, CancellationToken.None);
        var cancelledCommand = await _server.ReceiveCommandAsync();
        var otherCommand = await _server.ReceiveCommandAsync();
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(WaitTimeout));
        await _server.ReplyAsync(cancelledCommand, "\"ignored\"");
        await _server.ReplyAsync(otherCommand, "\"other\"");

        Assert.Equal("other", (await other.WaitAsync(WaitTimeout)).GetString());
        var after = client.ExecuteAsync("query-after", null, CancellationToken.None);
        await _server.ReplyAsync(await _server.ReceiveCommandAsync(), "\"after\"");
        Assert.Equal("after", (await after.WaitAsync(WaitTimeout)).GetString());
    }

    [Fact]
    public async Task The_server_closing_the_socket_fails_pending_commands_and_faults_Completion()
    {
        var client = await ConnectAsync();
        using var subscription = client.Subscribe();

        var pending = client.ExecuteAsync("query-status", null, CancellationToken.None);
        await _server.ReceiveCommandAsync();
        _server.CloseConnection();

        await Assert.ThrowsAsync<QmpConnectionException>(() => pending.WaitAsync(WaitTimeout));
        await Assert.ThrowsAsync<QmpConnectionException>(() => client.Completion.WaitAsync(WaitTimeout));
        await Assert.ThrowsAsync<QmpConnectionException>(() => subscription.Reader.Completion.WaitAsync(WaitTimeout));

        // Later calls fail at once, without a timeout.
        var later = client.ExecuteAsync("query-status", null, CancellationToken.None);
        Assert.True(later.IsFaulted);
        await Assert.ThrowsAsync<QmpConnectionException>(() => later);
        Assert.Throws<QmpConnectionException>(() => client.Subscribe());
        await Assert.ThrowsAsync<QmpConnectionException>(() => client.WaitForEventAsync("STOP", null, WaitTimeout, CancellationToken.None));
    }

    [Fact]
    public async Task Disposing_fails_pending_commands_and_completes_Completion_without_fault()
    {
        var client = await ConnectAsync();

        var pending = client.ExecuteAsync("query-status", null, CancellationToken.None);
        await _server.ReceiveCommandAsync();
        await client.DisposeAsync();

        var error = await Assert.ThrowsAsync<QmpConnectionException>(() => pending.WaitAsync(WaitTimeout));
        Assert.Contains("closed by this client", error.Message);
        await client.Completion.WaitAsync(WaitTimeout);
        Assert.True(client.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task GetfdAsync_passes_the_descriptor_with_the_command()
    {
        var client = await ConnectAsync();
        var path = Path.Combine(Path.GetTempPath(), $"mcgrpc-getfd-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(path, "checkpoint");
        try
        {
            Task getfd;
            using (var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read))
            {
                getfd = client.GetfdAsync("migration", file, CancellationToken.None);
                var (command, descriptor) = await _server.ReceiveCommandWithDescriptorAsync();
                Assert.Equal("getfd", command.GetProperty("execute").GetString());
                Assert.Equal("migration", command.GetProperty("arguments").GetProperty("fdname").GetString());
                Assert.NotNull(descriptor);
                using (descriptor)
                {
                    Assert.NotEqual(file.DangerousGetHandle(), descriptor.DangerousGetHandle());
                    // The received descriptor is a new one for the same open file.
                    using var received = new Microsoft.Win32.SafeHandles.SafeFileHandle(descriptor.DangerousGetHandle(), ownsHandle: false);
                    var bytes = new byte[32];
                    var count = RandomAccess.Read(received, bytes, 0);
                    Assert.Equal("checkpoint", System.Text.Encoding.UTF8.GetString(bytes, 0, count));
                }

                await _server.ReplyAsync(command, "{}");
            }

            await getfd.WaitAsync(WaitTimeout);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Connect_fails_when_no_greeting_arrives_in_time()
    {
        var connecting = QmpClient.ConnectAsync(_server.SocketPath, new QmpClientOptions { ConnectTimeout = TimeSpan.FromMilliseconds(200) }, null, CancellationToken.None);
        await _server.AcceptAsync(sendGreeting: false);

        var error = await Assert.ThrowsAsync<QmpConnectionException>(() => connecting.WaitAsync(WaitTimeout));
        Assert.Contains("No QMP session", error.Message);
    }

    [Fact]
    public async Task Connect_fails_when_nothing_listens()
    {
        var path = Path.Combine(Path.GetTempPath(), $"mcgrpc-missing-{Guid.NewGuid():N}.sock");

        var error = await Assert.ThrowsAsync<QmpConnectionException>(() => QmpClient.ConnectAsync(path, null, null, CancellationToken.None));
        Assert.Contains(path, error.Message);
    }

    private static async Task<QmpEvent> ReadAsync(QmpEventSubscription subscription)
    {
        using var timeout = new CancellationTokenSource(WaitTimeout);
        return await subscription.Reader.ReadAsync(timeout.Token);
    }

    private async Task<QmpClient> ConnectAsync(QmpClientOptions? options = null)
    {
        var connecting = QmpClient.ConnectAsync(_server.SocketPath, options, null, CancellationToken.None);
        await _server.AcceptAndNegotiateAsync();
        return Track(await connecting.WaitAsync(WaitTimeout));
    }

    private QmpClient Track(QmpClient client)
    {
        _clients.Add(client);
        return client;
    }
}
