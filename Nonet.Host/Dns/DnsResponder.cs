using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using Nonet.Forwarding;
using Nonet.Runtime;
using Nonet.Interop;
using Nonet.Launch;
using static Nonet.Interop.Sockets;

namespace Nonet.Dns;

/// <summary>The lookups nonet answered: how many queries, and the names
/// asked, each once, in the order first asked (at most
/// <see cref="MaxNames"/> kept).</summary>
internal sealed class DnsTally
{
    public const int MaxNames = 64;

    private readonly List<string> names = [];
    private readonly HashSet<string> seen = [];

    public int Queries { get; private set; }

    public int DistinctNames => seen.Count;

    public IReadOnlyList<string> Names => names;

    public void Add(DnsQuestion question)
    {
        Queries++;
        if (seen.Count >= MaxNames)
            return;
        string name = question.Name;
        if (seen.Add(name))
            names.Add(name);
    }
}

/// <summary>One query nonet's nameserver answered, for --report: its id and
/// question, whether over TCP, and the socket addresses (sockaddr bytes)
/// of nonet's end and of the sender; <see cref="Forwarded"/> when --allow
/// let it through to the host's nameservers (else it was answered "not
/// found").</summary>
internal sealed record AnsweredQuery(ushort Id, DnsQuestion Question, bool Tcp, byte[] Server, byte[] Sender)
{
    public bool Forwarded { get; init; }
}

/// <summary>
/// nonet's nameserver: on the sockets the launcher's child bound inside, at
/// the host's nameserver addresses, it answers every query at once with
/// NXDOMAIN ("not found"; see README.md for why not an empty NOERROR), so
/// that resolvers give up instead of retrying.  It runs on the host's one
/// event loop.  What arrives is written by the command: a datagram that
/// is not a query gets no answer, a TCP peer that misbehaves is dropped,
/// and neither can make nonet block or grow without bound.
/// </summary>
internal sealed unsafe class DnsResponder : ICapability
{
    /// <summary>Datagrams answered per wake-up before the loop serves the
    /// other descriptors (the relays) again: a flood slows only itself.</summary>
    private const int DatagramsPerWakeup = 64;

    /// <summary>TCP connections open at once; a new one beyond this closes
    /// the oldest.</summary>
    public const int MaxTcpConnections = 32;

    private static byte[]? datagramBuffer;
    private static readonly byte[] reply = new byte[DnsMessage.MaxReplySize];

    /// <summary>Made at the first query: most commands send none.</summary>
    private static byte[] Datagram => datagramBuffer ??= new byte[65536];

    private readonly List<int> udpSockets = [];
    private readonly List<int> tcpListeners = [];
    private readonly LinkedList<TcpConnection> tcpConnections = [];
    private readonly DnsForwarder? forwarder;
    private EventLoop? loop;

    /// <param name="forwarder">--allow's: asks the host's nameservers about
    /// allowed names; null answers every name "not found".</param>
    public DnsResponder(DnsForwarder? forwarder = null) => this.forwarder = forwarder;

    public DnsTally Tally { get; } = new();

    /// <summary>--report's hook: each query answered, with the transport,
    /// nonet's socket address that received it and the sender's.</summary>
    public Action<AnsweredQuery>? Answered { get; set; }

    /// <summary>Takes a socket of kind DnsUdp or DnsTcp.</summary>
    public void Take(InsideSocket socket)
    {
        if (socket.Kind == InsideSocketKind.DnsUdp)
            udpSockets.Add(socket.Fd);
        else
            tcpListeners.Add(socket.Fd);
    }

    public void Attach(EventLoop eventLoop)
    {
        loop = eventLoop;
        foreach (int fd in udpSockets)
            loop.Add(fd, EPOLLIN, new UdpServer(this));
        foreach (int fd in tcpListeners)
            loop.Add(fd, EPOLLIN, new TcpAcceptor(this));
        forwarder?.Attach(loop);
    }

    /// <summary>The reply to one message, in <see cref="reply"/>: its
    /// length, or 0 for none now.  Under --allow, a query for an allowed
    /// name goes to the forwarder, whose reply comes later, to
    /// <paramref name="later"/>'s (within the size of a TCP message, or of
    /// a datagram the client takes).</summary>
    private int Answer(ReadOnlySpan<byte> message, int fd, bool tcp, Func<Action<byte[]>> later, byte[]? peer = null)
    {
        if (DnsMessage.ParseQuery(message) is not { } query)
            return 0;
        if (query.Question is not { } question || query.Rcode != DnsMessage.RcodeNxDomain)
            return DnsMessage.WriteReply(query, reply);
        // Asked of the host's nameservers, or answered "not found": --report
        // lists it as allowed or denied.
        int limit = tcp ? ushort.MaxValue : query.Edns ? DnsRelay.ClientEdnsLimit : DnsRelay.ClientUdpLimit;
        bool forwarded = forwarder is not null && forwarder.TryForward(query, limit, later());
        if (!forwarded)
            Tally.Add(question);
        Answered?.Invoke(new AnsweredQuery(query.Id, question, tcp, AddressOf(fd), peer ?? AddressOf(fd, peer: true)) { Forwarded = forwarded });
        if (forwarded)
            return 0;
        return DnsMessage.WriteReply(query, reply);
    }

