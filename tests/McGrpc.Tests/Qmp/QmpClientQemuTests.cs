using System.Diagnostics;
using System.Text.Json.Nodes;
using McGrpc.Shared.Qmp;
using Xunit.Abstractions;

namespace McGrpc.Tests.Qmp;

/// <summary>The QMP client against a real qemu-system-x86_64 (7.2 on the build machines).</summary>
public sealed class QmpClientQemuTests(ITestOutputHelper output)
{
    private static readonly TimeSpan WaitTimeout = TimeSpan.FromSeconds(10);

    private static readonly string[] NoMachine = ["-machine", "none", "-nodefaults", "-display", "none"];

    [Fact]
    public async Task Control_commands_work_against_qemu()
    {
        await using var qemu = await QemuProcess.StartAsync(NoMachine);
        await using var client = await ConnectAsync(qemu);

        Assert.True(client.Greeting.Major >= 7, $"QEMU {client.Greeting}");
        Assert.Equal(qemu.Pid, client.PeerPid);
        Assert.Equal(new QmpRunStatus("running", true), await client.QueryStatusAsync(CancellationToken.None));

        var notFound = await Assert.ThrowsAsync<QmpCommandException>(() => client.ExecuteAsync("no-such-command", null, CancellationToken.None));
        Assert.Equal("CommandNotFound", notFound.ErrorClass);
        Assert.Equal("no-such-command", notFound.Command);

        // QEMU sends STOP and RESUME before the replies to stop and cont.
        var stopped = client.WaitForEventAsync("STOP", null, WaitTimeout, CancellationToken.None);
        await client.StopAsync(CancellationToken.None);
        Assert.Equal("STOP", (await stopped).Name);
        Assert.Equal(new QmpRunStatus("paused", false), await client.QueryStatusAsync(CancellationToken.None));

        var resumed = client.WaitForEventAsync("RESUME", null, WaitTimeout, CancellationToken.None);
        await client.ContAsync(CancellationToken.None);
        Assert.Equal("RESUME", (await resumed).Name);
        Assert.Equal(new QmpRunStatus("running", true), await client.QueryStatusAsync(CancellationToken.None));

        // 7.2 answers query-migrate with {} before any migration.
        var migration = await client.QueryMigrateAsync(CancellationToken.None);
        Assert.Equal("none", migration.Status);

        await client.MigrateSetCapabilitiesAsync(new Dictionary<string, bool> { ["x-ignore-shared"] = true, ["events"] = true }, CancellationToken.None);
        var capabilities = await client.ExecuteAsync("query-migrate-capabilities", null, CancellationToken.None);
        Assert.Contains(capabilities.EnumerateArray(), c => c.GetProperty("capability").GetString() == "x-ignore-shared" && c.GetProperty("state").GetBoolean());
        await client.MigrateSetParametersAsync(new JsonObject { ["max-bandwidth"] = 1L << 30 }, CancellationToken.None);

        await client.ObjectAddAsync(new JsonObject { ["qom-type"] = "secret", ["id"] = "secret0", ["data"] = "x" }, CancellationToken.None);
        Assert.Contains(await client.QomListAsync("/objects", CancellationToken.None), p => p.Name == "secret0");
        await client.ObjectDelAsync("secret0", CancellationToken.None);

        var backend = new JsonObject { ["type"] = "null", ["data"] = new JsonObject() };
        await client.ChardevAddAsync("chr0", backend, CancellationToken.None);
        await client.ChardevRemoveAsync("chr0", CancellationToken.None);

        Assert.Contains("running", await client.HumanMonitorCommandAsync("info status", CancellationToken.None));
    }

