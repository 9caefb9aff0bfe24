using Google.Protobuf;
using Grpc.Core;
using McGrpc.Fuzz;
using McGrpc.Protos.Control;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;
using McGrpc.Tests.Infrastructure;

namespace McGrpc.Tests.Security;

/// <summary>
/// A primary with a valid certificate that sends frames breaking the rules,
/// against a real mc-backup over a real incoming QEMU: each stream is refused
/// with a status that says why, and the backup QEMU's RAM file is exactly what
/// it was (the last checkpoint, or untouched).
/// </summary>
public sealed class HostilePrimaryProcessTests : IClassFixture<SecureBackup>
{
    private const int Page = FrameLimits.PageSize;
    private readonly SecureBackup _backup;

    public HostilePrimaryProcessTests(SecureBackup backup)
    {
        _backup = backup;
    }

    public static TheoryData<string, Action<Hello>> ForeignHellos => new()
    {
        { "VM id 'othervm'", h => h.VmId = "othervm" },
        { "RAM size", h => h.RamSize += Page },
        { "page size 2097152", h => h.PageSize = 2 * 1024 * 1024 },
        { "protocol version 2", h => h.ProtocolVersion = 2 },
    };

    [Theory]
    [MemberData(nameof(ForeignHellos))]
    public async Task Hello_that_does_not_match_the_backups_vm_is_refused_and_ram_is_untouched(string named, Action<Hello> corrupt)
    {
        var before = _backup.RamHash();
        var hello = _backup.Hello(Session());
        corrupt(hello);
        var image = Image(seed: 1);
        var epoch = EpochBuilder.Build(await NextFullEpochAsync(), full: true, image, Page, Enumerable.Range(0, image.Length / Page), new byte[4096]);

        var (replies, error) = await _backup.ReplicateAsync([new PrimaryFrame { Hello = hello }, .. epoch.Frames]);

        Assert.Empty(replies);
        AssertRefused(error, StatusCode.FailedPrecondition, "Hello refused", named);
        Assert.Equal(before, _backup.RamHash());
    }

    [Fact]
    public async Task Out_of_range_page_offset_is_refused_before_anything_reaches_ram()
    {
        var before = _backup.RamHash();
        var image = Image(seed: 2);
        var number = await NextFullEpochAsync();
        var frames = EpochBuilder.Build(number, full: true, image, Page, Enumerable.Range(0, image.Length / Page), new byte[4096]).As(number);
        frames[0].Pages.Runs[0].Offset = (ulong)_backup.RamSize;

        var (_, error) = await _backup.ReplicateAsync([new PrimaryFrame { Hello = _backup.Hello(Session()) }, .. frames]);

        AssertRefused(error, StatusCode.InvalidArgument, "ends beyond guest RAM");
        Assert.Equal(before, _backup.RamHash());
    }

    [Fact]
    public async Task Rejected_epochs_leave_the_checkpoint_in_ram_and_a_valid_one_still_applies()
    {
        var session = Session();
        var image = Image(seed: 3);
        var checkpoint = await ApplyFullCopyAsync(session, image);
        Assert.Equal(image, _backup.RamBytes());

        // An incremental epoch whose first chunk is sound and second runs off the end of RAM.
        var changed = (byte[])image.Clone();
        Array.Fill(changed, (byte)0x5A, 100 * Page, 300 * Page);
        var incremental = EpochBuilder.Build(checkpoint + 1, full: false, changed, Page, Enumerable.Range(100, 300), new byte[2048], chunkRawBytes: 64 * 1024);
        var offEnd = incremental.As(checkpoint + 1);
        offEnd[1].Pages.Runs[0].Offset = (ulong)_backup.RamSize - Page;
        offEnd[1].Pages.Runs[0].PageCount = 2;
        var (_, error) = await _backup.ReplicateAsync([new PrimaryFrame { Hello = _backup.Hello(session) }, .. offEnd]);
        AssertRefused(error, StatusCode.InvalidArgument, "ends beyond guest RAM");
        Assert.Equal(image, _backup.RamBytes());

        // The same epoch with a commit whose digest does not match what was sent.
        var badDigest = incremental.As(checkpoint + 1);
        var commit = badDigest[^1].Commit;
        var digest = commit.ContentDigest.ToByteArray();
        digest[0] ^= 1;
        commit.ContentDigest = ByteString.CopyFrom(digest);
        (_, error) = await _backup.ReplicateAsync([new PrimaryFrame { Hello = _backup.Hello(session) }, .. badDigest]);
        AssertRefused(error, StatusCode.InvalidArgument, "content digest differs");
        Assert.Equal(image, _backup.RamBytes());

        // A page whose LZ4 payload decodes to less than it declares.
        var shortPayload = incremental.As(checkpoint + 1);
        var chunk = shortPayload[0].Pages;
        chunk.Codec = Codec.None;
        chunk.Payload = ByteString.CopyFrom(new byte[chunk.RawLength - Page]);
        (_, error) = await _backup.ReplicateAsync([new PrimaryFrame { Hello = _backup.Hello(session) }, .. shortPayload]);
        AssertRefused(error, StatusCode.InvalidArgument, "uncompressed bytes");
        Assert.Equal(image, _backup.RamBytes());

        // The checkpoint's own epoch again: epochs must increase.
        (_, error) = await _backup.ReplicateAsync([new PrimaryFrame { Hello = _backup.Hello(session) }, .. incremental.As(checkpoint)]);
        AssertRefused(error, StatusCode.InvalidArgument, $"epoch {checkpoint + 1} is the next one", "epochs must increase");
        Assert.Equal(image, _backup.RamBytes());

        // A new primary's full copy that does not come after the checkpoint.
        var stale = EpochBuilder.Build(checkpoint, full: true, image, Page, Enumerable.Range(0, image.Length / Page), new byte[4096]);
        (_, error) = await _backup.ReplicateAsync([new PrimaryFrame { Hello = _backup.Hello(Session()) }, .. stale.Frames]);
        AssertRefused(error, StatusCode.InvalidArgument, "epochs must increase");
        Assert.Equal(image, _backup.RamBytes());

        // And the real thing is applied.
        var (replies, ok) = await _backup.ReplicateAsync([new PrimaryFrame { Hello = _backup.Hello(session) }, .. incremental.As(checkpoint + 1), Goodbye()]);
        Assert.True(ok is null, $"the valid epoch was refused: {ok?.Status}\n{_backup.Diagnostics()}");
        Assert.Equal(checkpoint + 1, replies.Single(r => r.BodyCase == BackupFrame.BodyOneofCase.Ack).Ack.Epoch);
        Assert.Equal(changed, _backup.RamBytes());
    }

