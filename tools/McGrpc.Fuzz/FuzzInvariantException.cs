namespace McGrpc.Fuzz;

/// <summary>The backup broke one of the fuzzer's invariants: a bug to fix, with the stream that shows it.</summary>
internal sealed class FuzzInvariantException : Exception
{
    public FuzzInvariantException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}
