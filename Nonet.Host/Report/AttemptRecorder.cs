using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Nonet.Dns;
using Nonet.Interop;
using static Nonet.Interop.Seccomp;

namespace Nonet.Report;

/// <summary>
/// --report's part of the supervision (<see cref="Supervision.Supervisor"/>
/// holds the listener of the launcher's seccomp filter, launcher/report.c,
/// and asks this about each call).  For each connect(),
/// sendto(), sendmsg() and sendmmsg() of the command or a descendant, the
/// calling thread waits while this reads the call's destination (from
/// /proc/PID/mem, and the socket itself through pidfd_getfd(2)), records
/// an attempt to the outside, writes its JSON line, checks that the call
/// is still the one it read (SECCOMP_IOCTL_NOTIF_ID_VALID), and lets the
/// kernel carry the call out as without nonet's filter
/// (SECCOMP_USER_NOTIF_FLAG_CONTINUE): outside, it fails at once.  The
/// attempt is recorded before the call returns, so a command killed right
/// after it still has it in the report.
/// </summary>
internal sealed unsafe class AttemptRecorder : IDisposable
{
    private const int MaxAddress = 128;
    private const int MaxDnsPayload = 1024;
    private const int MaxMessages = 1024; // UIO_MAXIOV, the kernel's own cap for sendmmsg
    private const int MsgHdrSize = 56;
    private const int MmsgHdrSize = 64;

    private const int MaxPendingQueries = 256;
    private const int MaxLookupConnections = 256;

    private readonly IReadOnlyCollection<IPAddress> nameservers;
    private readonly int fileFd;

    /// <summary>--allow's table of the addresses allowed names gave (and
    /// its rules), or null without --allow: for the verdict of a lookup
    /// and the name an address was reached by.</summary>
    private readonly Allow.AllowedAddresses? allowed;

    /// <summary>The namespace's sock_diag socket (see launcher/report.c), and its cookie.</summary>
    private NamespaceSockets? inside;
    private ulong insideCookie;

    /// <summary>One descriptor held back, freed when nonet has no other, so
    /// that a call it cannot inspect is still recorded with its process.</summary>
    private readonly DescriptorReserve reserve = new();

    /// <summary>Queries recorded from a send's payload, which nonet's
    /// nameserver will then answer: it records the others.</summary>
    private readonly List<(string Name, string? Type, ushort Id)> pendingQueries = [];

    /// <summary>Sockets connected to a nameserver's port 53 (their inode),
    /// and who connected them: the process of a query sent with write().</summary>
    private readonly Dictionary<ulong, (int Pid, string Command)> lookupConnections = [];
    private int lastLookupPid;

    private readonly Dictionary<Destination, byte[]> rawPaths = [];

    public ReportTally Tally { get; } = new();

    /// <param name="nameservers">the addresses nonet answers DNS on inside</param>
    /// <param name="fileFd">--report-file's descriptor, or -1</param>
    /// <param name="allowed">--allow's addresses, or null without --allow</param>
    public AttemptRecorder(IReadOnlyCollection<IPAddress> nameservers, int fileFd, Allow.AllowedAddresses? allowed = null)
    {
        this.nameservers = nameservers;
        this.fileFd = fileFd;
        this.allowed = allowed;
    }

    /// <summary>Under --allow, nonet carried out the connect() itself
    /// (<see cref="Allow.ConnectBroker"/>): the attempt it made, if it went
    /// outside, with whether the allow-list let it through
    /// (<paramref name="allowedByRule"/>).  <paramref name="pinned"/> is
    /// nonet's copy of the caller's socket: one connected to a nameserver's
    /// port 53 is noted, for the queries it writes later.
    /// <paramref name="madeOutside"/>: the socket is of the host's network
    /// namespace (inherited, or handed over earlier), so that even its
    /// loopback is the host's, and nonet refuses it all but an allowed
    /// TCP destination.</summary>
    public void Connected(int tid, int pinned, SocketKind socket, byte[] address, bool allowedByRule, bool madeOutside)
    {
        var destination = AttemptClassifier.Classify(CallKind.Connect, socket, address, true, 0, nameservers, left: madeOutside);
        if (destination is null)
        {
            if (socket.Domain is SocketKind.AfInet or SocketKind.AfInet6)
                NoteLookupConnection(tid, InodeOf(pinned), address);
            return;
        }
        var (tgid, command) = ProcessNames.Of(tid);
        if (destination.Path is not null && !CallerPaths.ReachesOutside(tid, tgid, AttemptClassifier.RawUnixPath(address), inside))
            return; // no socket there (nonet hides the resolvers'), or one of this run's
        destination = Named(destination);
        Record(new Attempt(DateTime.UtcNow, destination, tgid, command, CallKind.Connect)
        {
            Verdict = destination.IsUnix && !madeOutside || allowedByRule ? Allow.Verdict.Allowed : Allow.Verdict.Denied,
        });
    }

