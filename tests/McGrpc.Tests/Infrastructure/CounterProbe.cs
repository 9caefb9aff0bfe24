using System.Buffers.Binary;
using System.Text;
using McGrpc.Shared.Native;

namespace McGrpc.Tests.Infrastructure;

/// <summary>
/// Reads the test guest's counter straight from a guest-RAM file: the
/// "counter" workload keeps {magic "MCGRPC-COUNTER-1", value, ~value} in one
/// mlocked page (see tests/guest/README.md).
/// </summary>
internal static class CounterProbe
{
    private static readonly byte[] Magic = Encoding.ASCII.GetBytes("MCGRPC-COUNTER-1");

    /// <summary>The counter's value in <paramref name="ramFile"/>; throws unless exactly one valid marker exists.</summary>
    public static long Read(string ramFile)
    {
        var length = new FileInfo(ramFile).Length;
        using var ram = MappedMemory.MapSharedFile(ramFile, length, writable: false);
        var values = new List<long>();
        const int Window = 64 * 1024 * 1024;
        for (long offset = 0; offset < length; offset += Window)
        {
            var size = (int)Math.Min(Window + 32, length - offset);
            var span = ram.Read(offset, size);
            var at = 0;
            while (true)
            {
                var hit = span[at..].IndexOf(Magic);
                if (hit < 0 || at + hit >= Window)
                {
                    break;
                }

                var position = at + hit;
                if (position + 32 <= span.Length)
                {
                    var value = BinaryPrimitives.ReadUInt64LittleEndian(span.Slice(position + 16, 8));
                    var inverted = BinaryPrimitives.ReadUInt64LittleEndian(span.Slice(position + 24, 8));
                    if (inverted == ~value)
                    {
                        values.Add((long)value);
                    }
                }

                at = position + 1;
            }
        }

        if (values.Count != 1)
        {
            throw new InvalidOperationException($"Expected one counter marker in {ramFile}, found {values.Count} ({string.Join(", ", values)}).");
        }

        return values[0];
    }
}
