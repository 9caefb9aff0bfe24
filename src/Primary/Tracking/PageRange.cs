namespace McGrpc.Primary.Tracking;

/// <summary>Consecutive guest pages [FirstPage, FirstPage + PageCount).</summary>
internal readonly record struct PageRange(long FirstPage, long PageCount)
{
    public long EndPage => FirstPage + PageCount;
}