    /// <summary>An IP destination other than a lookup, with the name an
    /// allowed name's DNS answer gave its address by, if one did.</summary>
    private Destination Named(Destination destination) =>
        allowed is not null && destination is { DnsName: null, Address: { } address } && allowed.NameFor(address) is { } name
            ? destination with { Name = name }
            : destination;

    /// <summary>The verdict on a call the kernel carries out (or refuses):
    /// a lookup is allowed when its name is (nonet forwards it), a path-based
    /// Unix socket and a socket made outside go through, and everything
    /// else to the outside fails.</summary>
    private Allow.Verdict VerdictOf(Destination destination) =>
        destination.IsUnix || destination.Left
        || (destination.DnsName is { } name && allowed is not null && allowed.List.Matches(name))
            ? Allow.Verdict.Allowed
            : Allow.Verdict.Denied;

    /// <summary>The launcher's child's NETLINK_SOCK_DIAG socket, made
    /// inside (its descriptor <paramref name="childFd"/>, or -1).</summary>
    public void TakeNamespaceSockets(int childPid, int childFd)
    {
        if (childFd < 0)
            return;
        int pidfd = PidfdOpen(childPid, 0);
        if (pidfd < 0)
            return;
        inside = NamespaceSockets.Adopt(PidfdGetfd(pidfd, childFd));
        Sockets.close(pidfd);
        insideCookie = inside?.Cookie ?? 0;
    }

    /// <summary>
    /// nonet's nameserver answered a query (DnsResponder.Answered).  One
    /// that a recorded send carried is already in the report; any other
    /// came by write(), writev(), sendfile(), send() on a connected socket
    /// or TCP, and is recorded now, with the process that connected the
    /// socket where nonet saw that connect().
    /// </summary>
    public void OnDnsAnswered(AnsweredQuery query)
    {
        string name = query.Question.Name, type = query.Question.TypeName;
        int pending = pendingQueries.FindIndex(q => q.Id == query.Id && q.Name == name && q.Type == type);
        if (pending >= 0 && !query.Tcp)
        {
            pendingQueries.RemoveAt(pending);
            return;
        }
        if (AttemptClassifier.ParseInet(query.Server) is not var (server, port))
            return;
        var (pid, command) = LookupSender(query);
        var destination = new Destination(query.Tcp ? "tcp" : "udp", server, port, null) { DnsName = name, DnsType = type };
        Record(new Attempt(DateTime.UtcNow, destination, pid, command, CallKind.Write)
        {
            Verdict = query.Forwarded ? Allow.Verdict.Allowed : Allow.Verdict.Denied,
        });
    }

    /// <summary>The process that connected the sender's socket: its inode
    /// from the namespace's socket table (/proc/PID/net/*), by the sender's
    /// port, then the connect() that nonet saw.</summary>
    private (int Pid, string Command) LookupSender(AnsweredQuery query)
    {
        if (AttemptClassifier.ParseInet(query.Sender) is not var (address, port))
            return (0, UnknownProcess);
        foreach (int pid in new[] { lastLookupPid }.Concat(lookupConnections.Values.Select(v => v.Pid)).Distinct())
        {
            if (pid > 0 && SocketTable.Inode(pid, query.Tcp, address, port) is { } inode)
                return lookupConnections.TryGetValue(inode, out var who) ? who : (0, UnknownProcess);
        }
        return (0, UnknownProcess);
    }

