using McGrpc.Primary.Output;

namespace McGrpc.Primary.Engine;

internal sealed partial class PrimaryEngine
{
    private Task<IOutputBuffer?> CreateOutputBufferAsync(CancellationToken cancellationToken)
    {
        _ = cancellationToken;
        return _options.OutputBuffer switch
        {
            "none" => Task.FromResult<IOutputBuffer?>(null),
            _ => throw new ControlException(ControlErrorKind.FailedPrecondition, $"Output buffer '{_options.OutputBuffer}' is not available in this build."),
        };
    }
}
