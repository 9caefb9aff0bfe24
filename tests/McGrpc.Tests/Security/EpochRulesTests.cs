using McGrpc.Backup.Replication;
using McGrpc.Protos.Replication;
using McGrpc.Shared.Frames;

namespace McGrpc.Tests.Security;

/// <summary>The session rules of the backup: Hello describes its VM, comes once, and epoch numbers only go up.</summary>
public sealed class EpochRulesTests
{
    private const long RamSize = 64L * 1024 * 1024;

    public static TheoryData<string, Action<Hello>, string> BadHellos => new()
    {
        { "another VM", h => h.VmId = "other", "VM id 'other'" },
        { "other RAM size", h => h.RamSize = RamSize * 2, "RAM size 134,217,728 bytes" },
        { "huge pages", h => h.PageSize = 2 * 1024 * 1024, "page size 2097152" },
        { "newer protocol", h => h.ProtocolVersion = FrameLimits.ProtocolVersion + 1, "protocol version 2" },
        { "no session id", h => h.SessionId = string.Empty, "session id" },
        { "session id with a newline", h => h.SessionId = "abc\ndef", "session id" },
        { "session id too long", h => h.SessionId = new string('a', EpochRules.MaxSessionIdLength + 1), "session id" },
        { "VM id that forges a log line", h => h.VmId = "x\n12:00:00 info: forged", "VM id 'x?12:00:00 info: forged'" },
    };

    [Fact]
    public void Hello_of_this_vm_opens_a_session()
        => Assert.Empty(EpochRules.HelloProblems(Hello(), "vm", RamSize, FrameLimits.PageSize));

    [Theory]
    [MemberData(nameof(BadHellos))]
    public void Hello_that_does_not_describe_this_backups_vm_is_refused(string name, Action<Hello> corrupt, string says)
    {
        var hello = Hello();
        corrupt(hello);
        var problems = EpochRules.HelloProblems(hello, "vm", RamSize, FrameLimits.PageSize);
        Assert.True(problems.Count == 1, $"{name}: {string.Join("; ", problems)}");
        Assert.Contains(says, problems[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Hello_comes_only_once()
    {
        var error = Assert.Throws<FrameFormatException>(() => EpochRules.EpochOf(new PrimaryFrame { Hello = Hello() }));
        Assert.Contains("second Hello", error.Message, StringComparison.Ordinal);
        Assert.Throws<FrameFormatException>(() => EpochRules.EpochOf(new PrimaryFrame()));
        Assert.Null(EpochRules.EpochOf(new PrimaryFrame { Heartbeat = new Heartbeat() }));
        Assert.Equal(7ul, EpochRules.EpochOf(new PrimaryFrame { Commit = new Commit { Epoch = 7 } }));
    }

    [Theory]
    [InlineData(11ul, false, 10ul, false)]
    [InlineData(12ul, false, 10ul, true)]
    [InlineData(11ul, true, 10ul, true)]
    [InlineData(500ul, true, 10ul, true)]
    [InlineData(0ul, true, null, true)]
    public void Epoch_after_the_checkpoint_opens(ulong epoch, bool expectFull, ulong? lastApplied, bool full)
        => Assert.Equal(full ? EpochKind.Full : EpochKind.Incremental, EpochRules.Open(epoch, expectFull, lastApplied));

    [Theory]
    [InlineData(10ul, false, 10ul, "is the next one")]
    [InlineData(9ul, false, 10ul, "epochs must increase")]
    [InlineData(0ul, false, 10ul, "epochs must increase")]
    [InlineData(10ul, true, 10ul, "epochs must increase")]
    [InlineData(3ul, true, 10ul, "epochs must increase")]
    [InlineData(1ul, false, null, "holds no checkpoint")]
    [InlineData(ulong.MaxValue, true, 10ul, "out of range")]
    [InlineData(ulong.MaxValue, false, ulong.MaxValue - 1, "out of range")]
    public void Epoch_numbers_strictly_increase(ulong epoch, bool expectFull, ulong? lastApplied, string says)
    {
        var error = Assert.Throws<FrameFormatException>(() => EpochRules.Open(epoch, expectFull, lastApplied));
        Assert.Contains(says, error.Message, StringComparison.Ordinal);
    }

    private static Hello Hello() => new()
    {
        ProtocolVersion = FrameLimits.ProtocolVersion,
        VmId = "vm",
        RamSize = RamSize,
        PageSize = FrameLimits.PageSize,
        SessionId = "0123456789abcdef0123456789abcdef",
    };
}