    /// <summary>A socket connected to a nameserver's port 53 sends its
    /// queries later, maybe with write(): who connected it is kept.</summary>
    private void NoteLookupConnection(int pid, ulong? socketInode, byte[] address)
    {
        if (AttemptClassifier.ParseInet(address) is not var (ip, port) || port != AttemptClassifier.DnsPort || !nameservers.Contains(ip))
            return;
        if (socketInode is not { } inode)
            return;
        if (lookupConnections.Count >= MaxLookupConnections)
            lookupConnections.Clear();
        lookupConnections[inode] = ProcessNames.Of(pid);
        lastLookupPid = pid;
    }

    /// <summary>
    /// What the call's answer is besides carrying it out: 0, or the errno a
    /// call fails with unread.  A 32-bit (i386) or x32 call, whose layouts
    /// nonet does not read, fails with ENOSYS (recorded by
    /// <see cref="Inspect"/>), as on a kernel without that ABI.
    /// </summary>
    internal static int Verdict(in Notification n) =>
        ForeignCalls.Name(n.Arch, n.Nr, n.Args[0], ForeignCalls.Native) is null ? 0 : Errno.ENOSYS;

    /// <summary>Records the attempt to the outside that call <paramref name="n"/>
    /// makes, if it makes one; <paramref name="listener"/> is the filter's,
    /// to check that the call still waits.  The caller answers the call.</summary>
    public void Inspect(in Notification n, int listener)
    {
        int pid = (int)n.Pid;
        rawPaths.Clear();
        if (ForeignCalls.Name(n.Arch, n.Nr, n.Args[0], ForeignCalls.Native) is { } foreign)
        {
            var (foreignTgid, foreignCommand) = ProcessNames.Of(pid);
            Record(new Attempt(DateTime.UtcNow, Destination.Unread(ForeignCalls.Refused), foreignTgid, foreignCommand, CallKind.Foreign)
            {
                CallText = foreign,
                Verdict = Allow.Verdict.Denied,
            });
            return;
        }
        CallKind call;
        if (n.Nr == Calls.Connect) call = CallKind.Connect;
        else if (n.Nr == Calls.SendTo) call = CallKind.SendTo;
        else if (n.Nr == Calls.SendMsg) call = CallKind.SendMsg;
        else if (n.Nr == Calls.SendMmsg) call = CallKind.SendMmsg;
        else return;

        using var memory = ProcessMemory.Open(pid, out int memoryError);
        if (memory is null)
        {
            // Not readable to nonet (a non-dumpable process, nonet out of
            // descriptors): what is known is recorded, never nothing.
            RecordUnread(n, listener, call, memoryError);
            return;
        }
        // A connect() or sendto() to the loopback is decided by its address
        // alone, unless the socket was made outside the namespace.
        (ulong At, ulong Length) named = call == CallKind.Connect ? (n.Args[1], n.Args[2])
            : call == CallKind.SendTo ? (n.Args[4], n.Args[5]) : (0, 0);
        bool loopback = named.At != 0 && AttemptClassifier.StaysInside(memory.Read(named.At, (int)Math.Min(named.Length, MaxAddress)), nameservers);
        if (loopback && insideCookie == 0)
            return;
        using var socket = TheirSocket.Open(pid, (int)n.Args[0], out int socketError);
        if (socket is null)
        {
            if (socketError is Errno.EPERM or Errno.EMFILE or Errno.ENFILE)
                RecordUnread(n, listener, call, socketError);
            return; // EBADF, ENOTSOCK: the call fails as it is
        }
        if (socket.Kind.Domain is not (SocketKind.AfInet or SocketKind.AfInet6 or SocketKind.AfUnix))
            return;
        bool left = socket.Kind.Domain != SocketKind.AfUnix && insideCookie != 0 && socket.NetnsCookie is var c && c != 0 && c != insideCookie;
        if (loopback && !left)
            return;

        var found = new List<Destination>();
        switch (call)
        {
            case CallKind.Connect:
                Add(found, call, socket, memory.Read(n.Args[1], (int)Math.Min(n.Args[2], MaxAddress)), true, 0, 0, 0, left);
                break;
            case CallKind.SendTo:
                AddSend(found, call, socket, memory, n.Args[4], n.Args[5], (int)n.Args[3], n.Args[1], n.Args[2], left);
                break;
            case CallKind.SendMsg:
                AddMessage(found, call, socket, memory, n.Args[1], (int)n.Args[2], left);
                break;
            case CallKind.SendMmsg:
                int count = (int)Math.Min(n.Args[2], MaxMessages);
                for (int i = 0; i < count; i++)
                {
                    int before = found.Count;
                    if (!AddMessage(found, call, socket, memory, n.Args[1] + (ulong)(i * MmsgHdrSize), (int)n.Args[3], left))
                        break;
                    // The kernel stops at the first message that fails, and
                    // every message to the outside fails.
                    if (found.Count > before && !AttemptClassifier.IsDnsDatagram(found[^1], nameservers))
                        break;
                }
                break;
        }
        if (call == CallKind.Connect && !left && found.Count == 0)
            NoteLookupConnection(pid, socket.Inode, memory.Read(n.Args[1], (int)Math.Min(n.Args[2], MaxAddress)));
        if (found.Count == 0 || !StillValid(listener, n.Id))
            return;

        var (tgid, command) = ProcessNames.Of(pid);
        var now = DateTime.UtcNow;
        foreach (var destination in found)
        {
            if (destination.Path is { } path && !CallerPaths.ReachesOutside(pid, tgid, rawPaths[destination], inside))
                continue; // no socket there (nonet hides the resolvers'), or one of this run's
            if (destination.DnsName is not null && pendingQueries.Count < MaxPendingQueries)
                pendingQueries.Add((destination.DnsName, destination.DnsType, destination.DnsId));
            Record(new Attempt(now, Named(destination with { DnsId = 0 }), tgid, command, call) { Verdict = VerdictOf(destination) });
        }
    }

