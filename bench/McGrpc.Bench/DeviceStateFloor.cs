using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using McGrpc.Shared.Qmp;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Bench;

/// <summary>
/// The floor under a checkpoint's pause: QEMU migrating only the device state
/// of the same VM (x-ignore-shared skips the shared RAM) to a unix socket the
/// bench drains, with no daemon involved. QEMU's "downtime" of such a
/// migration is the least a stop + device state + cont can cost.
/// </summary>
internal static class DeviceStateFloor
{
    public static async Task<List<FloorRun>> MeasureAsync(TestVm vm, int runs, CancellationToken cancellationToken)
    {
        var qmp = await vm.QmpAsync();
        await qmp.MigrateSetCapabilitiesAsync(new Dictionary<string, bool> { ["x-ignore-shared"] = true }, cancellationToken);
        var path = Path.Combine(vm.Directory, "floor.sock");
        File.Delete(path);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var results = new List<FloorRun>();
        for (var i = 0; i < runs; i++)
        {
            var drain = DrainOneAsync(listener, cancellationToken);
            var started = Stopwatch.GetTimestamp();
            await qmp.MigrateAsync($"unix:{path}", cancellationToken);
            var info = await WaitCompletedAsync(qmp, cancellationToken);
            await WaitPostmigrateAsync(qmp, cancellationToken);
            await qmp.ContAsync(cancellationToken);
            var roundTrip = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            var bytes = await drain;
            results.Add(new FloorRun(Number(info.Raw, "downtime"), Number(info.Raw, "total-time"), Number(info.Raw, "setup-time"), bytes, roundTrip));

            // Let the guest run between two stops, as between two checkpoints.
            await Task.Delay(200, cancellationToken);
        }

        File.Delete(path);
        return results;
    }

    private static async Task<long> DrainOneAsync(Socket listener, CancellationToken cancellationToken)
    {
        using var connection = await listener.AcceptAsync(cancellationToken);
        var buffer = new byte[256 * 1024];
        long total = 0;
        int read;
        while ((read = await connection.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
        {
            total += read;
        }

        return total;
    }

    private static async Task<QmpMigrationInfo> WaitCompletedAsync(QmpClient qmp, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while (true)
        {
            var info = await qmp.QueryMigrateAsync(cancellationToken);
            if (info.Status == "completed")
            {
                return info;
            }

            if (info.Status is "failed" or "cancelled")
            {
                throw new InvalidOperationException($"QEMU's device-state migration {info.Status}: {info.ErrorDescription}");
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"QEMU's device-state migration still '{info.Status}' after 10 s.");
            }

            await Task.Delay(1, cancellationToken);
        }
    }

    /// <summary>"completed" arrives before the source enters postmigrate, and cont is refused until then.</summary>
    private static async Task WaitPostmigrateAsync(QmpClient qmp, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while ((await qmp.QueryStatusAsync(cancellationToken)).Status != "postmigrate")
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException("QEMU did not reach postmigrate within 10 s of completing the migration.");
            }

            await Task.Delay(1, cancellationToken);
        }
    }

    private static double Number(JsonElement raw, string name)
        => raw.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetDouble() : double.NaN;
}
