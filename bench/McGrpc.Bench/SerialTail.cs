using System.Diagnostics;
using System.Text;

namespace McGrpc.Bench;

/// <summary>
/// Follows a guest's serial log and stamps every line with the host time it
/// appeared (polled every few ms). The stamps matter because the guest's own
/// clock stops while QEMU is stopped: a checkpoint pause is invisible to the
/// guest's "per second" numbers, but not to the host's clock.
/// </summary>
internal sealed class SerialTail : IAsyncDisposable
{
    private readonly string _path;
    private readonly List<SerialLine> _lines = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly StringBuilder _partial = new();
    private long _offset;

    public SerialTail(string path, int pollMs = 5)
    {
        _path = path;
        _loop = Task.Run(() => FollowAsync(pollMs, _stop.Token));
    }

    /// <summary>Lines seen so far, with <see cref="Stopwatch"/> timestamps.</summary>
    public List<SerialLine> Snapshot()
    {
        lock (_lines)
        {
            return [.. _lines];
        }
    }

    /// <summary>Lines that appeared between two <see cref="Stopwatch"/> timestamps.</summary>
    public List<SerialLine> Between(long from, long to) => Snapshot().Where(l => l.At >= from && l.At <= to).ToList();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private async Task FollowAsync(int pollMs, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        while (!cancellationToken.IsCancellationRequested)
        {
            ReadNew(buffer);
            await Task.Delay(pollMs, cancellationToken);
        }
    }

    private void ReadNew(byte[] buffer)
    {
        try
        {
            using var stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (stream.Length <= _offset)
            {
                return;
            }

            stream.Position = _offset;
            int read;
            while ((read = stream.Read(buffer)) > 0)
            {
                _offset += read;
                var now = Stopwatch.GetTimestamp();
                _partial.Append(Encoding.ASCII.GetString(buffer, 0, read));
                var text = _partial.ToString();
                var end = text.LastIndexOf('\n');
                if (end < 0)
                {
                    continue;
                }

                _partial.Clear().Append(text.AsSpan(end + 1));
                lock (_lines)
                {
                    foreach (var line in text[..end].Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    {
                        _lines.Add(new SerialLine(now, line.TrimEnd('\r')));
                    }
                }
            }
        }
        catch (FileNotFoundException)
        {
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
