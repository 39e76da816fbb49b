using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Nonet.Interop;
using Nonet.Report;
using Nonet.Runtime;
using static Nonet.Interop.Seccomp;
using static Tmds.Linux.LibC;

namespace Nonet.Allow;

/// <summary>Whether the allow-list lets a connection through.</summary>
internal enum Verdict
{
    Denied,
    Allowed,
}

/// <summary>The allow-list as the connect hand-over asks it: may a TCP
/// connection go to this address and port (an address rule, or an address
/// nonet's DNS answered for an allowed name)?</summary>
internal interface IConnectPolicy
{
    Verdict Decide(IPAddress address, int port);
}

/// <summary>
/// What happens to a connect() under --allow: all of it is here.
///
/// The filter (launcher/report.c) hands every connect() of the command over
/// to nonet, and nonet never lets the kernel carry one out on the command's
/// behalf (no SECCOMP_USER_NOTIF_FLAG_CONTINUE): the kernel would read the
/// address and the descriptor again, after nonet looked, and another thread
/// can change both meanwhile (the design note on --allow, the
/// bypasses it reproduced).  Instead nonet
///
///  1. pins the caller's socket (pidfd_getfd) and copies the address once
///     (process_vm_readv, at most 128 bytes, the kernel's own limit);
///  2. asks the pinned socket which network namespace it is in;
///  3. for a socket of the namespace: an allowed TCP destination gets a new
///     socket in the host's namespace, with the caller's options carried
///     over, connected by nonet to its copy of the address and put in place
///     of the caller's descriptor (SECCOMP_IOCTL_NOTIF_ADDFD with
///     SECCOMP_ADDFD_FLAG_SETFD); anything else is connected by nonet on
///     the pinned socket itself, in the namespace, where only the loopback
///     and nonet's own addresses are reachable (the rest: ENETUNREACH at
///     once).  A Unix path is opened first from the caller's root or
///     working directory (openat2 RESOLVE_IN_ROOT) and connected through
///     /proc/self/fd/N, so that the file connected to is the one looked up;
///  4. for a socket of the host's namespace (handed over before, or
///     inherited): it is never connected again by the kernel.  A second
///     connect() gets what the kernel would answer (EISCONN, EALREADY, the
///     pending error); one whose connection failed is replaced by a new
///     socket if its new destination is allowed, else ENETUNREACH.
///
/// A blocking connect() is answered when the connection is made, without
/// holding the loop: the socket is watched for writability.  A signal ends
/// the caller's wait at once (EINTR, from the kernel); nonet notices the
/// notification gone and lets its copy go.
/// </summary>
internal sealed unsafe class ConnectBroker : IReadyHandler, IDisposable
{
    private const int MaxAddress = 128; // sizeof(struct sockaddr_storage)
    private const int SockaddrIn6Min = 24; // SIN6_LEN_RFC2133
    private const int IpProtoTcp = 6;
    private const int AfUnspec = 0;
    private const int SoType = 3, SoProtocol = 38, SoDomain = 39;
    private const int TcpInfo = 11;
    private const int OCloexec = 0x80000;
    private const int MsgFastOpen = 0x20000000;
    private const int SweepMilliseconds = 100;

    private readonly IConnectPolicy policy;
    private readonly IReadOnlyCollection<IPAddress> insideAddresses;
    private readonly AttemptRecorder? recorder;
    private readonly Dictionary<int, Waiting> waiting = [];
    private int listener = -1;
    private EventLoop? loop;
    private ulong namespaceDevice, namespaceInode;
    private long nextSweep;

    /// <param name="policy">the allow-list</param>
    /// <param name="insideAddresses">the namespace's own addresses besides the
    /// loopback (nonet's nameservers): never handed over</param>
    /// <param name="recorder">--report's recorder, or null</param>
    public ConnectBroker(IConnectPolicy policy, IReadOnlyCollection<IPAddress> insideAddresses, AttemptRecorder? recorder)
    {
        this.policy = policy;
        this.insideAddresses = insideAddresses;
        this.recorder = recorder;
    }

