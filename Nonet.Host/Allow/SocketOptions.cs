using System;
using System.Collections.Generic;
using static Nonet.Interop.Sockets;

namespace Nonet.Allow;

/// <summary>
/// The options a command set on its socket before connect(), carried over
/// to the host socket nonet connects for it, so that setsockopt() itself
/// need not be watched.  Only what differs from a fresh socket's is set:
/// a buffer size left alone keeps the kernel's autotuning.
/// </summary>
internal static unsafe class SocketOptions
{
    public const int SoSndTimeo = 21; // SO_SNDTIMEO_OLD: a struct timeval of 64-bit fields here
    private const int SoRcvTimeo = 20;
    private const int SoSndBuf = 7, SoRcvBuf = 8, SoKeepAlive = 9, SoOobInline = 10, SoPriority = 12, SoLinger = 13,
        SoReusePort = 15;
    private const int IpProtoIp = 0, IpProtoTcp = 6;
    private const int IpTos = 1, IpTtl = 2, Ipv6UnicastHops = 16, Ipv6TClass = 67;
    private const int TcpNoDelay = 1, TcpMaxSeg = 2, TcpCork = 3, TcpKeepIdle = 4, TcpKeepIntvl = 5, TcpKeepCnt = 6, TcpSynCnt = 7,
        TcpLinger2 = 8, TcpWindowClamp = 10, TcpQuickAck = 12, TcpCongestion = 13, TcpUserTimeout = 18, TcpNotSentLowat = 25;

    /// <summary>Level, name and size of each option carried over; the
    /// buffer sizes read back doubled and are set halved.</summary>
    private static readonly (int Level, int Name, int Size)[] Common =
    [
        (SOL_SOCKET, SO_REUSEADDR, 4), (SOL_SOCKET, SoReusePort, 4), (SOL_SOCKET, SoKeepAlive, 4),
        (SOL_SOCKET, SoOobInline, 4), (SOL_SOCKET, SoPriority, 4), (SOL_SOCKET, SoLinger, 8),
        (SOL_SOCKET, SoRcvTimeo, 16), (SOL_SOCKET, SoSndTimeo, 16),
        (SOL_SOCKET, SoSndBuf, 4), (SOL_SOCKET, SoRcvBuf, 4),
        (IpProtoTcp, TcpNoDelay, 4), (IpProtoTcp, TcpMaxSeg, 4), (IpProtoTcp, TcpCork, 4), (IpProtoTcp, TcpKeepIdle, 4),
        (IpProtoTcp, TcpKeepIntvl, 4), (IpProtoTcp, TcpKeepCnt, 4), (IpProtoTcp, TcpSynCnt, 4), (IpProtoTcp, TcpLinger2, 4),
        (IpProtoTcp, TcpWindowClamp, 4), (IpProtoTcp, TcpQuickAck, 4), (IpProtoTcp, TcpCongestion, 16),
        (IpProtoTcp, TcpUserTimeout, 4), (IpProtoTcp, TcpNotSentLowat, 4),
    ];

    private static readonly (int Level, int Name, int Size)[] V4 = [(IpProtoIp, IpTos, 4), (IpProtoIp, IpTtl, 4)];

    private static readonly (int Level, int Name, int Size)[] V6 =
        [(IPPROTO_IPV6, Ipv6TClass, 4), (IPPROTO_IPV6, Ipv6UnicastHops, 4), (IPPROTO_IPV6, IPV6_V6ONLY, 4)];

    /// <summary>Each option's value on a fresh socket of the family, read
    /// once: then only the caller's socket is read per connect().</summary>
    private static readonly Dictionary<int, byte[][]> Fresh = [];

    public static void CarryOver(int from, int to, int family)
    {
        var options = family == AF_INET6 ? V6 : V4;
        if (!Fresh.TryGetValue(family, out var fresh))
        {
            fresh = new byte[Common.Length + options.Length][];
            for (int i = 0; i < fresh.Length; i++)
                fresh[i] = Read(to, At(i, options));
            Fresh[family] = fresh;
        }
        byte* value = stackalloc byte[16];
        for (int i = 0; i < fresh.Length; i++)
        {
            var (level, name, size) = At(i, options);
            int length = size;
            new Span<byte>(value, 16).Clear();
            if (getsockopt(from, level, name, value, &length) != 0 || new ReadOnlySpan<byte>(value, length).SequenceEqual(fresh[i]))
                continue;
            if (level == SOL_SOCKET && name is SoSndBuf or SoRcvBuf)
                *(int*)value /= 2; // the kernel doubles what it is given
            setsockopt(to, level, name, value, length); // what the host refuses, the kernel would have refused too
        }
    }

    private static (int Level, int Name, int Size) At(int i, (int, int, int)[] options) =>
        i < Common.Length ? Common[i] : options[i - Common.Length];

    private static byte[] Read(int fd, (int Level, int Name, int Size) option)
    {
        byte* value = stackalloc byte[16];
        new Span<byte>(value, 16).Clear();
        int length = option.Size;
        return getsockopt(fd, option.Level, option.Name, value, &length) == 0 ? new ReadOnlySpan<byte>(value, length).ToArray() : [];
    }
}
