using System;
using System.Collections.Generic;
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
internal sealed unsafe class AttemptRecorder
{
    private const int MaxAddress = 128;
    private const int MaxDnsPayload = 1024;
    private const int MaxMessages = 1024; // UIO_MAXIOV, the kernel's own cap for sendmmsg
    private const int MsgHdrSize = 56;
    private const int MmsgHdrSize = 64;

    private readonly IReadOnlyCollection<IPAddress> nameservers;
    private readonly int fileFd;

    public ReportTally Tally { get; } = new();

    /// <param name="nameservers">the addresses nonet answers DNS on inside</param>
    /// <param name="fileFd">--report-file's descriptor, or -1</param>
    public AttemptRecorder(IReadOnlyCollection<IPAddress> nameservers, int fileFd)
    {
        this.nameservers = nameservers;
        this.fileFd = fileFd;
    }

    /// <summary>Under --allow, nonet carried out the connect() itself
    /// (<see cref="Allow.ConnectBroker"/>): the attempt it made, if it went
    /// outside, with whether the allow-list let it through.</summary>
    public void Connected(int tid, SocketKind socket, byte[] address, bool allowed)
    {
        _ = allowed; // the report's verdict field comes with the report's own change
        var destination = AttemptClassifier.Classify(CallKind.Connect, socket, address, true, 0, nameservers);
        if (destination is null)
            return;
        var (tgid, command) = ProcessNames.Of(tid);
        if (destination.Path is { } path && !ProcessNames.IsSocketFor(tgid, path))
            return; // no socket there (nonet hides the resolvers'): the call fails
        Record(new Attempt(DateTime.UtcNow, destination, tgid, command, CallKind.Connect));
    }

    /// <summary>Records the attempt to the outside that call <paramref name="n"/>
    /// makes, if it makes one; <paramref name="listener"/> is the filter's,
    /// to check that the call still waits.  The caller answers the call.</summary>
    public void Inspect(in Notification n, int listener)
    {
        CallKind call;
        if (n.Nr == Calls.Connect) call = CallKind.Connect;
        else if (n.Nr == Calls.SendTo) call = CallKind.SendTo;
        else if (n.Nr == Calls.SendMsg) call = CallKind.SendMsg;
        else if (n.Nr == Calls.SendMmsg) call = CallKind.SendMmsg;
        else return;

        int pid = (int)n.Pid;
        using var memory = ProcessMemory.Open(pid);
        if (memory is null)
            return;
        // A connect() or sendto() to the loopback is decided by its address alone.
        (ulong At, ulong Length) named = call == CallKind.Connect ? (n.Args[1], n.Args[2])
            : call == CallKind.SendTo ? (n.Args[4], n.Args[5]) : (0, 0);
        if (named.At != 0 && AttemptClassifier.StaysInside(memory.Read(named.At, (int)Math.Min(named.Length, MaxAddress)), nameservers))
            return;
        using var socket = TheirSocket.Open(pid, (int)n.Args[0]);
        if (socket is null || socket.Kind.Domain is not (SocketKind.AfInet or SocketKind.AfInet6 or SocketKind.AfUnix))
            return;

        var found = new List<Destination>();
        switch (call)
        {
            case CallKind.Connect:
                Add(found, call, socket, memory.Read(n.Args[1], (int)Math.Min(n.Args[2], MaxAddress)), true, 0, 0, 0);
                break;
            case CallKind.SendTo:
                AddSend(found, call, socket, memory, n.Args[4], n.Args[5], (int)n.Args[3], n.Args[1], n.Args[2]);
                break;
            case CallKind.SendMsg:
                AddMessage(found, call, socket, memory, n.Args[1], (int)n.Args[2]);
                break;
            case CallKind.SendMmsg:
                int count = (int)Math.Min(n.Args[2], MaxMessages);
                for (int i = 0; i < count; i++)
                {
                    int before = found.Count;
                    if (!AddMessage(found, call, socket, memory, n.Args[1] + (ulong)(i * MmsgHdrSize), (int)n.Args[3]))
                        break;
                    // The kernel stops at the first message that fails, and
                    // every message to the outside fails.
                    if (found.Count > before && !AttemptClassifier.IsDnsDatagram(found[^1], nameservers))
                        break;
                }
                break;
        }
        if (found.Count == 0 || !StillValid(listener, n.Id))
            return;

        var (tgid, command) = ProcessNames.Of(pid);
        var now = DateTime.UtcNow;
        foreach (var destination in found)
        {
            if (destination.Path is { } path && !ProcessNames.IsSocketFor(tgid, path))
                continue; // no socket there (nonet hides the resolvers'): the call fails
            Record(new Attempt(now, destination, tgid, command, call));
        }
    }