    /// <summary>The filter's listener, and the namespace of the launcher's
    /// child (<paramref name="childPid"/>), which the command's sockets are
    /// made in: an errno, or 0.</summary>
    public int Start(int listenerFd, int childPid)
    {
        listener = listenerFd;
        byte[] path = Encoding.ASCII.GetBytes($"/proc/{childPid}/ns/net\0");
        Tmds.Linux.stat st;
        fixed (byte* p = path)
        {
            if (stat(p, &st) != 0)
                return errno;
        }
        namespaceDevice = (ulong)st.st_dev;
        namespaceInode = (ulong)st.st_ino;
        return 0;
    }

    public void Attach(EventLoop eventLoop) => loop = eventLoop;

    /// <summary>sendto(), sendmsg() and sendmmsg() may go on, but never with
    /// MSG_FASTOPEN, which connects a TCP socket as connect() would (the
    /// flags are a register: no race).  The filter refuses it too.</summary>
    public static bool IsFastOpen(in Notification n) =>
        (n.Nr == Calls.SendTo && ((int)n.Args[3] & MsgFastOpen) != 0)
        || (n.Nr == Calls.SendMsg && ((int)n.Args[2] & MsgFastOpen) != 0)
        || (n.Nr == Calls.SendMmsg && ((int)n.Args[3] & MsgFastOpen) != 0);

    /// <summary>One connect() of the command: answered now, or (a blocking
    /// one under way) when its connection is made.</summary>
    public void Connect(in Notification n)
    {
        int tid = (int)n.Pid;
        int fd = (int)n.Args[0];
        int pinned = Pin(tid, fd);
        if (pinned < 0)
        {
            Answer(n.Id, -pinned == EPERM ? EACCES : -pinned);
            return;
        }
        try
        {
            Connect(n, tid, fd, pinned);
        }
        catch (Exception)
        {
            // Nothing the command does may stop nonet; and a call nonet could
            // not judge fails, never goes through.
            Answer(n.Id, ENETUNREACH);
        }
        finally
        {
            if (!waiting.ContainsKey(pinned))
                close(pinned);
        }
    }

    private void Connect(in Notification n, int tid, int fd, int pinned)
    {
        // The kernel's own limits on the length: socklen_t is an int, and
        // at most a sockaddr_storage is copied.
        int length = (int)(uint)n.Args[2];
        if (length < 0 || length > MaxAddress)
        {
            Answer(n.Id, EINVAL);
            return;
        }
        byte* address = stackalloc byte[MaxAddress + 1];
        new Span<byte>(address, MaxAddress + 1).Clear();
        int copied = ReadMemory(tid, n.Args[1], address, length);
        if (copied != length)
        {
            Answer(n.Id, copied >= 0 || copied == -EFAULT || copied == -EINVAL ? EFAULT : EACCES);
            return;
        }
        var socket = KindOf(pinned);
        if (socket is not { } kind)
        {
            Answer(n.Id, ENOTSOCK);
            return;
        }
        int family = length >= 2 ? *(ushort*)address : -1;
        var destination = Inet(kind, address, length);
        bool tcp = kind.Type == SocketKind.SockStream && kind.Protocol is 0 or IpProtoTcp && destination is not null;
        bool allowed = tcp && !IsInside(destination!.Value.Address)
            && policy.Decide(destination.Value.Address, destination.Value.Port) == Verdict.Allowed;
        bool madeOutside = !InNamespace(pinned);
        recorder?.Connected(tid, pinned, kind, new ReadOnlySpan<byte>(address, length).ToArray(), allowed, madeOutside);

        if (madeOutside)
            ConnectHostSocket(n, fd, pinned, kind, address, length, family, allowed);
        else if (allowed)
            HandOver(n, tid, fd, pinned, address, length, bound: true);
        else
            ConnectInside(n, tid, pinned, kind, address, length, family);
    }

