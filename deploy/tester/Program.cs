using System.Runtime.InteropServices;
using Grpc.Core;
using McGrpc.ComposeTester.Scenario;

namespace McGrpc.ComposeTester;

/// <summary>
/// mc-compose-tester: runs the compose failover test once. Exit codes:
/// 0 passed, 1 a check failed (the reason is printed on a "RESULT: FAIL" line),
/// 2 bad settings.
/// </summary>
internal static class Program
{
    public static async Task<int> Main()
    {
        TesterSettings settings;
        try
        {
            settings = TesterSettings.FromEnvironment();
        }
        catch (Exception e) when (e is ArgumentException or FormatException or UriFormatException)
        {
            await Console.Error.WriteLineAsync($"mc-compose-tester: {e.Message}").ConfigureAwait(false);
            return 2;
        }

        using var cancel = new CancellationTokenSource(settings.Scaled(900));
        // Ctrl-C, and "docker stop" or compose tearing down (SIGTERM): end with a report.
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);

        Reporter.Step($"compose failover test: guest {settings.GuestAddress}, primary {settings.PrimaryControl}, backup {settings.BackupControl}, logs {settings.LogDir}");
        var scenario = new FailoverScenario(settings);
        string? failure = null;
        try
        {
            await scenario.RunAsync(cancel.Token).ConfigureAwait(false);
        }
        catch (TestFailedException e)
        {
            failure = e.Message;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            failure = $"the test was cancelled or ran out of its {settings.Scaled(900).TotalSeconds:F0} s";
        }
        catch (RpcException e)
        {
            failure = $"a control call failed: {e.StatusCode}: {e.Status.Detail}";
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidOperationException or HttpRequestException)
        {
            failure = $"unexpected {e.GetType().Name}: {e.Message}";
            Reporter.Raw(e.ToString());
        }
        finally
        {
            await scenario.DisposeAsync().ConfigureAwait(false);
        }

        if (failure is null)
        {
            Reporter.Raw($"RESULT: PASS: the guest carried on from the backup container ({Reporter.Elapsed.TotalSeconds:F0} s)");
            return 0;
        }

        Reporter.Raw($"RESULT: FAIL: {failure}");
        Reporter.Raw(scenario.LastStatuses);
        LogTail.Print(settings.LogDir);
        Reporter.Raw($"RESULT: FAIL: {failure}");
        return 1;

        void Cancel(PosixSignalContext context)
        {
            context.Cancel = true;
            cancel.Cancel();
        }
    }
}
