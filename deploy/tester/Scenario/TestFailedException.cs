namespace McGrpc.ComposeTester.Scenario;

/// <summary>A check of the compose test failed; the message says what was expected and what was seen.</summary>
internal sealed class TestFailedException : Exception
{
    public TestFailedException(string message)
        : base(message)
    {
    }

    public TestFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public TestFailedException()
    {
    }
}
