using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Net;
using System.Text;

namespace Nonet.Report;

/// <summary>Which call the command made: the four the filter hands over;
/// Write, a DNS query that nonet's nameserver received without one of them
/// (write, writev, sendfile or send on a connected socket, or DNS over
/// TCP); Foreign, a 32-bit (i386) or x32 call, refused.</summary>
internal enum CallKind { Connect, SendTo, SendMsg, SendMmsg, Write, Foreign }

/// <summary>A socket of the command's, as getsockopt(SO_DOMAIN, SO_TYPE,
/// SO_PROTOCOL) describes it.</summary>
internal readonly record struct SocketKind(int Domain, int Type, int Protocol)
{
    public const int AfUnix = 1;
    public const int AfInet = 2;
    public const int AfInet6 = 10;
    public const int SockStream = 1;
    public const int SockDgram = 2;
    public const int SockRaw = 3;
    public const int SockSeqpacket = 5;
}

/// <summary>Where an attempt went: an IP address and port (no port for
/// ICMP), or the path of a Unix socket; and the DNS question when it was a
/// query to a nameserver.</summary>
internal sealed record Destination(string Protocol, IPAddress? Address, int? Port, string? Path)
{
    public string? DnsName { get; init; }
    public string? DnsType { get; init; }

    /// <summary>The query's id, while nonet matches it with its answer; 0 in the report.</summary>
    public ushort DnsId { get; init; }

    /// <summary>For a call whose destination nonet could not read: why
    /// ("destination unreadable", "uninspected", "refused: 32-bit/x32
    /// call"); protocol, address, port and path are then unknown.</summary>
    public string? Note { get; init; }

    /// <summary>For a connection made inside the namespace that reaches the
    /// host's loopback (a socket made outside and inherited): it left.</summary>
    public bool Left { get; init; }

    /// <summary>For an IP destination other than a lookup: the name whose
    /// DNS answer (under --allow, for an allowed name) gave this address,
    /// the first one if several did; null when none did.</summary>
    public string? Name { get; init; }

    public const string Unknown = "?";

    public bool IsUnix => Path is not null;

    /// <summary>The destination of a call nonet could not read.</summary>
    public static Destination Unread(string note) => new(Unknown, null, null, null) { Note = note };

    /// <summary>address:port, [v6]:port, the bare address, or the path.</summary>
    public string Show() => Note ?? Path ?? (Port is { } port
        ? (Address!.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Address}]:{port}" : $"{Address}:{port}")
        : Address!.ToString());
}

/// <summary>One attempt: when, where, and which process (pid and command;
/// pid 0 when nonet could not tell).  <see cref="CallText"/> names a
/// foreign call (such as "i386 socketcall").</summary>
internal sealed record Attempt(DateTime Time, Destination Destination, int Pid, string Command, CallKind Call)
{
    public string? CallText { get; init; }

    /// <summary>Whether it went through: <see cref="Allow.Verdict.Allowed"/>
    /// for what nonet let out (a connection or a lookup an --allow rule
    /// allowed, a path-based Unix socket of the host's, a socket made
    /// outside), <see cref="Allow.Verdict.Denied"/> for what failed (kept
    /// in, or refused); null when nonet could not read where it went.</summary>
    public Allow.Verdict? Verdict { get; init; }
}

/// <summary>
/// What a call's socket address means, for the report: pure functions over
/// the bytes read from the command's memory, unit-tested with malformed
/// input.  The namespace has only "lo" and, made local, the host's
/// nameserver addresses: the loopback is the command's own, a nameserver's
/// port 53 is a name lookup, anything else is outside.
/// </summary>
internal static class AttemptClassifier
{
    public const int DnsPort = 53;
    private const int AfUnspec = 0;
    private const int MsgFastOpen = 0x20000000;

    /// <summary>An IP address and port from a sockaddr_in or sockaddr_in6
    /// (IPv4-mapped IPv6 as IPv4); null for anything else or too short.</summary>
    public static (IPAddress Address, int Port)? ParseInet(ReadOnlySpan<byte> sockaddr) => ParseInet(sockaddr, false);

    /// <summary><see cref="ParseInet(ReadOnlySpan{byte})"/>; with
    /// <paramref name="unspecIsInet"/>, AF_UNSPEC reads as AF_INET, as the
    /// kernel reads it for a datagram sent on an IPv4 socket.</summary>
    public static (IPAddress Address, int Port)? ParseInet(ReadOnlySpan<byte> sockaddr, bool unspecIsInet)
    {
        if (sockaddr.Length < 2)
            return null;
        int family = BinaryPrimitives.ReadUInt16LittleEndian(sockaddr);
        if (family == AfUnspec && unspecIsInet)
            family = SocketKind.AfInet;
        if (family == SocketKind.AfInet && sockaddr.Length >= 8)
            return (new IPAddress(sockaddr.Slice(4, 4)), BinaryPrimitives.ReadUInt16BigEndian(sockaddr[2..]));
        if (family == SocketKind.AfInet6 && sockaddr.Length >= 24)
        {
            var address = new IPAddress(sockaddr.Slice(8, 16));
            if (address.IsIPv4MappedToIPv6)
                address = address.MapToIPv4();
            return (address, BinaryPrimitives.ReadUInt16BigEndian(sockaddr[2..]));
        }
        return null;
    }

