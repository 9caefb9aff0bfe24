namespace McGrpc.Primary.Tracking;

/// <summary>A dirty tracker that was not chosen, and why (for logs and status).</summary>
internal sealed record TrackerRejection(string Tracker, string Reason);
