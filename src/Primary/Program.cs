namespace McGrpc.Primary;

internal static class Program
{
    public static int Main() => 0;
}
