namespace McGrpc.Backup;

internal static class Program
{
    public static int Main() => 0;
}