    [Fact]
    public async Task Memory_backend_is_visible_through_query_memdev_and_qom_get()
    {
        var ramFile = $"/dev/shm/mcgrpc-qmp-test-{Guid.NewGuid():N}.ram";
        await using var qemu = await QemuProcess.StartAsync(
            [
                "-machine", "q35,memory-backend=ram0", "-accel", "tcg", "-m", "64M",
                "-object", $"memory-backend-file,id=ram0,size=64M,mem-path={ramFile},share=on",
                "-nodefaults", "-display", "none", "-S",
            ],
            ramFile);
        await using var client = await ConnectAsync(qemu);

        Assert.Equal(new QmpRunStatus("prelaunch", false), await client.QueryStatusAsync(CancellationToken.None));

        // QEMU 7.2 returns exactly: {"share": true, "reserve": true, "prealloc": false,
        // "host-nodes": [], "size": 67108864, "merge": true, "dump": true, "policy": "default",
        // "id": "ram0"}. No type and no mem-path: those come from qom-get.
        var memdev = Assert.Single(await client.QueryMemdevAsync(CancellationToken.None));
        Assert.Equal("ram0", memdev.Id);
        Assert.Equal(64L * 1024 * 1024, memdev.Size);
        Assert.True(memdev.Share);
        Assert.True(memdev.Merge);
        Assert.True(memdev.Dump);
        Assert.False(memdev.Prealloc);
        Assert.True(memdev.Reserve);
        Assert.Equal("default", memdev.Policy);
        Assert.Empty(memdev.HostNodes);

        Assert.Equal(ramFile, (await client.QomGetAsync("/objects/ram0", "mem-path", CancellationToken.None)).GetString());
        Assert.Equal(64L * 1024 * 1024, (await client.QomGetAsync("/objects/ram0", "size", CancellationToken.None)).GetInt64());
        var properties = await client.QomListAsync("/objects/ram0", CancellationToken.None);
        Assert.Contains(properties, p => p is { Name: "mem-path", Type: "string" });
        Assert.Contains(properties, p => p is { Name: "share", Type: "bool" });
    }

    [Fact]
    public async Task Getfd_hands_qemu_a_descriptor_it_can_later_close()
    {
        await using var qemu = await QemuProcess.StartAsync(NoMachine);
        await using var client = await ConnectAsync(qemu);
        var path = Path.Combine(Path.GetTempPath(), $"mcgrpc-getfd-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(path, "x");
        try
        {
            using (var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read))
            {
                await client.GetfdAsync("test-fd", file, CancellationToken.None);
            }

            // Our handle is closed: the only descriptor still open on the file is QEMU's copy.
            Assert.True(QemuHoldsOpen(qemu.Pid, path), "QEMU has no descriptor for the file after getfd.");
            await client.ClosefdAsync("test-fd", CancellationToken.None);
            Assert.False(QemuHoldsOpen(qemu.Pid, path), "QEMU still holds the descriptor after closefd.");

            var unknown = await Assert.ThrowsAsync<QmpCommandException>(() => client.ClosefdAsync("test-fd", CancellationToken.None));
            Assert.Equal("GenericError", unknown.ErrorClass);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Query_status_round_trip_is_measured()
    {
        const int Calls = 1000;
        await using var qemu = await QemuProcess.StartAsync(NoMachine);
        await using var client = await ConnectAsync(qemu);

        for (var i = 0; i < 100; i++)
        {
            await client.QueryStatusAsync(CancellationToken.None);
        }

        var samples = new double[Calls];
        var total = Stopwatch.StartNew();
        for (var i = 0; i < Calls; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await client.QueryStatusAsync(CancellationToken.None);
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        total.Stop();
        Array.Sort(samples);
        output.WriteLine(
            $"query-status round trip over {Calls} calls: mean {total.Elapsed.TotalMicroseconds / Calls:0.0} us, " +
            $"p50 {samples[Calls / 2]:0.0} us, p99 {samples[Calls * 99 / 100]:0.0} us, max {samples[^1]:0.0} us");
    }

    private static bool QemuHoldsOpen(int pid, string path) =>
        Directory.EnumerateFiles($"/proc/{pid}/fd").Any(link => new FileInfo(link).LinkTarget == path);

    private static async Task<QmpClient> ConnectAsync(QemuProcess qemu)
    {
        try
        {
            return await QmpClient.ConnectAsync(qemu.QmpSocketPath, null, null, CancellationToken.None);
        }
        catch (QmpException e)
        {
            throw new InvalidOperationException($"{e.Message}\nQEMU output:\n{qemu.Output}", e);
        }
    }
}
