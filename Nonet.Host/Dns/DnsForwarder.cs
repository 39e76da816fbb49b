using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Net;
using Nonet.Allow;
using Nonet.Forwarding;
using Nonet.Runtime;
using Nonet.Interop;
using static Nonet.Interop.Sockets;

namespace Nonet.Dns;

/// <summary>
/// --allow's half of nonet's nameserver: a query for an allowed name is
/// asked again, as nonet's own query (<see cref="DnsRelay.Query"/>), of the
/// host's nameservers from the host's network namespace, over UDP and over
/// TCP when the answer is truncated; the answer goes back to the client
/// under its id, with the records that point where --allow never goes
/// dropped, and the addresses left are recorded in the run's
/// <see cref="AllowedAddresses"/>.  On the host's one event loop, never
/// blocking: a nameserver that is silent, answers garbage or closes gets
/// the client a SERVFAIL within <see cref="TotalMilliseconds"/>.
/// </summary>
internal sealed unsafe class DnsForwarder : IDisposable, IReadyHandler
{
    /// <summary>Upstream queries at once; beyond that the oldest gets
    /// SERVFAIL to make room, so a flood of lookups costs nonet a bounded
    /// number of descriptors and does not keep later lookups waiting.</summary>
    public const int MaxInFlight = 64;

    /// <summary>One try of one nameserver, then the next (or the same again).</summary>
    public const int AttemptMilliseconds = 1500;

    /// <summary>Under glibc's first timeout (5 s), so that a client hears
    /// SERVFAIL before it asks again.</summary>
    public const int TotalMilliseconds = 4000;

    private readonly AllowedAddresses table;
    private readonly IReadOnlyList<IPAddress> nameservers;
    private readonly IReadOnlySet<IPAddress> hostAddresses;
    private readonly List<Pending> pending = [];
    private EventLoop? loop;
    private int timer = -1;

    public DnsForwarder(AllowedAddresses table, IReadOnlyList<IPAddress> nameservers, IReadOnlySet<IPAddress> hostAddresses)
    {
        this.table = table;
        this.nameservers = nameservers;
        this.hostAddresses = hostAddresses;
    }

    public void Attach(EventLoop eventLoop)
    {
        loop = eventLoop;
        timer = HostNetwork.timerfd_create(HostNetwork.CLOCK_MONOTONIC, HostNetwork.TFD_NONBLOCK | HostNetwork.TFD_CLOEXEC);
        if (timer < 0)
            throw new SystemCallException("timerfd_create", LastError);
        loop.Add(timer, EPOLLIN, this);
    }

    /// <summary>
    /// Takes <paramref name="query"/> if its name is allowed: the reply goes
    /// to <paramref name="deliver"/> later (at most
    /// <paramref name="limit"/> bytes, else truncated), and the result is
    /// true.  False for a name that is not allowed: the caller answers.
    /// </summary>
    public bool TryForward(DnsQuery query, int limit, Action<byte[]> deliver)
    {
        if (query.Question is not { } question || query.Rcode != DnsMessage.RcodeNxDomain)
            return false;
        var rules = table.List.RulesFor(question.Name);
        if (rules.Count == 0)
            return false;
        if (loop is null)
        {
            deliver(DnsRelay.ServerFailure(query));
            return true;
        }
        if (pending.Count >= MaxInFlight)
            pending[0].Fail();
        var p = new Pending(this, query, question, rules, limit, deliver, HostNetwork.RandomId());
        pending.Add(p);
        p.Try();
        ArmTimer();
        return true;
    }

    /// <summary>The timer: every query past its attempt's deadline tries
    /// the next nameserver, or, past its total, fails.</summary>
    public void OnReady(int fd, uint events)
    {
        ulong expirations;
        Tmds.Linux.LibC.read(timer, &expirations, 8);
        long now = Environment.TickCount64;
        foreach (var p in pending.ToArray())
        {
            if (p.Deadline <= now)
                p.TimedOut();
        }
        ArmTimer();
    }

    private void ArmTimer()
    {
        if (timer < 0)
            return;
        long next = long.MaxValue;
        foreach (var p in pending)
            next = Math.Min(next, p.Deadline);
        long* spec = stackalloc long[4];
        spec[0] = spec[1] = 0;
        if (next == long.MaxValue)
        {
            spec[2] = spec[3] = 0; // disarmed
        }
        else
        {
            long wait = Math.Max(1, next - Environment.TickCount64);
            spec[2] = wait / 1000;
            spec[3] = (wait % 1000) * 1_000_000;
        }
        HostNetwork.timerfd_settime(timer, 0, spec, null);
    }

    private void Finish(Pending p, byte[] reply)
    {
        pending.Remove(p);
        p.CloseSocket();
        p.Deliver(reply);
    }

