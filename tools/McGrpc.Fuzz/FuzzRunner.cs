using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Google.Protobuf;
using McGrpc.Shared.Frames;

namespace McGrpc.Fuzz;

/// <summary>
/// Runs streams against in-process backups, one per worker thread, each
/// carrying its checkpoint from stream to stream as mc-backup does across
/// sessions. A watchdog turns a stream that takes longer than the limit into
/// a hang. Stream i of a run depends only on (seed, i) and on the streams the
/// same worker ran before it, so a run is reproduced by its seed, worker
/// count and RAM size.
/// </summary>
internal sealed partial class FuzzRunner
{
    private readonly FuzzOptions _options;
    private readonly Action<string> _log;
    private readonly long[] _streamStarted;
    private readonly long[] _streamIndex;
    private readonly FuzzReport[] _reports;
    private readonly Lock _failureLock = new();
    private volatile bool _stop;
    private FuzzReport? _failure;

    private FuzzRunner(FuzzOptions options, Action<string> log)
    {
        _options = options;
        _log = log;
        _streamStarted = new long[options.Workers];
        _streamIndex = new long[options.Workers];
        _reports = new FuzzReport[options.Workers];
    }

    public static FuzzReport Run(FuzzOptions options, Action<string>? log = null, CancellationToken cancellationToken = default)
        => new FuzzRunner(options, log ?? (_ => { })).RunCore(cancellationToken);

    /// <summary>The seed of stream <paramref name="index"/> of a run.</summary>
    public static int StreamSeed(int seed, long index) => HashCode.Combine(seed, index);

    private FuzzReport RunCore(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        EpochCorpus? recorded = null;
        if (_options.RecordRam is { } ramFile)
        {
            _log($"recording {_options.RecordEpochs} epochs from {ramFile} at 0x{_options.RecordOffset:x} ...");
            recorded = EpochCorpus.Record(ramFile, _options.RecordOffset, _options.RamSize, FrameLimits.PageSize, new Random(_options.Seed), _options.RecordEpochs, TimeSpan.FromMilliseconds(_options.RecordIntervalMs));
        }

        var threads = new Thread[_options.Workers];
        for (var w = 0; w < threads.Length; w++)
        {
            var worker = w;
            Volatile.Write(ref _streamIndex[worker], -1);
            threads[w] = new Thread(() => Work(worker, recorded)) { IsBackground = true, Name = $"fuzz-{worker}" };
            threads[w].Start();
        }

        var deadline = _options.Minutes is { } minutes ? started + (long)(minutes * 60 * Stopwatch.Frequency) : long.MaxValue;
        var nextReport = started + (10 * Stopwatch.Frequency);
        var hung = false;
        while (threads.Any(t => t.IsAlive))
        {
            Thread.Sleep(100);
            var now = Stopwatch.GetTimestamp();
            if (now > deadline || cancellationToken.IsCancellationRequested)
            {
                _stop = true;
            }

            for (var w = 0; w < threads.Length; w++)
            {
                var since = Volatile.Read(ref _streamStarted[w]);
                var index = Volatile.Read(ref _streamIndex[w]);
                if (index >= 0 && since != 0 && Stopwatch.GetElapsedTime(since, now).TotalMilliseconds > _options.StreamTimeoutMs)
                {
                    Fail(new FuzzReport { Seed = _options.Seed }, $"stream {index} (worker {w}) still runs after {_options.StreamTimeoutMs} ms: the backup hangs", index, null, hang: true);
                    hung = true;
                }
            }

            if (hung)
            {
                // A hung thread cannot be stopped; report without it.
                break;
            }

            if (now > nextReport)
            {
                nextReport = now + (10 * Stopwatch.Frequency);
                var done = _streamIndex.Sum(i => Math.Max(0, i));
                _log($"  ... about {done:#,0} streams, {Stopwatch.GetElapsedTime(started).TotalSeconds:F0} s");
            }
        }

        var report = new FuzzReport { Seed = _options.Seed, Workers = _options.Workers };
        foreach (var part in _reports)
        {
            if (part is not null)
            {
                report.Add(part);
                report.CorpusSource = part.CorpusSource;
            }
        }

        report.Elapsed = Stopwatch.GetElapsedTime(started);
        if (_failure is not null)
        {
            report.Failure = _failure.Failure;
            report.FailureFile = _failure.FailureFile;
            report.Hang = _failure.Hang;
        }

        return report;
    }

