using McGrpc.Protos.Replication;

namespace McGrpc.Fuzz;

/// <summary>One replication stream to feed the backup.</summary>
/// <param name="Kind">valid, mutated or random.</param>
/// <param name="Frames">The frames, Hello (or not) first.</param>
/// <param name="MustBeAccepted">A valid stream: the backup must apply every epoch of it.</param>
/// <param name="Mutations">What was done to it, for a failure report.</param>
internal sealed record FuzzStream(string Kind, List<PrimaryFrame> Frames, bool MustBeAccepted, string Mutations);
