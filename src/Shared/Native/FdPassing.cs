using System.Runtime.InteropServices;
using Tmds.Linux;

namespace McGrpc.Shared.Native;

/// <summary>
/// Passing file descriptors over unix stream sockets (SCM_RIGHTS). Both calls are non-blocking
/// whatever mode the socket is in, because .NET switches a socket's blocking mode behind our
/// back when async operations run on it.
/// </summary>
internal static unsafe class FdPassing
{
    /// <summary>The most descriptors <see cref="TryReceive"/> accepts with one message.</summary>
    public const int MaxReceivedDescriptors = 8;

    /// <summary>
    /// Sends <paramref name="data"/> with <paramref name="descriptor"/> attached to its first byte.
    /// Returns false, having sent nothing, when the socket buffer is full. A partial send is
    /// possible: the descriptor went with the first byte, the caller sends the rest normally.
    /// </summary>
    public static bool TrySend(SafeHandle socket, ReadOnlySpan<byte> data, SafeHandle descriptor, out int sent)
    {
        // Linux drops the ancillary data of a zero-byte send on a stream socket.
        if (data.IsEmpty)
        {
            throw new ArgumentException("A descriptor must travel with at least one byte.", nameof(data));
        }

        var socketAdded = false;
        var descriptorAdded = false;
        socket.DangerousAddRef(ref socketAdded);
        try
        {
            descriptor.DangerousAddRef(ref descriptorAdded);
            var controlLength = LibC.CMSG_SPACE(sizeof(int));
            // long elements keep the control buffer aligned for cmsghdr.
            var control = stackalloc long[(controlLength + sizeof(long) - 1) / sizeof(long)];
            new Span<byte>(control, controlLength).Clear();

            fixed (byte* bytes = data)
            {
                iovec vector = default;
                vector.iov_base = bytes;
                vector.iov_len = data.Length;

                msghdr message = default;
                message.msg_iov = &vector;
                message.msg_iovlen = 1;
                message.msg_control = control;
                message.msg_controllen = controlLength;

                var header = LibC.CMSG_FIRSTHDR(&message);
                header->cmsg_level = LibC.SOL_SOCKET;
                header->cmsg_type = LibC.SCM_RIGHTS;
                header->cmsg_len = LibC.CMSG_LEN(sizeof(int));
                *(int*)LibC.CMSG_DATA(header) = (int)descriptor.DangerousGetHandle();

                var fd = (int)socket.DangerousGetHandle();
                while (true)
                {
                    long result = LibC.sendmsg(fd, &message, LibC.MSG_NOSIGNAL | LibC.MSG_DONTWAIT);
                    if (result >= 0)
                    {
                        sent = (int)result;
                        return true;
                    }

                    var errno = LibC.errno;
                    if (errno == Errors.EAGAIN)
                    {
                        sent = 0;
                        return false;
                    }

                    if (errno != Errors.EINTR)
                    {
                        throw new NativeException("sendmsg", errno, "SCM_RIGHTS");
                    }
                }
            }
        }
        finally
        {
            if (descriptorAdded)
            {
                descriptor.DangerousRelease();
            }

            if (socketAdded)
            {
                socket.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Receives into <paramref name="buffer"/> and adds every descriptor that came with the
    /// data to <paramref name="descriptors"/> (close-on-exec, owned by the caller). Returns
    /// false when nothing is waiting; <paramref name="received"/> is 0 at end of stream.
    /// </summary>
    public static bool TryReceive(SafeHandle socket, Span<byte> buffer, ICollection<FileDescriptor> descriptors, out int received)
    {
        var added = false;
        socket.DangerousAddRef(ref added);
        try
        {
            var controlLength = LibC.CMSG_SPACE(MaxReceivedDescriptors * sizeof(int));
            var control = stackalloc long[(controlLength + sizeof(long) - 1) / sizeof(long)];

            fixed (byte* bytes = buffer)
            {
                iovec vector = default;
                vector.iov_base = bytes;
                vector.iov_len = buffer.Length;

                msghdr message = default;
                message.msg_iov = &vector;
                message.msg_iovlen = 1;
                message.msg_control = control;
                message.msg_controllen = controlLength;

                var fd = (int)socket.DangerousGetHandle();
                long result;
                while (true)
                {
                    result = LibC.recvmsg(fd, &message, LibC.MSG_DONTWAIT | LibC.MSG_CMSG_CLOEXEC);
                    if (result >= 0)
                    {
                        break;
                    }

                    var errno = LibC.errno;
                    if (errno == Errors.EAGAIN)
                    {
                        received = 0;
                        return false;
                    }

                    if (errno != Errors.EINTR)
                    {
                        throw new NativeException("recvmsg", errno);
                    }
                }

                // Take ownership of what arrived before checking for truncation, so nothing leaks.
                for (var header = LibC.CMSG_FIRSTHDR(&message); header != null; header = LibC.CMSG_NXTHDR(&message, header))
                {
                    if (header->cmsg_level != LibC.SOL_SOCKET || header->cmsg_type != LibC.SCM_RIGHTS)
                    {
                        continue;
                    }

                    var count = ((int)header->cmsg_len - LibC.CMSG_LEN(0)) / sizeof(int);
                    var fds = (int*)LibC.CMSG_DATA(header);
                    for (var i = 0; i < count; i++)
                    {
                        descriptors.Add(new FileDescriptor(fds[i]));
                    }
                }

                if ((message.msg_flags & LibC.MSG_CTRUNC) != 0)
                {
                    throw new IOException($"recvmsg: more than {MaxReceivedDescriptors} descriptors arrived; the kernel closed the rest.");
                }

                received = (int)result;
                return true;
            }
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }
}
