namespace McGrpc.Shared.Qmp;

/// <summary>Settings of a <see cref="QmpClient"/>.</summary>
internal sealed class QmpClientOptions
{
    /// <summary>
    /// How long a command waits for its reply before it fails with <see cref="QmpTimeoutException"/>.
    /// Default: 10 seconds. <see cref="Timeout.InfiniteTimeSpan"/> waits forever.
    /// </summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long <see cref="QmpClient.ConnectAsync"/> may take from connect() to the end of
    /// capabilities negotiation. Default: 5 seconds. QEMU serves one QMP client at a time: a
    /// second client's connect() succeeds but it gets no greeting until the first one leaves,
    /// so this also bounds that wait.
    /// </summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many undelivered events each subscription buffers before it drops the oldest
    /// (with a warning). Default: 10,000.
    /// </summary>
    public int EventBufferCapacity { get; set; } = 10_000;

    /// <summary>
    /// The longest QMP message accepted; a longer one ends the connection. Default: 16 MiB,
    /// far above the largest replies (query-qmp-schema is about 200 KB).
    /// </summary>
    public int MaxMessageBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Throws when a setting is out of range.</summary>
    public void Validate()
    {
        CheckTimeout(CommandTimeout, nameof(CommandTimeout));
        CheckTimeout(ConnectTimeout, nameof(ConnectTimeout));
        if (EventBufferCapacity < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(EventBufferCapacity), EventBufferCapacity, "Must be at least 1.");
        }

        if (MaxMessageBytes < 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxMessageBytes), MaxMessageBytes, "Must be at least 4096.");
        }
    }

    internal static void CheckTimeout(TimeSpan timeout, string name)
    {
        if (timeout <= TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(name, timeout, "Must be positive or Timeout.InfiniteTimeSpan.");
        }
    }
}
