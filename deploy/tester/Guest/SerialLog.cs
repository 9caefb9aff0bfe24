using System.Globalization;
using System.Text;

namespace McGrpc.ComposeTester.Guest;

/// <summary>
/// The test guest's serial console as written by one host's QEMU
/// (chardev file). Lines end in "\n"; a last line without one is still
/// being written and is ignored.
/// </summary>
internal sealed class SerialLog
{
    private readonly string _path;

    public SerialLog(string path)
    {
        _path = path;
    }

    public string Path => _path;

    public IReadOnlyList<string> ReadLines()
    {
        if (!File.Exists(_path))
        {
            return [];
        }

        using var stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var text = reader.ReadToEnd();
        var end = text.LastIndexOf('\n');
        if (end < 0)
        {
            return [];
        }

        return text[..end].Split('\n');
    }

    public bool Contains(string line) => ReadLines().Any(l => l == line);

    public IEnumerable<string> StartingWith(string prefix) => ReadLines().Where(l => l.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>Values of the "COUNTER n" lines, in order.</summary>
    public IReadOnlyList<long> Counters()
    {
        var values = new List<long>();
        foreach (var line in StartingWith("COUNTER "))
        {
            if (long.TryParse(line.AsSpan("COUNTER ".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                values.Add(n);
            }
        }

        return values;
    }

    /// <summary>The last "TCPSEQ rx=.. tx=.." (or "TCPSEQ closed rx=.. tx=..") the guest printed.</summary>
    public (long Rx, long Tx)? LastTcpSeq()
    {
        (long, long)? last = null;
        foreach (var line in StartingWith("TCPSEQ "))
        {
            long? rx = null, tx = null;
            foreach (var word in line.Split(' '))
            {
                if (word.StartsWith("rx=", StringComparison.Ordinal) && long.TryParse(word.AsSpan(3), CultureInfo.InvariantCulture, out var r))
                {
                    rx = r;
                }
                else if (word.StartsWith("tx=", StringComparison.Ordinal) && long.TryParse(word.AsSpan(3), CultureInfo.InvariantCulture, out var t))
                {
                    tx = t;
                }
            }

            if (rx is { } a && tx is { } b)
            {
                last = (a, b);
            }
        }

        return last;
    }

    /// <summary>Lines that report a broken guest: memory or stream verification errors, workload crashes.</summary>
    public IReadOnlyList<string> Problems() =>
        ReadLines().Where(l =>
            l.StartsWith("MEMVERIFY VIOLATION", StringComparison.Ordinal)
            || l.StartsWith("TCPSEQ ERROR", StringComparison.Ordinal)
            || l.StartsWith("GUEST WARNING", StringComparison.Ordinal)
            || l.StartsWith("WORKLOAD ", StringComparison.Ordinal)
            || l.Contains(" FATAL", StringComparison.Ordinal)).ToList();
}