    /// <summary>A call nonet could not read: its process and call, and why.</summary>
    private void RecordUnread(in Notification n, int listener, CallKind call, int error)
    {
        if (error is Errno.ENOENT or Errno.ESRCH || !StillValid(listener, n.Id))
            return; // the caller is gone: its call was never made
        bool exhausted = error is Errno.EMFILE or Errno.ENFILE;
        if (exhausted)
            reserve.Release(); // so that /proc/PID/status can still be read
        var (tgid, command) = ProcessNames.Of((int)n.Pid);
        Record(new Attempt(DateTime.UtcNow, Destination.Unread(exhausted ? Uninspected : Unreadable), tgid, command, call));
        if (exhausted)
            reserve.Take();
    }

    public const string Unreadable = "destination unreadable";
    public const string UnknownProcess = "(process unknown)";
    public const string Uninspected = "uninspected (nonet had no descriptor left)";

    private bool AddMessage(List<Destination> found, CallKind call, TheirSocket socket, ProcessMemory memory, ulong header, int flags, bool left)
    {
        var h = memory.Read(header, MsgHdrSize);
        if (h.Length < MsgHdrSize)
            return false;
        ulong name = BitConverter.ToUInt64(h, 0);
        ulong nameLength = BitConverter.ToUInt32(h, 8);
        ulong iov = BitConverter.ToUInt64(h, 16);
        ulong iovLength = BitConverter.ToUInt64(h, 24);
        ulong data = 0, dataLength = 0;
        if (iov != 0 && iovLength > 0)
        {
            var first = memory.Read(iov, 16);
            if (first.Length == 16)
            {
                data = BitConverter.ToUInt64(first, 0);
                dataLength = BitConverter.ToUInt64(first, 8);
            }
        }
        AddSend(found, call, socket, memory, name, nameLength, flags, data, dataLength, left);
        return true;
    }

