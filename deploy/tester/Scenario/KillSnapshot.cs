namespace McGrpc.ComposeTester.Scenario;

/// <summary>What the tester saw right before it killed the primary.</summary>
/// <param name="LastCounter">Last COUNTER the guest printed on the primary.</param>
/// <param name="LastAckedEpoch">Last checkpoint the backup had acked.</param>
/// <param name="Sent">Stream bytes the tester had sent.</param>
/// <param name="Received">Stream bytes the tester had received and verified.</param>
/// <param name="GuestTcp">Last "TCPSEQ rx= tx=" the guest printed on the primary.</param>
/// <param name="At">Tester time of the kill.</param>
internal sealed record KillSnapshot(long LastCounter, ulong LastAckedEpoch, long Sent, long Received, (long Rx, long Tx)? GuestTcp, TimeSpan At);