    [Fact]
    public async Task Stream_that_never_sends_hello_is_closed_after_the_hello_timeout()
    {
        var started = DateTime.UtcNow;
        var (_, error) = await _backup.ReplicateAsync([], complete: false);
        AssertRefused(error, StatusCode.DeadlineExceeded, $"No Hello within {SecureBackup.HelloTimeoutMs} ms");
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Hello_comes_once()
    {
        var hello = new PrimaryFrame { Hello = _backup.Hello(Session()) };
        var (replies, error) = await _backup.ReplicateAsync([hello, hello.Clone()]);
        Assert.Equal(BackupFrame.BodyOneofCase.HelloReply, Assert.Single(replies).BodyCase);
        AssertRefused(error, StatusCode.InvalidArgument, "second Hello");
    }

    [Fact]
    public async Task First_frame_must_be_hello()
    {
        var before = _backup.RamHash();
        var image = Image(seed: 4);
        var epoch = EpochBuilder.Build(await NextFullEpochAsync(), full: true, image, Page, Enumerable.Range(0, image.Length / Page), new byte[4096]);
        var (_, error) = await _backup.ReplicateAsync(epoch.Frames);
        AssertRefused(error, StatusCode.InvalidArgument, "first frame must be Hello");
        Assert.Equal(before, _backup.RamHash());
    }

    [Fact]
    public async Task Frame_over_the_size_limit_is_refused()
    {
        var before = _backup.RamHash();
        var oversized = new PrimaryFrame
        {
            DeviceState = new DeviceStateChunk { Epoch = await NextFullEpochAsync(), Offset = 0, Data = ByteString.CopyFrom(new byte[FrameLimits.MaxFrameBytes + 4096]) },
        };
        var (_, error) = await _backup.ReplicateAsync([new PrimaryFrame { Hello = _backup.Hello(Session()) }, oversized]);
        Assert.NotNull(error);
        Assert.True(error.StatusCode is StatusCode.InvalidArgument or StatusCode.ResourceExhausted, $"unexpected {error.Status}");
        Assert.Equal(before, _backup.RamHash());
        await Wait.UntilAsync(() => _backup.Daemon.OutputContains("larger than the 1,048,576-byte limit"), TimeSpan.FromSeconds(10), () => _backup.Diagnostics());
    }

    /// <summary>A RAM image: every eighth page holds a pattern of its number and the seed, the rest is zero.</summary>
    private byte[] Image(int seed)
    {
        var image = new byte[_backup.RamSize];
        for (var page = 0; page < image.Length / Page; page += 8)
        {
            image.AsSpan(page * Page, Page).Fill((byte)((page / 8) + seed));
            BitConverter.TryWriteBytes(image.AsSpan(page * Page), page * 31 + seed);
        }

        return image;
    }

    private async Task<ulong> ApplyFullCopyAsync(string session, byte[] image)
    {
        var number = await NextFullEpochAsync();
        var epoch = EpochBuilder.Build(number, full: true, image, Page, Enumerable.Range(0, image.Length / Page), new byte[8192]);
        var (replies, error) = await _backup.ReplicateAsync([new PrimaryFrame { Hello = _backup.Hello(session) }, .. epoch.Frames, Goodbye()]);
        Assert.True(error is null, $"the full copy was refused: {error?.Status}\n{_backup.Diagnostics()}");
        Assert.Equal(number, replies.Single(r => r.BodyCase == BackupFrame.BodyOneofCase.Ack).Ack.Epoch);
        return number;
    }

    /// <summary>A full-copy epoch number above anything the backup applied.</summary>
    private async Task<ulong> NextFullEpochAsync()
    {
        var status = await _backup.Control.QueryStatusAsync(new QueryStatusRequest());
        return status.LastAppliedEpoch + 10;
    }

    private void AssertRefused(RpcException? error, StatusCode code, params string[] says)
    {
        Assert.True(error is not null, $"the backup accepted the stream.\n{_backup.Diagnostics()}");
        Assert.True(error.StatusCode == code, $"expected {code}, got {error.Status}");
        foreach (var part in says)
        {
            Assert.Contains(part, error.Status.Detail, StringComparison.Ordinal);
        }
    }

    private static string Session() => Guid.NewGuid().ToString("N");

    private static PrimaryFrame Goodbye() => new() { Goodbye = new Goodbye { Reason = "test done" } };
}
