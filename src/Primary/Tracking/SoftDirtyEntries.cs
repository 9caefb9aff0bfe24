using McGrpc.Shared.Native;

namespace McGrpc.Primary.Tracking;

/// <summary>Decoding of /proc/&lt;pid&gt;/pagemap entries for the soft-dirty tracker.</summary>
internal static class SoftDirtyEntries
{
    private const ulong SoftDirty = 1UL << Pagemap.EntrySoftDirtyBit;

    /// <summary>
    /// Bit 55: the page was written since the last clear_refs 4. The kernel
    /// keeps it for present and swapped pages alike, and reports it for pages of
    /// a mapping created since the last clear (VM_SOFTDIRTY), so it is read
    /// whatever the present/swap bits say.
    /// </summary>
    public static bool IsSoftDirty(ulong entry) => (entry & SoftDirty) != 0;

    /// <summary>
    /// Appends the soft-dirty pages among <paramref name="entries"/> (one per host
    /// page, the first being host page <paramref name="firstHostPage"/> of the RAM
    /// mapping) to <paramref name="runs"/> in pages of <paramref name="hostPagesPerPage"/> host pages.
    /// </summary>
    public static void AddDirtyRuns(ReadOnlySpan<ulong> entries, long firstHostPage, int hostPagesPerPage, DirtyPageRuns runs)
    {
        var index = 0;
        while (index < entries.Length)
        {
            if (!IsSoftDirty(entries[index]))
            {
                index++;
                continue;
            }

            var runStart = index;
            while (index < entries.Length && IsSoftDirty(entries[index]))
            {
                index++;
            }

            runs.AddCovering((firstHostPage + runStart) / hostPagesPerPage, (firstHostPage + index + hostPagesPerPage - 1) / hostPagesPerPage);
        }
    }
}
