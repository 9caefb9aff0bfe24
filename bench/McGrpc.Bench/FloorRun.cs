namespace McGrpc.Bench;

/// <summary>
/// One device-state-only migration done by QEMU alone (x-ignore-shared to a
/// socket the bench drains): QEMU's own "downtime", "total-time" and
/// "setup-time" from query-migrate, the stream's size, and the bench's round
/// trip from the migrate command to cont done.
/// </summary>
internal sealed record FloorRun(double DowntimeMs, double TotalTimeMs, double SetupTimeMs, long StreamBytes, double RoundTripMs);
