namespace McGrpc.Primary.Tracking;

/// <summary>The chosen tracker (owned by the caller, not yet started) and why each other one was not chosen.</summary>
internal sealed record DirtyTrackerSelection(IDirtyTracker Tracker, IReadOnlyList<TrackerRejection> Rejected);