    /// <summary>
    /// A socket of the namespace, to a destination there (or nowhere): nonet
    /// connects the pinned socket to its copy of the address.  The
    /// namespace routes only to its own addresses; anything else fails at
    /// once (ENETUNREACH), as without --allow.
    /// </summary>
    private void ConnectInside(in Notification n, int tid, int pinned, SocketKind kind, byte* address, int length, int family)
    {
        byte* target = address;
        int targetLength = length;
        int pathFd = -1;
        byte* procPath = stackalloc byte[MaxAddress];
        if (kind.Domain == SocketKind.AfUnix && family == SocketKind.AfUnix && length > 2 && address[2] != 0)
        {
            // A path: the file is found once, as the caller sees it (its
            // root, its mounts, its working directory), and that file is
            // what nonet connects to.
            pathFd = OpenUnixPath(tid, address + 2, length - 2);
            if (pathFd < 0)
            {
                Answer(n.Id, -pathFd);
                return;
            }
            new Span<byte>(procPath, MaxAddress).Clear();
            *(ushort*)procPath = SocketKind.AfUnix;
            byte[] name = Encoding.ASCII.GetBytes($"/proc/self/fd/{pathFd}");
            name.CopyTo(new Span<byte>(procPath + 2, name.Length));
            target = procPath;
            targetLength = 2 + name.Length + 1;
        }
        try
        {
            // A blocking connect() must not block nonet: the socket is made
            // non-blocking for nonet's call, and the caller waits for the
            // answer instead.
            bool stream = kind.Type is SocketKind.SockStream or SocketKind.SockSeqpacket;
            int flags = fcntl(pinned, F_GETFL, 0);
            bool blocking = stream && flags >= 0 && (flags & O_NONBLOCK) == 0 && family != AfUnspec;
            if (blocking)
                fcntl(pinned, F_SETFL, flags | O_NONBLOCK);
            int e = Sockets.connect(pinned, target, targetLength) == 0 ? 0 : Sockets.LastError;
            if (blocking && e == EINPROGRESS)
            {
                Watch(n.Id, pinned, SendTimeout(pinned), flags);
                return;
            }
            if (blocking)
                fcntl(pinned, F_SETFL, flags);
            // A Unix listener with a full backlog: EAGAIN at once, where the
            // kernel would have waited (README: limitations).
            Answer(n.Id, e);
        }
        finally
        {
            if (pathFd >= 0)
                close(pathFd);
        }
    }

    /// <summary>
    /// An allowed TCP destination: a new socket in the host's namespace, the
    /// caller's options on it, connected by nonet to its own copy of the
    /// address, in place of the caller's descriptor.  A non-blocking caller
    /// gets it while the connection is under way (EINPROGRESS), so that
    /// happy eyeballs can try the next address meanwhile.
    /// </summary>
    private void HandOver(in Notification n, int tid, int fd, int pinned, byte* address, int length, bool bound)
    {
        int family = *(ushort*)address;
        int flags = fcntl(pinned, F_GETFL, 0);
        bool nonblocking = flags >= 0 && (flags & O_NONBLOCK) != 0;
        bool closeOnExec = CloseOnExec(tid, fd);
        int port = 0;
        if (bound)
        {
            // A bound port comes along; a bound address cannot (the host has
            // none of the namespace's).
            var local = LocalAddress(pinned);
            if (local is { } l && !l.Address.Equals(IPAddress.Any) && !l.Address.Equals(IPAddress.IPv6Any))
            {
                Answer(n.Id, EADDRNOTAVAIL);
                return;
            }
            port = local?.Port ?? 0;
        }
        int host = Sockets.socket(family, Sockets.SOCK_STREAM | Sockets.SOCK_NONBLOCK | Sockets.SOCK_CLOEXEC, IpProtoTcp);
        if (host < 0)
        {
            Answer(n.Id, Sockets.LastError);
            return;
        }
        bool keep = false;
        try
        {
            SocketOptions.CarryOver(pinned, host, family);
            if (port != 0)
            {
                byte* any = stackalloc byte[28];
                int anyLength = Sockets.FillAddress(any, family == Sockets.AF_INET6 ? IPAddress.IPv6Any : IPAddress.Any, port);
                if (Sockets.bind(host, any, anyLength) != 0)
                {
                    Answer(n.Id, Sockets.LastError);
                    return;
                }
            }
            int e = Sockets.connect(host, address, length) == 0 ? 0 : Sockets.LastError;
            if (e != 0 && e != EINPROGRESS)
            {
                Answer(n.Id, e); // the host's own answer (ENETUNREACH, say): the caller keeps its socket
                return;
            }
            if (!nonblocking)
                fcntl(host, F_SETFL, fcntl(host, F_GETFL, 0) & ~O_NONBLOCK);
            int added = AddFd(listener, n.Id, host, fd, closeOnExec);
            if (added != 0)
            {
                if (added != ENOENT) // ENOENT: the caller no longer waits (a signal, or killed)
                    Answer(n.Id, added);
                return;
            }
            if (e == 0)
                Answer(n.Id, 0);
            else if (nonblocking)
                Answer(n.Id, EINPROGRESS);
            else
            {
                Watch(n.Id, host, SendTimeout(pinned), -1);
                keep = true;
            }
        }
        finally
        {
            if (!keep)
                close(host);
        }
    }

