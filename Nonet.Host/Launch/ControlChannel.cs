using System;
using System.Collections.Generic;
using Nonet.Interop;
using static Nonet.Interop.Sockets;

namespace Nonet.Launch;

/// <summary>What a socket made inside is for (NONET_SOCKET_* in launcher/status.h).</summary>
internal enum InsideSocketKind : uint
{
    Forward = 1,
    DnsUdp = 2,
    DnsTcp = 3,
}

/// <summary>A socket the launcher's child made inside the namespace and
/// handed over: what it is for, which option it answers (-f or -n, from
/// 0), its address family (4 or 6) and the host's descriptor for it.</summary>
internal readonly record struct InsideSocket(InsideSocketKind Kind, int Index, uint Family, int Fd);

/// <summary>
/// The control socket between the host and the launcher (an AF_UNIX
/// SOCK_SEQPACKET pair, launcher/status.h): the child sends every socket it
/// made inside in one message, then waits for the host's byte before it
/// goes on.  The --publish helper later uses the same socket.
/// </summary>
internal sealed unsafe class ControlChannel : IDisposable
{
    /// <summary>A kind this host knows.  By name, not with Enum.IsDefined:
    /// that one starts the reflection machinery (type loader, metadata,
    /// caches) on every run, for one comparison (issue 23).  A test checks
    /// each kind.</summary>
    public static bool IsKnownKind(InsideSocketKind kind) =>
        kind is InsideSocketKind.Forward or InsideSocketKind.DnsUdp or InsideSocketKind.DnsTcp;

    /// <summary>The launcher's limits: 2 per forward, 2 per nameserver.</summary>
    private const int MaxSockets = 2 * Forwarding.ForwardingPlan.MaxEntries + 2 * Dns.ResolvConf.MaxNameservers;
    private const int DescriptionSize = 12; // struct nonet_listener

    private int hostEnd;

    private ControlChannel(int hostEnd)
    {
        this.hostEnd = hostEnd;
    }

    /// <summary>The host's end of a pair whose other end the launcher holds.</summary>
    public static ControlChannel Adopt(int hostEnd) => new(hostEnd);

    /// <summary>
    /// Takes the sockets the child sent (one message, before its successful
    /// STEP_LISTEN record), each close-on-exec.  An errno, or 0; on failure
    /// nothing is kept.
    /// </summary>
    public int Receive(out List<InsideSocket> sockets)
    {
        sockets = [];
        byte* data = stackalloc byte[MaxSockets * DescriptionSize];
        int controlSize = CmsgDataOffset + MaxSockets * sizeof(int) + 8;
        byte* cmsg = stackalloc byte[controlSize];
        var iov = new IoVec { Base = data, Length = (nuint)(MaxSockets * DescriptionSize) };
        var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = cmsg, ControlLength = (nuint)controlSize };
        nint n;
        do
            n = recvmsg(hostEnd, &message, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        while (n < 0 && LastError == Errno.EINTR);
        if (n < 0)
            return LastError;

        int fdCount = 0;
        int* fds = null;
        if (message.ControlLength >= (nuint)CmsgDataOffset && *(int*)(cmsg + 8) == SOL_SOCKET && *(int*)(cmsg + 12) == SCM_RIGHTS)
        {
            fdCount = (int)((*(nuint*)cmsg - (nuint)CmsgDataOffset) / sizeof(int));
            fds = (int*)(cmsg + CmsgDataOffset);
        }
        int described = (int)(n / DescriptionSize);
        bool valid = fdCount == described && n % DescriptionSize == 0;
        for (int i = 0; i < fdCount; i++)
        {
            var kind = (InsideSocketKind)(i < described ? *(uint*)(data + i * DescriptionSize) : 0);
            if (!valid || !IsKnownKind(kind))
            {
                valid = false;
                continue;
            }
            sockets.Add(new InsideSocket(kind,
                (int)*(uint*)(data + i * DescriptionSize + 4),
                *(uint*)(data + i * DescriptionSize + 8),
                fds[i]));
        }
        if (!valid)
        {
            for (int i = 0; i < fdCount; i++)
                close(fds[i]);
            sockets.Clear();
            return Errno.EIO;
        }
        return 0;
    }

    /// <summary>The host holds the forward listeners: the child may go on.</summary>
    public int Acknowledge()
    {
        byte go = 1;
        return send(hostEnd, &go, 1, MSG_NOSIGNAL) == 1 ? 0 : LastError;
    }

    /// <summary>Hands the host's end on (to the --publish relay, which talks
    /// to the helper over it); this channel no longer closes it.</summary>
    public int TakeHostEnd()
    {
        int fd = hostEnd;
        hostEnd = -1;
        return fd;
    }

    public void Dispose()
    {
        if (hostEnd >= 0)
            close(hostEnd);
        hostEnd = -1;
    }
}
