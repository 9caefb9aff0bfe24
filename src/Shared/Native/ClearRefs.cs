namespace McGrpc.Shared.Native;

/// <summary>/proc/&lt;pid&gt;/clear_refs.</summary>
internal static class ClearRefs
{
    /// <summary>
    /// Writes "4": clears the soft-dirty bit of every page of the process and
    /// write-protects them so the next write sets it again. Accepted even by
    /// kernels built without CONFIG_MEM_SOFT_DIRTY, where it does nothing.
    /// </summary>
    public static void ClearSoftDirty(int processId)
    {
        try
        {
            File.WriteAllText($"/proc/{processId}/clear_refs", "4");
        }
        catch (IOException e)
        {
            throw new McGrpcException($"Writing 4 to /proc/{processId}/clear_refs failed: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new McGrpcException($"Writing 4 to /proc/{processId}/clear_refs is not allowed: {e.Message}", e);
        }
    }
}