    private void AddSend(List<Destination> found, CallKind call, TheirSocket socket, ProcessMemory memory,
        ulong name, ulong nameLength, int flags, ulong data, ulong dataLength, bool left)
    {
        bool named = name != 0 && nameLength > 0;
        byte[] address = named ? memory.Read(name, (int)Math.Min(nameLength, MaxAddress)) : socket.Peer();
        Add(found, call, socket, address, named, flags, data, dataLength, left, memory);
    }

    private void Add(List<Destination> found, CallKind call, TheirSocket socket, byte[] address, bool named, int flags,
        ulong data, ulong dataLength, bool left, ProcessMemory? memory = null)
    {
        var destination = AttemptClassifier.Classify(call, socket.Kind, address, named, flags, left ? [] : nameservers, left);
        if (destination is null)
            return;
        if (memory is not null && AttemptClassifier.IsDnsDatagram(destination, nameservers) && data != 0
            && DnsMessage.ParseQuery(memory.Read(data, (int)Math.Min(dataLength, MaxDnsPayload))) is { Question: { } question } query)
            destination = destination with { DnsName = question.Name, DnsType = question.TypeName, DnsId = query.Id };
        if (destination.Path is not null)
            rawPaths[destination] = AttemptClassifier.RawUnixPath(address);
        found.Add(destination);
    }

    private void Record(Attempt attempt)
    {
        Tally.Add(attempt);
        if (fileFd < 0)
            return;
        byte[] line = ReportJson.Line(attempt);
        fixed (byte* p = line)
        {
            int done = 0;
            while (done < line.Length)
            {
                nint w = (nint)Tmds.Linux.LibC.write(fileFd, p + done, (Tmds.Linux.size_t)(line.Length - done));
                if (w < 0 && Tmds.Linux.LibC.errno == Errno.EINTR)
                    continue;
                if (w <= 0)
                    return; // a full disk loses lines, never the command's call
                done += (int)w;
            }
        }
    }

    /// <summary>A socket's inode (sockfs), as /proc/PID/net/* lists it.</summary>
    private static ulong? InodeOf(int fd)
    {
        Tmds.Linux.stat st;
        return Tmds.Linux.LibC.fstat(fd, &st) == 0 ? (ulong)st.st_ino : null;
    }

    /// <summary>Lets go of the namespace's sock_diag socket and the
    /// reserved descriptor.</summary>
    public void Dispose()
    {
        inside?.Dispose();
        inside = null;
        reserve.Release();
    }

    /// <summary>A copy of the caller's socket (pidfd_getfd), to ask it what
    /// it is and whom it is connected to.</summary>
    private sealed class TheirSocket : IDisposable
    {
        private const int SoType = 3;
        private const int SoProtocol = 38;
        private const int SoDomain = 39;

        private readonly int fd;

        private TheirSocket(int fd, SocketKind kind)
        {
            this.fd = fd;
            Kind = kind;
        }

        public SocketKind Kind { get; }

        public static TheirSocket? Open(int tid, int targetFd, out int error)
        {
            error = Errno.EBADF;
            if (targetFd < 0)
                return null;
            // The caller may be a thread other than its process's first:
            // PIDFD_THREAD (Linux 6.9), else the process, whose descriptors
            // its threads share.
            int pidfd = PidfdOpen(tid, PidfdThread);
            if (pidfd < 0 && LastError is not (Errno.EMFILE or Errno.ENFILE))
                pidfd = PidfdOpen(ProcessNames.Of(tid).Tgid, 0);
            if (pidfd < 0)
            {
                error = LastError;
                return null;
            }
            int fd = PidfdGetfd(pidfd, targetFd);
            error = fd < 0 ? LastError : 0;
            Sockets.close(pidfd);
            if (fd < 0)
                return null;
            int domain = Option(fd, SoDomain), type = Option(fd, SoType), protocol = Option(fd, SoProtocol);
            if (domain < 0 || type < 0)
            {
                Sockets.close(fd); // ENOTSOCK: the call fails as it is
                return null;
            }
            return new TheirSocket(fd, new SocketKind(domain, type, protocol));
        }

        private static int Option(int fd, int name)
        {
            int value = 0, length = sizeof(int);
            return Sockets.getsockopt(fd, Sockets.SOL_SOCKET, name, &value, &length) == 0 ? value : -1;
        }

