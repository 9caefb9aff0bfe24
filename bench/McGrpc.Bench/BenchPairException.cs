namespace McGrpc.Bench;

/// <summary>A pair that did not reach "protected": <see cref="Reason"/> is the primary's state reason (or what ended it).</summary>
internal sealed class BenchPairException : Exception
{
    public BenchPairException(string reason, string diagnostics)
        : base($"not protected: {reason}\n{diagnostics}")
    {
        Reason = reason;
    }

    public string Reason { get; }
}
