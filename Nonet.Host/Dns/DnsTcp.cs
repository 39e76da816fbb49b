using System;
using System.Buffers.Binary;
using Nonet.Interop;
using static Nonet.Interop.Sockets;

namespace Nonet.Dns;

/// <summary>
/// DNS over TCP (RFC 1035 4.2.2, RFC 7766) on a non-blocking socket, for
/// both of nonet's ends of it: the responder's connections from the
/// command and the forwarder's to the host's nameservers.  Each message
/// goes after its length in two bytes, in one send(2) that does not wait:
/// a peer that does not take it all at once loses the connection, so it
/// can neither block nonet's one loop nor make nonet keep its replies.
/// </summary>
internal static unsafe class DnsTcp
{
    /// <summary>Up to this many bytes framed are built on the stack: a
    /// reply of nonet's own or nonet's query to a nameserver; a relayed
    /// answer (up to 64 KiB) goes on the heap.</summary>
    private const int FramedOnStack = 1024;

    /// <summary>Sends <paramref name="message"/> after its length: true
    /// when all of it went.</summary>
    public static bool Send(int fd, ReadOnlySpan<byte> message)
    {
        int length = 2 + message.Length;
        Span<byte> framed = length <= FramedOnStack ? stackalloc byte[length] : new byte[length];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)message.Length);
        message.CopyTo(framed[2..]);
        fixed (byte* f = framed)
            return send(fd, f, (nuint)length, MSG_DONTWAIT | MSG_NOSIGNAL) == length;
    }

    /// <summary>Reads what has come on <paramref name="fd"/> into
    /// <paramref name="buffer"/> after its first <paramref name="filled"/>
    /// bytes: how many bytes came; 0 when none yet (EAGAIN, EINTR: the loop
    /// calls again), -1 once the peer has closed or the connection failed.</summary>
    public static int Receive(int fd, byte[] buffer, int filled)
    {
        nint n;
        fixed (byte* b = buffer)
            n = recv(fd, b + filled, (nuint)(buffer.Length - filled), MSG_DONTWAIT);
        if (n < 0 && LastError is Errno.EINTR or EAGAIN)
            return 0;
        return n <= 0 ? -1 : (int)n;
    }
}
