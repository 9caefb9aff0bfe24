using System.Runtime.InteropServices;
using System.Text;

namespace McGrpc.Shared.Native.Netlink;

/// <summary>
/// Builds one netlink request: the nlmsghdr, a family header (tcmsg or
/// ifinfomsg) and attributes, each padded to 4 bytes as NLMSG_ALIGN and
/// NLA_ALIGN require. Integers are written in host byte order, as the kernel
/// reads them. Nested attributes are opened and closed like a stack.
/// </summary>
internal sealed class NetlinkMessageWriter
{
    private const int Alignment = 4;

    private byte[] _buffer;
    private int _length;

    public NetlinkMessageWriter(ushort type, ushort flags, uint sequence, int capacity = 128)
    {
        _buffer = new byte[Math.Max(capacity, NetlinkConstants.HeaderLength)];
        WriteUInt32(0); // nlmsg_len, patched by ToArray
        WriteUInt16(type);
        WriteUInt16(flags);
        WriteUInt32(sequence);
        WriteUInt32(0); // nlmsg_pid: 0 means "the kernel"
    }

    /// <summary>struct tcmsg: family AF_UNSPEC, three bytes of padding, then the four fields.</summary>
    public void WriteTcMessage(int interfaceIndex, uint handle, uint parent, uint info)
    {
        WriteUInt32(0); // tcm_family, tcm__pad1, tcm__pad2
        WriteUInt32((uint)interfaceIndex);
        WriteUInt32(handle);
        WriteUInt32(parent);
        WriteUInt32(info);
    }

    /// <summary>struct ifinfomsg: family AF_UNSPEC, padding, type 0, then index, flags and change mask.</summary>
    public void WriteIfInfoMessage(int interfaceIndex, uint flags, uint change)
    {
        WriteUInt32(0); // ifi_family, __ifi_pad, ifi_type
        WriteUInt32((uint)interfaceIndex);
        WriteUInt32(flags);
        WriteUInt32(change);
    }

    public void WriteAttribute(ushort type, ReadOnlySpan<byte> payload)
    {
        WriteUInt16(checked((ushort)(NetlinkConstants.AttributeHeaderLength + payload.Length)));
        WriteUInt16(type);
        payload.CopyTo(Reserve(payload.Length));
        Pad();
    }

    public void WriteAttribute(ushort type, uint value)
    {
        Span<byte> payload = stackalloc byte[4];
        MemoryMarshal.Write(payload, in value);
        WriteAttribute(type, payload);
    }

    /// <summary>A NUL-terminated string attribute (NLA_STRING as iproute2 sends it).</summary>
    public void WriteAttribute(ushort type, string value)
    {
        var bytes = Encoding.ASCII.GetByteCount(value);
        Span<byte> payload = stackalloc byte[bytes + 1];
        Encoding.ASCII.GetBytes(value, payload);
        payload[bytes] = 0;
        WriteAttribute(type, payload);
    }

    /// <summary>Opens a nested attribute; returns the token for <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type, bool markNested = false)
    {
        var start = _length;
        WriteUInt16(0); // nla_len, patched by EndNested
        WriteUInt16(markNested ? (ushort)(type | NetlinkConstants.NlaFNested) : type);
        return start;
    }

    /// <summary>
    /// Closes a nested attribute. Its length covers every inner attribute
    /// including the padding of the last one, as the kernel's nla_nest_end does.
    /// </summary>
    public void EndNested(int token)
    {
        MemoryMarshal.Write(_buffer.AsSpan(token, 2), checked((ushort)(_length - token)));
    }

    /// <summary>The finished message with nlmsg_len filled in.</summary>
    public byte[] ToArray()
    {
        var length = (uint)_length;
        MemoryMarshal.Write(_buffer.AsSpan(0, 4), in length);
        return _buffer.AsSpan(0, _length).ToArray();
    }

    private void WriteUInt16(ushort value) => MemoryMarshal.Write(Reserve(2), in value);

    private void WriteUInt32(uint value) => MemoryMarshal.Write(Reserve(4), in value);

    private void Pad()
    {
        var padding = Align(_length) - _length;
        Reserve(padding).Clear();
    }

    private Span<byte> Reserve(int count)
    {
        if (_length + count > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + count));
        }

        var span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }

    internal static int Align(int length) => (length + Alignment - 1) & ~(Alignment - 1);
}
