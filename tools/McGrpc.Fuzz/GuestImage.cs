using System.Buffers.Binary;
using System.Text;

namespace McGrpc.Fuzz;

/// <summary>
/// A guest RAM image that looks like a small Linux guest's to the codec:
/// free (zero) pages, code-like bytes, page tables, text, heap words with
/// kernel pointers, incompressible data and fills, in runs of pages; and
/// <see cref="Dirty"/>, which changes it the way a running guest does between
/// two stops (counters, rewritten buffers, freed and newly used pages, in
/// clusters). Deterministic for a given <see cref="Random"/>.
/// </summary>
internal sealed class GuestImage
{
    private static readonly string[] Words =
    [
        "kernel", "task", "mm", "page", "inode", "dentry", "socket", "tcp", "buffer", "counter",
        "memverify", "virtio", "e1000", "init", "busybox", "lib", "usr", "proc", "sys", "epoch",
    ];

    // Bytes frequent in x86-64 code: REX prefixes, mov, call, jumps, int3 padding.
    private static readonly byte[] CodeBytes = [0x48, 0x89, 0x8b, 0xe8, 0x0f, 0x84, 0x85, 0x74, 0x75, 0xc3, 0x55, 0x41, 0x5d, 0xcc, 0x00, 0xff, 0x24, 0x44];

    private readonly Random _random;
    private readonly PageKind[] _kinds;

    public GuestImage(int pages, int pageSize, Random random)
    {
        PageSize = pageSize;
        Bytes = new byte[(long)pages * pageSize];
        _random = random;
        _kinds = new PageKind[pages];
        var page = 0;
        while (page < pages)
        {
            var kind = PickKind();
            var run = Math.Min(pages - page, 1 + _random.Next(kind == PageKind.Zero ? 64 : 16));
            for (var i = 0; i < run; i++)
            {
                _kinds[page + i] = kind;
                Fill(page + i, kind);
            }

            page += run;
        }
    }

    private enum PageKind
    {
        Zero,
        Code,
        PageTable,
        Text,
        Heap,
        Random,
        Fill,
    }

    public int PageSize { get; }

    public int PageCount => _kinds.Length;

    public byte[] Bytes { get; }

    /// <summary>
    /// Changes the image like a guest running for one epoch and returns the
    /// pages it wrote (sorted, distinct). Most epochs touch a few pages; now
    /// and then one rewrites a large area.
    /// </summary>
    public IReadOnlyList<int> Dirty()
    {
        var dirty = new SortedSet<int>();
        var large = _random.Next(20) == 0;
        var clusters = large ? 1 + _random.Next(3) : 1 + _random.Next(6);
        for (var c = 0; c < clusters; c++)
        {
            var length = large ? 1 + _random.Next(Math.Max(1, PageCount / 4)) : 1 + _random.Next(_random.Next(4) == 0 ? 64 : 8);
            var start = _random.Next(PageCount);
            for (var page = start; page < Math.Min(PageCount, start + length); page++)
            {
                Change(page);
                dirty.Add(page);
            }
        }

        return [.. dirty];
    }

    private void Change(int page)
    {
        switch (_random.Next(6))
        {
            case 0:
                // A counter or a list pointer: a few words change.
                var span = Page(page);
                for (var i = 0; i < 1 + _random.Next(4); i++)
                {
                    var at = _random.Next(PageSize / 8) * 8;
                    BinaryPrimitives.WriteUInt64LittleEndian(span[at..], BinaryPrimitives.ReadUInt64LittleEndian(span[at..]) + 1);
                }

                break;
            case 1:
                // Freed.
                _kinds[page] = PageKind.Zero;
                Page(page).Clear();
                break;
            case 2:
                // Newly used.
                _kinds[page] = PickKind(allowZero: false);
                Fill(page, _kinds[page]);
                break;
            default:
                // Rewritten with fresh content of its kind (a buffer, a heap page).
                Fill(page, _kinds[page] == PageKind.Zero ? PageKind.Heap : _kinds[page]);
                break;
        }
    }

    private PageKind PickKind(bool allowZero = true)
    {
        var roll = _random.Next(100);
        return roll switch
        {
            < 40 when allowZero => PageKind.Zero,
            < 50 => PageKind.Code,
            < 56 => PageKind.PageTable,
            < 68 => PageKind.Text,
            < 88 => PageKind.Heap,
            < 95 => PageKind.Random,
            _ => PageKind.Fill,
        };
    }

    private Span<byte> Page(int page) => Bytes.AsSpan(page * PageSize, PageSize);

    private void Fill(int page, PageKind kind)
    {
        var span = Page(page);
        span.Clear();
        switch (kind)
        {
            case PageKind.Zero:
                break;
            case PageKind.Code:
                for (var i = 0; i < span.Length; i++)
                {
                    span[i] = _random.Next(4) == 0 ? (byte)_random.Next(256) : CodeBytes[_random.Next(CodeBytes.Length)];
                }

                break;
            case PageKind.PageTable:
                for (var i = 0; i < span.Length; i += 8)
                {
                    if (_random.Next(3) == 0)
                    {
                        var entry = ((ulong)_random.Next(1 << 20) << 12) | 0x63;
                        BinaryPrimitives.WriteUInt64LittleEndian(span[i..], entry);
                    }
                }

                break;
            case PageKind.Text:
                var text = new StringBuilder();
                while (text.Length < span.Length)
                {
                    text.Append(Words[_random.Next(Words.Length)]).Append(_random.Next(5) == 0 ? '\n' : ' ');
                    if (_random.Next(8) == 0)
                    {
                        text.Append(_random.Next(100000));
                    }
                }

                Encoding.ASCII.GetBytes(text.ToString(0, span.Length), span);
                break;
            case PageKind.Heap:
                for (var i = 0; i < span.Length; i += 8)
                {
                    var word = _random.Next(4) switch
                    {
                        0 => 0UL,
                        1 => 0xffff888000000000UL | ((ulong)_random.Next() << 6),
                        2 => (ulong)_random.Next(1000),
                        _ => (ulong)_random.NextInt64(),
                    };
                    BinaryPrimitives.WriteUInt64LittleEndian(span[i..], word);
                }

                break;
            case PageKind.Random:
                _random.NextBytes(span);
                break;
            case PageKind.Fill:
                span.Fill((byte)_random.Next(1, 256));
                break;
        }
    }
}
