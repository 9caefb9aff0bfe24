namespace McGrpc.Shared.Qmp;

/// <summary>The answer to <c>query-status</c>.</summary>
/// <param name="Status">
/// QEMU's run state: <c>running</c>, <c>paused</c>, <c>prelaunch</c> (started with -S),
/// <c>inmigrate</c> (waiting for an incoming migration), <c>postmigrate</c> (a finished
/// outgoing migration), <c>finish-migrate</c>, <c>shutdown</c>, <c>internal-error</c>,
/// <c>io-error</c>, <c>guest-panicked</c>...
/// </param>
/// <param name="Running">Whether the vCPUs run.</param>
internal readonly record struct QmpRunStatus(string Status, bool Running);