        /// <summary>The cookie of the network namespace it was made in, or 0.</summary>
        public ulong NetnsCookie => NamespaceSockets.CookieOf(fd);

        /// <summary>Its inode (sockfs), as /proc/PID/net/* lists it.</summary>
        public ulong? Inode => InodeOf(fd);

        public byte[] Peer()
        {
            byte* buffer = stackalloc byte[MaxAddress];
            int length = MaxAddress;
            if (Sockets.getpeername(fd, buffer, &length) != 0)
                return [];
            return new ReadOnlySpan<byte>(buffer, Math.Min(length, MaxAddress)).ToArray();
        }

        public void Dispose() => Sockets.close(fd);
    }

    /// <summary>/proc/TID/mem, read with pread at the caller's addresses.</summary>
    private sealed class ProcessMemory : IDisposable
    {
        private readonly int fd;

        private ProcessMemory(int fd) => this.fd = fd;

        public static ProcessMemory? Open(int tid, out int error)
        {
            int fd = ProcessNames.OpenProc(tid, "mem");
            error = fd < 0 ? Tmds.Linux.LibC.errno : 0;
            return fd < 0 ? null : new ProcessMemory(fd);
        }

        /// <summary>Up to <paramref name="length"/> bytes at
        /// <paramref name="address"/>; fewer (or none) where unmapped.</summary>
        public byte[] Read(ulong address, int length)
        {
            if (length <= 0 || address == 0 || address > long.MaxValue)
                return [];
            var buffer = new byte[length];
            nint n;
            fixed (byte* b = buffer)
                n = pread(fd, b, (nuint)length, (long)address);
            return n <= 0 ? [] : n == length ? buffer : buffer.AsSpan(0, (int)n).ToArray();
        }

        public void Dispose() => Sockets.close(fd);
    }
}

/// <summary>Which process a thread belongs to, and its command's name, from /proc.</summary>
internal static unsafe class ProcessNames
{
    private const int CommLength = 15; // TASK_COMM_LEN - 1

    public static int OpenProc(int pid, string file)
    {
        byte[] path = Encoding.ASCII.GetBytes($"/proc/{pid}/{file}\0");
        fixed (byte* p = path)
            return Tmds.Linux.LibC.open(p, Tmds.Linux.LibC.O_RDONLY | Tmds.Linux.LibC.O_CLOEXEC, 0);
    }

    private static string? Read(string path) => RawFile.ReadText(path, 4096);

    /// <summary>The process (thread group) of thread <paramref name="tid"/>,
    /// and its command: its name, or argv[0]'s last part when the kernel cut
    /// the name to 15 bytes.</summary>
    public static (int Tgid, string Command) Of(int tid)
    {
        int tgid = tid;
        if (Read($"/proc/{tid}/status") is { } status)
        {
            foreach (var line in status.Split('\n'))
            {
                if (line.StartsWith("Tgid:", StringComparison.Ordinal) && int.TryParse(line.AsSpan(5).Trim(), out int t))
                    tgid = t;
            }
        }
        // The kernel ends the name with one newline; the name itself may
        // hold any byte but NUL (prctl(PR_SET_NAME)): kept as it is, for the
        // summary and the JSON to escape.
        byte[] comm = RawFile.ReadHead(FilePath.Of($"/proc/{tgid}/comm"), 64);
        if (comm.Length == 0)
            return (tgid, "?");
        var name = comm.AsSpan(0, comm[^1] == (byte)'\n' ? comm.Length - 1 : comm.Length);
        string command = UserText.Decode(name);
        if (name.Length >= CommLength && RawFile.ReadHead(FilePath.Of($"/proc/{tgid}/cmdline"), 4096) is { Length: > 0 } cmdline)
        {
            var argv0 = cmdline.AsSpan();
            int end = argv0.IndexOf((byte)0);
            if (end >= 0)
                argv0 = argv0[..end];
            var last = argv0[(argv0.LastIndexOf((byte)'/') + 1)..];
            if (last.Length > 0)
                command = UserText.Decode(last);
        }
        return (tgid, command);
    }
}
