namespace McGrpc.Fuzz;

/// <summary>How the in-process backup ended one stream.</summary>
internal sealed class StreamResult
{
    /// <summary>Frames the backup read, including the one it refused.</summary>
    public int FramesRead { get; set; }

    /// <summary>Why the backup closed the stream, or null when the stream ended by itself.</summary>
    public string? Rejection { get; set; }

    public bool HelloRefused { get; set; }

    public int EpochsOpened { get; set; }

    public int EpochsApplied { get; set; }

    /// <summary>Epochs open when a frame was refused: refused whole.</summary>
    public int RejectedEpochs { get; set; }

    /// <summary>An epoch was still open when the stream ended (rejected or not): discarded.</summary>
    public bool PartialEpochDiscarded { get; set; }

    public bool Goodbye { get; set; }
}