    /// <summary>One client query on its way: which nameserver, over what,
    /// until when.</summary>
    private sealed class Pending(DnsForwarder owner, DnsQuery query, DnsQuestion question,
        IReadOnlyList<AllowRule> rules, int limit, Action<byte[]> deliver, ushort id) : IReadyHandler
    {
        private readonly byte[] upstreamQuery = DnsRelay.Query(id, question);
        private readonly long started = Environment.TickCount64;
        private int attempt;
        private int fd = -1;
        private bool tcp;
        private bool sent;
        private byte[] buffer = [];
        private int filled;

        public long Deadline { get; private set; }

        public void Deliver(byte[] reply) => deliver(reply);

        /// <summary>Asks the next nameserver (in turn) over UDP.</summary>
        public void Try()
        {
            CloseSocket();
            var server = owner.nameservers[attempt % owner.nameservers.Count];
            attempt++;
            Deadline = Math.Min(started + TotalMilliseconds, Environment.TickCount64 + AttemptMilliseconds);
            tcp = false;
            if (!Open(server, SOCK_DGRAM))
                return; // the timer moves on
            fixed (byte* q = upstreamQuery)
                send(fd, q, (nuint)upstreamQuery.Length, MSG_DONTWAIT | MSG_NOSIGNAL);
            owner.loop!.Add(fd, EPOLLIN, this);
        }

        /// <summary>The same nameserver again over TCP, for a truncated answer.</summary>
        private void TryTcp()
        {
            var server = owner.nameservers[(attempt - 1) % owner.nameservers.Count];
            CloseSocket();
            tcp = true;
            sent = false;
            filled = 0;
            buffer = new byte[2 + ushort.MaxValue];
            Deadline = Math.Min(started + TotalMilliseconds, Environment.TickCount64 + AttemptMilliseconds);
            owner.ArmTimer();
            if (!Open(server, SOCK_STREAM))
                return;
            owner.loop!.Add(fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP, this);
        }

        private bool Open(IPAddress server, int type)
        {
            fd = socket(FamilyOf(server), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0)
                return false;
            byte* address = stackalloc byte[28];
            int length = FillAddress(address, server, 53);
            if (connect(fd, address, length) != 0 && LastError != EINPROGRESS)
            {
                CloseSocket();
                return false;
            }
            return true;
        }

        public void CloseSocket()
        {
            if (fd < 0)
                return;
            owner.loop?.Remove(fd);
            close(fd);
            fd = -1;
        }

        public void TimedOut()
        {
            if (Environment.TickCount64 >= started + TotalMilliseconds)
                Fail();
            else
                Try();
        }

        /// <summary>Gives up: the client gets SERVFAIL.</summary>
        public void Fail()
        {
            owner.Finish(this, DnsRelay.ServerFailure(query));
        }

        public void OnReady(int readyFd, uint events)
        {
            if (readyFd != fd)
                return;
            if (tcp)
                OnTcpReady(events);
            else
                OnUdpReady();
        }

        private void OnUdpReady()
        {
            byte* message = stackalloc byte[DnsRelay.UpstreamPayload * 4];
            for (int i = 0; i < 16; i++)
            {
                nint n = recv(fd, message, (nuint)(DnsRelay.UpstreamPayload * 4), MSG_DONTWAIT);
                if (n < 0)
                {
                    if (LastError == Errno.EINTR)
                        continue;
                    if (LastError != EAGAIN)
                        CloseSocket(); // refused: the timer moves on to the next try
                    return;
                }
                if (Handle(new ReadOnlySpan<byte>(message, (int)n)))
                    return;
            }
        }

        private void OnTcpReady(uint events)
        {
            if (!sent)
            {
                if (SocketError(fd) != 0)
                {
                    CloseSocket();
                    return;
                }
                if ((events & EPOLLOUT) == 0)
                    return;
                if (!DnsTcp.Send(fd, upstreamQuery))
                {
                    CloseSocket();
                    return;
                }
                sent = true;
                owner.loop!.Modify(fd, EPOLLIN | EPOLLRDHUP);
                return;
            }
            int n = DnsTcp.Receive(fd, buffer, filled);
            if (n < 0)
                CloseSocket(); // closed before a whole answer: the timer moves on
            if (n <= 0)
                return;
            filled += n;
            if (filled < 2)
                return;
            int length = BinaryPrimitives.ReadUInt16BigEndian(buffer);
            if (filled - 2 < length)
                return;
            if (!Handle(buffer.AsSpan(2, length)))
                CloseSocket(); // not our answer: nothing else comes on this connection
        }

        /// <summary>An upstream message: true once this query is done.</summary>
        private bool Handle(ReadOnlySpan<byte> message)
        {
            var reply = DnsRelay.ParseReply(message, id, question, out bool malformed);
            if (reply is null)
            {
                if (!malformed)
                    return false; // not an answer to this query: a late or forged datagram
                Fail();
                return true;
            }
            if (reply.Truncated && !tcp)
            {
                TryTcp();
                return true;
            }
            owner.Finish(this, owner.Relay(query, question, rules, reply, limit));
            return true;
        }
    }

    /// <summary>The client's reply for an upstream answer: its records
    /// filtered, its addresses recorded.</summary>
    private byte[] Relay(DnsQuery query, DnsQuestion question, IReadOnlyList<AllowRule> rules, UpstreamReply reply, int limit)
    {
        if (reply.Rcode is not (DnsMessage.RcodeNoError or DnsMessage.RcodeNxDomain))
            return DnsRelay.ServerFailure(query);
        var kept = DnsRelay.Filter(reply, question, address => AddressClass.IsRebinding(AddressClass.WithoutScope(address), hostAddresses));
        string name = question.Name.ToLowerInvariant();
        foreach (var address in kept.Addresses)
            table.Record(address, name, rules);
        return DnsRelay.WriteRelayed(query, reply.Rcode, reply.Authoritative, kept.Answers, reply.Authority, limit);
    }

    public void Dispose()
    {
        foreach (var p in pending)
            p.CloseSocket();
        pending.Clear();
        if (timer >= 0)
        {
            loop?.Remove(timer);
            close(timer);
            timer = -1;
        }
    }
}
