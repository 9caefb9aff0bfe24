namespace McGrpc.Fuzz;

internal static class Program
{
    public static int Main(string[] args)
    {
        var options = FuzzOptions.Parse(args, out var message);
        if (options is null)
        {
            var help = message == FuzzOptions.Usage;
            (help ? Console.Out : Console.Error).WriteLine(message);
            return help ? 0 : 64;
        }

        Console.WriteLine($"mc-fuzz: seed {options.Seed}, {options.Workers} worker(s), {options.RamKiB} KiB RAM each, {(options.Streams is { } n ? $"{n:#,0} streams" : "no stream limit")}{(options.Minutes is { } m ? $", {m} min" : string.Empty)}");
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        var report = FuzzRunner.Run(options, Console.WriteLine, cancel.Token);
        Console.Write(report.ToString());
        if (report.Hang)
        {
            // The hung worker cannot be stopped; leave without waiting for it.
            Console.Out.Flush();
            Environment.Exit(2);
        }

        return report.Failure is null ? 0 : 1;
    }
}