    /// <summary>
    /// A socket of the host's namespace: one nonet handed over (or one the
    /// command inherited).  The kernel never connects it again: a failed
    /// connection would otherwise go anywhere from the host on the next
    /// connect() (the kernel puts the socket back to unconnected).
    /// </summary>
    private void ConnectHostSocket(in Notification n, int fd, int pinned, SocketKind kind, byte* address, int length, int family, bool allowed)
    {
        if (family == AfUnspec && length >= 2)
        {
            // Dissolving the association connects nothing (and the next
            // connect() comes here again).
            Answer(n.Id, Sockets.connect(pinned, address, length) == 0 ? 0 : Sockets.LastError);
            return;
        }
        bool tcp = kind.Domain is SocketKind.AfInet or SocketKind.AfInet6 && kind.Type == SocketKind.SockStream
            && kind.Protocol is 0 or IpProtoTcp;
        if (!tcp)
        {
            Answer(n.Id, kind.Domain == SocketKind.AfUnix ? ECONNREFUSED : ENETUNREACH);
            return;
        }
        switch (TcpState(pinned))
        {
            case TcpSynSent or TcpSynRecv:
                // Under way: a non-blocking caller hears EALREADY; a blocking
                // one (a connect() restarted after a signal, say) waits for it.
                int flags = fcntl(pinned, F_GETFL, 0);
                if (flags >= 0 && (flags & O_NONBLOCK) == 0)
                    Watch(n.Id, pinned, SendTimeout(pinned), -1);
                else
                    Answer(n.Id, EALREADY);
                return;
            case TcpClose:
                int pending = Sockets.SocketError(pinned);
                if (pending != 0)
                {
                    Answer(n.Id, pending); // what the kernel reports first, and clears
                    return;
                }
                // Failed and reported: as a new connect() of a new socket.
                if (allowed)
                    HandOver(n, (int)n.Pid, fd, pinned, address, length, bound: false);
                else
                    Answer(n.Id, ENETUNREACH);
                return;
            default:
                Answer(n.Id, EISCONN); // connected, listening or closing
                return;
        }
    }

    private const int TcpSynSent = 2, TcpSynRecv = 3, TcpClose = 7;

    private static int TcpState(int fd)
    {
        byte* info = stackalloc byte[256];
        int length = 256;
        return Sockets.getsockopt(fd, IpProtoTcp, TcpInfo, info, &length) == 0 && length > 0 ? info[0] : TcpClose;
    }

    /// <summary>A blocking connect() under way: answered when
    /// <paramref name="fd"/> (nonet's copy of the socket) is writable, when
    /// its send timeout passes (EINPROGRESS, as the kernel), or dropped when
    /// the call no longer waits.</summary>
    private void Watch(ulong id, int fd, long timeoutMs, int restoreFlags)
    {
        long deadline = timeoutMs > 0 ? Environment.TickCount64 + timeoutMs : long.MaxValue;
        if (loop is null)
        {
            // Draining after the loop ended: nobody would answer later.
            if (restoreFlags >= 0)
                fcntl(fd, F_SETFL, restoreFlags);
            Answer(id, EINPROGRESS);
            return;
        }
        loop.Add(fd, Sockets.EPOLLOUT, this);
        waiting[fd] = new Waiting(id, deadline, restoreFlags);
        if (waiting.Count == 1)
            nextSweep = Environment.TickCount64 + SweepMilliseconds;
    }

