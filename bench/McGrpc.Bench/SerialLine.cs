namespace McGrpc.Bench;

/// <summary>One serial-console line and the <see cref="System.Diagnostics.Stopwatch"/> timestamp at which the host saw it.</summary>
internal readonly record struct SerialLine(long At, string Text);