    private void Work(int worker, EpochCorpus? recorded)
    {
        var report = new FuzzReport { Seed = _options.Seed, Workers = _options.Workers };
        _reports[worker] = report;
        using var backup = new BackupModel(_options.RamSize);
        var corpus = recorded ?? EpochCorpus.Generate(_options.RamSize, FrameLimits.PageSize, new Random(StreamSeed(_options.Seed, -1 - worker)));
        report.CorpusSource = $"{corpus.Source}: {corpus.FullCopies.Count} full copies, {corpus.Incrementals.Count} incremental epochs, {corpus.FrameCount} frames";
        var factory = new StreamFactory(corpus, _options.RamSize, FrameLimits.PageSize);
        for (long index = worker; !_stop && (_options.Streams is not { } limit || index < limit); index += _options.Workers)
        {
            var random = new Random(StreamSeed(_options.Seed, index));
            FuzzStream stream;
            try
            {
                stream = factory.Next(random, backup);
            }
            catch (Exception e)
            {
                Fail(report, $"stream {index} (worker {worker}): the fuzzer itself failed to build it: {e}", index, null, hang: false);
                return;
            }

            Volatile.Write(ref _streamStarted[worker], Stopwatch.GetTimestamp());
            Volatile.Write(ref _streamIndex[worker], index);
            try
            {
                var result = backup.Receive(stream.Frames);
                var commits = stream.Frames.Count(f => f.BodyCase == Protos.Replication.PrimaryFrame.BodyOneofCase.Commit);
                if (stream.MustBeAccepted && (result.Rejection is not null || result.EpochsApplied != commits))
                {
                    throw new FuzzInvariantException($"a valid stream was not applied whole ({result.EpochsApplied} of {commits} epochs): {result.Rejection ?? "no rejection"}");
                }

                Count(report, stream, result);
            }
            catch (FuzzInvariantException e)
            {
                Fail(report, $"stream {index} (worker {worker}, {stream.Kind}, mutations: {stream.Mutations}): {e.Message}", index, stream, hang: false);
                return;
            }
            finally
            {
                Volatile.Write(ref _streamStarted[worker], 0);
            }
        }
    }

    private static void Count(FuzzReport report, FuzzStream stream, StreamResult result)
    {
        report.Streams++;
        switch (stream.Kind)
        {
            case "valid":
                report.ValidStreams++;
                break;
            case "mutated":
                report.MutatedStreams++;
                break;
            default:
                report.RandomStreams++;
                break;
        }

        report.EpochsApplied += result.EpochsApplied;
        if (result.Rejection is not null)
        {
            report.RejectedStreams++;
            report.EpochsRejected += result.RejectedEpochs;
            if (result.HelloRefused)
            {
                report.HellosRefused++;
            }

            var reason = Numbers().Replace(result.Rejection, "#");
            reason = reason.Length > 110 ? reason[..110] : reason;
            report.Rejections[reason] = report.Rejections.GetValueOrDefault(reason) + 1;
        }
        else if (result.PartialEpochDiscarded)
        {
            report.EpochsDiscarded++;
        }
    }

    private void Fail(FuzzReport report, string failure, long index, FuzzStream? stream, bool hang)
    {
        lock (_failureLock)
        {
            _stop = true;
            if (_failure is not null)
            {
                return;
            }

            report.Failure = failure;
            report.Hang = hang;
            if (stream is not null)
            {
                try
                {
                    Directory.CreateDirectory(_options.FailureDirectory);
                    var path = Path.Combine(_options.FailureDirectory, $"mc-fuzz-failure-{_options.Seed.ToString(CultureInfo.InvariantCulture)}-{index.ToString(CultureInfo.InvariantCulture)}.frames");
                    using var file = File.Create(path);
                    foreach (var frame in stream.Frames)
                    {
                        frame.WriteDelimitedTo(file);
                    }

                    report.FailureFile = path;
                }
                catch (IOException e)
                {
                    report.Failure += $" (could not save the stream: {e.Message})";
                }
            }

            _failure = report;
            _log($"FAIL: {failure}");
        }
    }

    [GeneratedRegex("[0-9][0-9,]*")]
    private static partial Regex Numbers();
}
