namespace McGrpc.Primary.Engine;

/// <summary>Why a control request was refused.</summary>
internal enum ControlErrorKind
{
    /// <summary>The request itself is wrong (unknown name, value out of range, malformed target).</summary>
    InvalidArgument,

    /// <summary>The request is fine but the daemon's state does not allow it now.</summary>
    FailedPrecondition,
}