    private sealed record Waiting(ulong Id, long Deadline, int RestoreFlags);

    public void OnReady(int fd, uint events)
    {
        if (!waiting.TryGetValue(fd, out var w))
            return;
        int e = Sockets.SocketError(fd);
        if (e == 0 && TcpState(fd) is TcpSynSent or TcpSynRecv)
            return; // not yet
        Release(fd, w);
        Answer(w.Id, e);
    }

    /// <summary>How long the loop may sleep: until the next look at the
    /// calls waiting, whose callers a signal may have taken away.</summary>
    public int WakeAfter => waiting.Count == 0 ? -1 : (int)Math.Clamp(nextSweep - Environment.TickCount64, 0, SweepMilliseconds);

    public void Wake()
    {
        long now = Environment.TickCount64;
        if (waiting.Count == 0 || now < nextSweep)
            return;
        nextSweep = now + SweepMilliseconds;
        foreach (var (fd, w) in new List<KeyValuePair<int, Waiting>>(waiting))
        {
            if (!StillValid(listener, w.Id))
                Release(fd, w);
            else if (now >= w.Deadline)
            {
                Release(fd, w);
                Answer(w.Id, EINPROGRESS); // SO_SNDTIMEO passed: the kernel says so, and goes on connecting
            }
        }
    }

    private void Release(int fd, Waiting w)
    {
        waiting.Remove(fd);
        loop?.Remove(fd);
        if (w.RestoreFlags >= 0)
            fcntl(fd, F_SETFL, w.RestoreFlags);
        close(fd);
    }

    private void Answer(ulong id, int error)
    {
        if (error == 0)
            Return(listener, id, 0);
        else
            Fail(listener, id, error);
    }

    /// <summary>nonet's copy of the caller's descriptor, or -errno.</summary>
    private static int Pin(int tid, int fd)
    {
        if (fd < 0)
            return -EBADF;
        // The caller may be a thread other than its process's first:
        // PIDFD_THREAD (Linux 6.9), else the process, whose descriptors its
        // threads share (a thread with its own table, CLONE_FILES unset,
        // is then refused: EBADF or another socket's answer, never more).
        int pidfd = PidfdOpen(tid, PidfdThread);
        if (pidfd < 0)
            pidfd = PidfdOpen(ProcessNames.Of(tid).Tgid, 0);
        if (pidfd < 0)
            return -LastError;
        int pinned = PidfdGetfd(pidfd, fd);
        int e = pinned < 0 ? LastError : 0;
        close(pidfd);
        return pinned >= 0 ? pinned : -e;
    }

    private static SocketKind? KindOf(int fd)
    {
        int domain = Option(fd, Sockets.SOL_SOCKET, SoDomain), type = Option(fd, Sockets.SOL_SOCKET, SoType);
        return domain < 0 || type < 0 ? null : new SocketKind(domain, type, Option(fd, Sockets.SOL_SOCKET, SoProtocol));
    }

    private static int Option(int fd, int level, int name)
    {
        int value = 0, length = sizeof(int);
        return Sockets.getsockopt(fd, level, name, &value, &length) == 0 ? value : -1;
    }

    /// <summary>Whether the socket is the namespace's.  SIOCGSKNS answers
    /// for a namespace nonet holds CAP_NET_ADMIN over (the command's, whose
    /// user namespace nonet's user owns) and EPERM for the host's when nonet
    /// is not root; anything but the command's namespace is not it.</summary>
    private bool InNamespace(int fd)
    {
        int ns = NamespaceOf(fd);
        if (ns < 0)
            return false;
        Tmds.Linux.stat st;
        bool ours = fstat(ns, &st) == 0 && (ulong)st.st_dev == namespaceDevice && (ulong)st.st_ino == namespaceInode;
        close(ns);
        return ours;
    }