    private bool AddMessage(List<Destination> found, CallKind call, TheirSocket socket, ProcessMemory memory, ulong header, int flags)
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
        AddSend(found, call, socket, memory, name, nameLength, flags, data, dataLength);
        return true;
    }

    private void AddSend(List<Destination> found, CallKind call, TheirSocket socket, ProcessMemory memory,
        ulong name, ulong nameLength, int flags, ulong data, ulong dataLength)
    {
        bool named = name != 0 && nameLength > 0;
        byte[] address = named ? memory.Read(name, (int)Math.Min(nameLength, MaxAddress)) : socket.Peer();
        Add(found, call, socket, address, named, flags, data, dataLength, memory);
    }

    private void Add(List<Destination> found, CallKind call, TheirSocket socket, byte[] address, bool named, int flags,
        ulong data, ulong dataLength, ProcessMemory? memory = null)
    {
        var destination = AttemptClassifier.Classify(call, socket.Kind, address, named, flags, nameservers);
        if (destination is null)
            return;
        if (memory is not null && AttemptClassifier.IsDnsDatagram(destination, nameservers) && data != 0
            && DnsMessage.ParseQuery(memory.Read(data, (int)Math.Min(dataLength, MaxDnsPayload))) is { Question: { } question })
            destination = destination with { DnsName = question.Name, DnsType = question.TypeName };
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

        public static TheirSocket? Open(int tid, int targetFd)
        {
            if (targetFd < 0)
                return null;
            // The caller may be a thread other than its process's first:
            // PIDFD_THREAD (Linux 6.9), else the process, whose descriptors
            // its threads share.
            int pidfd = PidfdOpen(tid, PidfdThread);
            if (pidfd < 0)
                pidfd = PidfdOpen(ProcessNames.Of(tid).Tgid, 0);
            if (pidfd < 0)
                return null;
            int fd = PidfdGetfd(pidfd, targetFd);
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

        public static ProcessMemory? Open(int tid)
        {
            int fd = ProcessNames.OpenProc(tid, "mem");
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
        string command = Read($"/proc/{tgid}/comm")?.TrimEnd('\n') ?? "?";
        if (Encoding.UTF8.GetByteCount(command) >= CommLength && Read($"/proc/{tgid}/cmdline") is { Length: > 0 } cmdline)
        {
            string argv0 = cmdline.Split('\0')[0];
            string last = argv0[(argv0.LastIndexOf('/') + 1)..];
            if (last.Length > 0)
                command = last;
        }
        return (tgid, command);
    }

    /// <summary>Whether <paramref name="path"/>, as the process sees it
    /// (its root, its mounts, its working directory), is a Unix socket.</summary>
    public static bool IsSocketFor(int pid, string path)
    {
        // Through its root, and with its symbolic links resolved there
        // (RESOLVE_IN_ROOT): /var/run -> /run must not lead to the host's.
        int root = OpenProc(pid, path.StartsWith('/') ? "root" : "cwd");
        if (root < 0)
            return false;
        byte[] name = Encoding.UTF8.GetBytes(path.TrimStart('/') + "\0");
        int fd;
        fixed (byte* n = name)
            fd = Seccomp.OpenInRoot(root, n, Seccomp.O_PATH | Tmds.Linux.LibC.O_CLOEXEC);
        Sockets.close(root);
        if (fd < 0)
            return false;
        Tmds.Linux.stat st;
        int rc = Tmds.Linux.LibC.fstat(fd, &st);
        Sockets.close(fd);
        return rc == 0 && (st.st_mode & 0xf000) == 0xc000; // S_IFSOCK
    }
}
