using Grpc.Core;
using McGrpc.Protos.Control;

namespace McGrpc.ComposeTester.Scenario;

internal sealed partial class FailoverScenario
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(5);

    private async Task<PrimaryStatus?> TryPrimaryAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await PrimaryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            _lastError = $"mc-primary: {e.StatusCode}: {e.Status.Detail}";
            return null;
        }
    }

    private async Task<BackupStatus?> TryBackupAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await BackupAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            _lastError = $"mc-backup: {e.StatusCode}: {e.Status.Detail}";
            return null;
        }
    }

    private async Task<PrimaryStatus> PrimaryAsync(CancellationToken cancellationToken)
    {
        _lastPrimary = await _primary.QueryStatusAsync(new QueryStatusRequest(), deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken).ConfigureAwait(false);
        return _lastPrimary;
    }

    private async Task<BackupStatus> BackupAsync(CancellationToken cancellationToken)
    {
        _lastBackup = await _backup.QueryStatusAsync(new QueryStatusRequest(), deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken).ConfigureAwait(false);
        return _lastBackup;
    }
}