    /// <summary>The destination of an IPv4 or IPv6 connect() whose address
    /// fits its socket (IPv4-mapped IPv6 as IPv4, the form the allow-list
    /// and the loopback test see); null for anything else.</summary>
    private static (IPAddress Address, int Port)? Inet(SocketKind kind, byte* address, int length)
    {
        if (length < 2)
            return null;
        int family = *(ushort*)address;
        if (kind.Domain != family || !(family == Sockets.AF_INET && length >= 16 || family == Sockets.AF_INET6 && length >= SockaddrIn6Min))
            return null;
        return AttemptClassifier.ParseInet(new ReadOnlySpan<byte>(address, length));
    }

    /// <summary>Stays in the namespace: its loopback, "this host", and
    /// nonet's own addresses there.  Never handed over, whatever the
    /// allow-list says.</summary>
    private bool IsInside(IPAddress address)
    {
        if (AttemptClassifier.IsLocal(address))
            return true;
        foreach (var a in insideAddresses)
        {
            if (a.Equals(address))
                return true;
        }
        return false;
    }

    /// <summary>The socket's bound address and port, if bound.</summary>
    private static (IPAddress Address, int Port)? LocalAddress(int fd)
    {
        byte* buffer = stackalloc byte[28];
        int length = 28;
        if (Sockets.getsockname(fd, buffer, &length) != 0)
            return null;
        var local = AttemptClassifier.ParseInet(new ReadOnlySpan<byte>(buffer, length));
        return local is { Port: 0 } l && (l.Address.Equals(IPAddress.Any) || l.Address.Equals(IPAddress.IPv6Any)) ? null : local;
    }

    /// <summary>The caller's SO_SNDTIMEO in milliseconds, 0 for none: how
    /// long its blocking connect() may wait.</summary>
    private static long SendTimeout(int fd)
    {
        long* tv = stackalloc long[2];
        int length = 16;
        if (Sockets.getsockopt(fd, Sockets.SOL_SOCKET, SocketOptions.SoSndTimeo, tv, &length) != 0)
            return 0;
        return tv[0] * 1000 + (tv[1] + 999) / 1000;
    }

    /// <summary>Whether the caller's descriptor is close-on-exec: a flag of
    /// its descriptor table, which pidfd_getfd does not copy, so read from
    /// /proc/TID/fdinfo/FD ("flags:" in octal).</summary>
    private static bool CloseOnExec(int tid, int fd)
    {
        string? info = RawFile.ReadText($"/proc/{tid}/fdinfo/{fd}", 4096);
        if (info is null)
            return false;
        foreach (var line in info.Split('\n'))
        {
            if (!line.StartsWith("flags:", StringComparison.Ordinal))
                continue;
            try
            {
                return (Convert.ToInt32(line[6..].Trim(), 8) & OCloexec) != 0;
            }
            catch (FormatException)
            {
                return false;
            }
        }
        return false;
    }

    /// <summary>The file a Unix socket path names for thread
    /// <paramref name="tid"/>, opened O_PATH from its root (absolute path)
    /// or working directory, its symbolic links resolved there; or -errno.</summary>
    private static int OpenUnixPath(int tid, byte* path, int length)
    {
        var bytes = new ReadOnlySpan<byte>(path, length);
        int end = bytes.IndexOf((byte)0);
        if (end >= 0)
            bytes = bytes[..end];
        if (bytes.Length == 0)
            return -EINVAL;
        bool absolute = bytes[0] == (byte)'/';
        int start = ProcessNames.OpenProc(tid, absolute ? "root" : "cwd");
        if (start < 0)
            return -errno;
        byte[] name = new byte[bytes.Length + 1];
        bytes.TrimStart((byte)'/').CopyTo(name);
        if (name[0] == 0)
            name[0] = (byte)'.';
        int fd;
        fixed (byte* n = name)
            fd = OpenInRoot(start, n, Tmds.Linux.LibC.O_PATH | O_CLOEXEC);
        int e = fd < 0 ? LastError : 0;
        close(start);
        return fd >= 0 ? fd : -e;
    }

    public void Dispose()
    {
        foreach (var (fd, w) in new List<KeyValuePair<int, Waiting>>(waiting))
            Release(fd, w);
        loop = null;
    }
}