    private sealed class UdpServer(DnsResponder owner) : IReadyHandler
    {
        public void OnReady(int fd, uint events)
        {
            byte* peer = stackalloc byte[28];
            for (int i = 0; i < DatagramsPerWakeup; i++)
            {
                int peerLength = 28;
                nint n;
                fixed (byte* buffer = Datagram)
                    n = recvfrom(fd, buffer, (nuint)Datagram.Length, MSG_DONTWAIT, peer, &peerLength);
                if (n < 0)
                {
                    if (LastError == Errno.EINTR)
                        continue;
                    return; // EAGAIN: all read (an ICMP error from a peer gone: dropped)
                }
                byte[] from = new ReadOnlySpan<byte>(peer, peerLength).ToArray();
                int length = owner.Answer(Datagram.AsSpan(0, (int)n), fd, false, () => Later(fd, from), from);
                if (length == 0)
                    continue;
                fixed (byte* answer = reply)
                    sendto(fd, answer, (nuint)length, MSG_DONTWAIT | MSG_NOSIGNAL, peer, peerLength);
            }
        }
    }

    /// <summary>Sends a reply that comes later to the datagram's sender.</summary>
    private static Action<byte[]> Later(int fd, byte[] to)
    {
        return answer =>
        {
            fixed (byte* a = answer)
            fixed (byte* p = to)
                sendto(fd, a, (nuint)answer.Length, MSG_DONTWAIT | MSG_NOSIGNAL, p, to.Length);
        };
    }

    private sealed class TcpAcceptor(DnsResponder owner) : IReadyHandler
    {
        public void OnReady(int fd, uint events)
        {
            for (int i = 0; i < DatagramsPerWakeup; i++)
            {
                int client = accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (client < 0)
                {
                    if (LastError is Errno.EINTR or ECONNABORTED)
                        continue;
                    return;
                }
                if (owner.tcpConnections.Count >= MaxTcpConnections)
                    owner.tcpConnections.First!.Value.Close();
                var connection = new TcpConnection(owner, client);
                connection.Node = owner.tcpConnections.AddLast(connection);
                owner.loop!.Add(client, EPOLLIN | EPOLLRDHUP, connection);
            }
        }
    }

    /// <summary>DNS over TCP (RFC 7766): each message after its two-byte
    /// length, several per connection.  A reply that cannot be sent at once
    /// (the peer does not read) ends the connection.</summary>
    private sealed class TcpConnection(DnsResponder owner, int fd) : IReadyHandler
    {
        private byte[] buffer = new byte[512];
        private int filled;

        public LinkedListNode<TcpConnection>? Node { get; set; }

        public void OnReady(int readyFd, uint events)
        {
            if (Node is null)
                return; // closed earlier in this batch
            if (filled == buffer.Length)
                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, 2 + ushort.MaxValue));
            int n = DnsTcp.Receive(fd, buffer, filled);
            if (n < 0)
                Close();
            if (n <= 0)
                return;
            filled += n;
            int start = 0;
            while (filled - start >= 2)
            {
                int length = BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(start));
                if (length < DnsMessage.HeaderSize)
                {
                    Close();
                    return;
                }
                if (filled - start - 2 < length)
                    break;
                int answer = owner.Answer(buffer.AsSpan(start + 2, length), fd, true, () => SendLater);
                start += 2 + length;
                if (answer > 0 && !DnsTcp.Send(fd, reply.AsSpan(0, answer)))
                {
                    Close();
                    return;
                }
            }
            Buffer.BlockCopy(buffer, start, buffer, 0, filled - start);
            filled -= start;
        }

        /// <summary>A forwarded reply, if the connection is still open.</summary>
        private void SendLater(byte[] answer)
        {
            if (Node is null)
                return;
            if (!DnsTcp.Send(fd, answer))
                Close();
        }

        public void Close()
        {
            if (Node is null)
                return;
            owner.tcpConnections.Remove(Node);
            Node = null;
            owner.loop?.Remove(fd);
            close(fd);
        }
    }

    /// <summary>A socket's own address, or its peer's.</summary>
    private static byte[] AddressOf(int fd, bool peer = false)
    {
        byte* address = stackalloc byte[28];
        int length = 28;
        int rc = peer ? getpeername(fd, address, &length) : getsockname(fd, address, &length);
        return rc == 0 ? new ReadOnlySpan<byte>(address, Math.Min(length, 28)).ToArray() : [];
    }

    public void Dispose()
    {
        forwarder?.Dispose();
        while (tcpConnections.First is { } first)
            first.Value.Close();
        foreach (int fd in udpSockets)
        {
            loop?.Remove(fd);
            close(fd);
        }
        foreach (int fd in tcpListeners)
        {
            loop?.Remove(fd);
            close(fd);
        }
        udpSockets.Clear();
        tcpListeners.Clear();
    }
}