    /// <summary>The path of a path-based sockaddr_un; null for an abstract
    /// name (the namespace's own), an unnamed one, or anything else.</summary>
    public static string? ParseUnixPath(ReadOnlySpan<byte> sockaddr)
    {
        if (sockaddr.Length < 3 || BinaryPrimitives.ReadUInt16LittleEndian(sockaddr) != SocketKind.AfUnix || sockaddr[2] == 0)
            return null;
        var path = sockaddr[2..];
        int end = path.IndexOf((byte)0);
        return UserText.Decode(end < 0 ? path : path[..end]);
    }

    /// <summary>The raw bytes of a path-based sockaddr_un's path (see
    /// <see cref="ParseUnixPath"/>).</summary>
    public static byte[] RawUnixPath(ReadOnlySpan<byte> sockaddr)
    {
        if (sockaddr.Length < 3)
            return [];
        var path = sockaddr[2..];
        int end = path.IndexOf((byte)0);
        return (end < 0 ? path : path[..end]).ToArray();
    }

    /// <summary>Inside nonet these stay inside: the loopback, and the
    /// unspecified address (which means this host).</summary>
    public static bool IsLocal(IPAddress address) =>
        IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);

    public static string ProtocolName(SocketKind socket) => (socket.Type, socket.Protocol) switch
    {
        (_, 1) => "icmp",
        (_, 58) => "icmpv6",
        (SocketKind.SockStream, 132) or (SocketKind.SockSeqpacket, 132) => "sctp",
        (SocketKind.SockStream, _) => "tcp",
        (SocketKind.SockDgram, _) => "udp",
        (SocketKind.SockRaw, 6) => "tcp",
        (SocketKind.SockRaw, 17) => "udp",
        _ => "raw",
    };

    private static bool HasPort(string protocol) => protocol is "tcp" or "udp" or "sctp";

    /// <summary>
    /// Whether one call (or one message of sendmmsg) is an attempt to reach
    /// outside, and where to.  <paramref name="sockaddr"/> is the address the
    /// call names, or the socket's peer when it names none
    /// (<paramref name="named"/> false).  TCP counts at connect() (and
    /// sendto with MSG_FASTOPEN); a datagram at each send; a UDP connect()
    /// sends nothing, but outside it is an attempt that fails.  A datagram to
    /// a nameserver's port 53 is a lookup: <see cref="Destination.DnsName"/>
    /// is then filled by the caller from the payload.
    /// </summary>
    /// <param name="left">the socket was made outside the namespace: even
    /// the loopback is then the host's, and nonet's nameserver not there</param>
    public static Destination? Classify(CallKind call, SocketKind socket, ReadOnlySpan<byte> sockaddr, bool named, int flags,
        IReadOnlyCollection<IPAddress> nameservers, bool left = false)
    {
        if (socket.Domain == SocketKind.AfUnix)
        {
            if (!named || ParseUnixPath(sockaddr) is not { } path)
                return null;
            return new Destination("unix", null, null, path);
        }
        if (socket.Domain is not (SocketKind.AfInet or SocketKind.AfInet6))
            return null;
        // connect() with AF_UNSPEC dissolves an association; a datagram
        // sent on an IPv4 socket with AF_UNSPEC goes out as AF_INET.
        if (ParseInet(sockaddr, named && call != CallKind.Connect && socket.Domain == SocketKind.AfInet) is not var (address, port))
            return null;
        string protocol = ProtocolName(socket);
        bool stream = socket.Type is SocketKind.SockStream or SocketKind.SockSeqpacket;
        if (stream && call != CallKind.Connect && !(named && (flags & MsgFastOpen) != 0))
            return null;
        if (left)
            return new Destination(protocol, address, HasPort(protocol) ? port : null, null) { Left = true };
        bool nameserver = Contains(nameservers, address);
        bool dns = nameserver && port == DnsPort && protocol is "udp" or "tcp";
        if (!dns && IsLocal(address))
            return null;
        // A datagram socket connected to a nameserver (which is local
        // inside) sends nothing yet: its datagrams are what count.  A TCP
        // connection to a nameserver's port 53 reaches nonet's: its
        // queries are recorded, with their names, as nonet answers them.
        if (call == CallKind.Connect && (nameserver && !stream || dns && stream))
            return null;
        return new Destination(protocol, address, HasPort(protocol) ? port : null, null);
    }

    /// <summary>Whether an IP socket address stays on the loopback whatever
    /// the socket: then nothing else need be read (the common, fast case).</summary>
    public static bool StaysInside(ReadOnlySpan<byte> sockaddr, IReadOnlyCollection<IPAddress> nameservers) =>
        ParseInet(sockaddr) is var (address, port) && IsLocal(address) && !(port == DnsPort && Contains(nameservers, address));

    /// <summary>Whether this destination is a nameserver's port 53 over
    /// UDP, so that the payload is a DNS query to read.</summary>
    public static bool IsDnsDatagram(Destination destination, IReadOnlyCollection<IPAddress> nameservers) =>
        destination is { Protocol: "udp", Port: DnsPort, Address: { } address } && Contains(nameservers, address);

    private static bool Contains(IReadOnlyCollection<IPAddress> addresses, IPAddress address)
    {
        foreach (var a in addresses)
        {
            if (a.Equals(address))
                return true;
        }
        return false;
    }
}
