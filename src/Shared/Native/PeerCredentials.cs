namespace McGrpc.Shared.Native;

/// <summary>The process at the other end of a unix socket, as the kernel recorded it.</summary>
/// <param name="Pid">Process id of the peer.</param>
/// <param name="Uid">Effective user id of the peer.</param>
/// <param name="Gid">Effective group id of the peer.</param>
internal readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid);
