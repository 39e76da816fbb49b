using System;
using System.Globalization;
using System.Net;
using System.Text;
using Nonet.Interop;

namespace Nonet.Report;

/// <summary>
/// A Unix socket path as the calling thread sees it, not as nonet would:
/// /proc/self, /proc/thread-self and /dev/fd name the caller's own entries,
/// a relative path starts at the thread's working directory (its own after
/// unshare(CLONE_FS)), and an absolute one at its root.
/// </summary>
internal static unsafe class CallerPaths
{
    /// <summary>The path with the names that mean "the process reading
    /// this" made the caller's: /proc/self to /proc/TGID, /proc/thread-self
    /// to /proc/TGID/task/TID, /dev/fd (and /dev/stdin...) to /proc/TGID/fd.
    /// Repeated and "." components are dropped first, as lookup would.  Pure.</summary>
    public static string Rewrite(string path, int tgid, int tid)
    {
        if (!path.StartsWith('/'))
            return path;
        var parts = new System.Collections.Generic.List<string>();
        foreach (var part in path.Split('/'))
        {
            if (part.Length > 0 && part != ".")
                parts.Add(part);
        }
        string Rest(int from) => from < parts.Count ? "/" + string.Join('/', parts.GetRange(from, parts.Count - from)) : "";
        string Id(int id) => id.ToString(CultureInfo.InvariantCulture);
        if (parts.Count >= 2 && parts[0] == "proc" && parts[1] == "self")
            return $"/proc/{Id(tgid)}{Rest(2)}";
        if (parts.Count >= 2 && parts[0] == "proc" && parts[1] == "thread-self")
            return $"/proc/{Id(tgid)}/task/{Id(tid)}{Rest(2)}";
        if (parts.Count >= 2 && parts[0] == "dev" && parts[1] == "fd")
            return $"/proc/{Id(tgid)}/fd{Rest(2)}";
        if (parts.Count >= 2 && parts[0] == "dev" && parts[1] is "stdin" or "stdout" or "stderr")
            return $"/proc/{Id(tgid)}/fd/{(parts[1] == "stdin" ? 0 : parts[1] == "stdout" ? 1 : 2)}{Rest(2)}";
        return "/" + string.Join('/', parts);
    }

    /// <summary>For /proc/PID[/task/TID]/{fd/N,cwd,root}/REST: the magic
    /// link (which openat2's RESOLVE_IN_ROOT refuses to follow) and REST.</summary>
    public static (string Link, string Tail)? SplitMagicLink(string path)
    {
        var parts = path.Split('/');
        // "", "proc", PID, ...
        if (parts.Length < 4 || parts[0] != "" || parts[1] != "proc" || !uint.TryParse(parts[2], out _))
            return null;
        int i = 3;
        if (parts.Length > 5 && parts[3] == "task" && uint.TryParse(parts[4], out _))
            i = 5;
        if (i < parts.Length && parts[i] is "cwd" or "root")
            i += 1;
        else if (i + 1 < parts.Length && parts[i] == "fd" && uint.TryParse(parts[i + 1], out _))
            i += 2;
        else
            return null;
        return (string.Join('/', parts[..i]), string.Join('/', parts[i..]));
    }

    /// <summary>
    /// Whether a connection to <paramref name="rawPath"/> by thread
    /// <paramref name="tid"/> reaches a socket outside this run: there is a
    /// socket there, and the namespace holds no socket bound to it (what
    /// the command or a process of its own listens on stays inside).
    /// Without the namespace's sock_diag socket, every socket counts.
    /// </summary>
    public static bool ReachesOutside(int tid, int tgid, byte[] rawPath, NamespaceSockets? inside)
    {
        int fd = Open(tid, tgid, rawPath);
        if (fd < 0)
            return false;
        Tmds.Linux.stat st;
        int rc = Tmds.Linux.LibC.fstat(fd, &st);
        Sockets.close(fd);
        if (rc != 0 || (st.st_mode & 0xf000) != 0xc000) // S_IFSOCK
            return false;
        var (major, minor) = NamespaceSockets.Split((ulong)st.st_dev);
        return inside?.HasUnixSocketBoundTo(major, minor, (ulong)st.st_ino) != true;
    }

    /// <summary>The file at the path, O_PATH, resolved in the caller's context.</summary>
    private static int Open(int tid, int tgid, byte[] rawPath)
    {
        // Paths are bytes; the rewrite works on its Latin-1 image, which
        // keeps every byte.
        string path = Encoding.Latin1.GetString(rawPath);
        int flags = Seccomp.O_PATH | Tmds.Linux.LibC.O_CLOEXEC;
        if (!path.StartsWith('/'))
        {
            int cwd = ProcessNames.OpenProc(tid, "cwd");
            if (cwd < 0)
                return -1;
            int relative = At(cwd, path, flags, inRoot: false);
            Sockets.close(cwd);
            return relative;
        }
        path = Rewrite(path, tgid, tid);
        if (SplitMagicLink(path) is var (link, tail))
        {
            // The caller's descriptor, working directory or root, as the
            // kernel links it: followed as nonet (the same pid namespace).
            int dir = At(Tmds.Linux.LibC.AT_FDCWD, link, flags, inRoot: false);
            if (dir < 0 || tail.Length == 0)
                return dir;
            int inside = At(dir, tail, flags, inRoot: false);
            Sockets.close(dir);
            return inside;
        }
        // Through its root, and with its symbolic links resolved there
        // (RESOLVE_IN_ROOT): /var/run -> /run must not lead to the host's.
        int root = ProcessNames.OpenProc(tid, "root");
        if (root < 0)
            return -1;
        int fd = At(root, path.TrimStart('/'), flags, inRoot: true);
        Sockets.close(root);
        return fd;
    }

    private static int At(int dir, string path, int flags, bool inRoot)
    {
        byte[] name = Encoding.Latin1.GetBytes(path + "\0");
        fixed (byte* n = name)
            return inRoot ? Seccomp.OpenInRoot(dir, n, flags) : Seccomp.OpenAt(dir, n, flags);
    }
}

/// <summary>The namespace's TCP and UDP sockets, from /proc/PID/net/* of a
/// process inside: which socket (inode) has a given local address.</summary>
internal static class SocketTable
{
    public static ulong? Inode(int pid, bool tcp, IPAddress address, int port)
    {
        bool v6 = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        string file = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/net/{(tcp ? "tcp" : "udp")}{(v6 ? "6" : "")}";
        if (RawFile.ReadText(file, 1 << 20) is not { } table)
            return null;
        string wanted = Local(address, port);
        foreach (var line in table.Split('\n'))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 9 && fields[1].Equals(wanted, StringComparison.OrdinalIgnoreCase)
                && ulong.TryParse(fields[9], NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode))
                return inode;
        }
        return null;
    }

    /// <summary>The kernel's "ADDRESS:PORT" in hex, the address as the
    /// host-order words of /proc/net/tcp (little-endian machines).</summary>
    internal static string Local(IPAddress address, int port)
    {
        var bytes = address.GetAddressBytes();
        var text = new StringBuilder();
        for (int word = 0; word < bytes.Length; word += 4)
        {
            for (int i = 3; i >= 0; i--)
                text.Append(bytes[word + i].ToString("X2", CultureInfo.InvariantCulture));
        }
        return text + ":" + port.ToString("X4", CultureInfo.InvariantCulture);
    }
}

/// <summary>One descriptor (of /dev/null) that nonet holds back while it
/// watches the command, to free when it has no other.</summary>
internal sealed unsafe class DescriptorReserve
{
    private int fd = -1;

    public DescriptorReserve() => Take();

    public void Take()
    {
        if (fd >= 0)
            return;
        byte[] path = "/dev/null\0"u8.ToArray();
        fixed (byte* p = path)
            fd = Tmds.Linux.LibC.open(p, Tmds.Linux.LibC.O_RDONLY | Tmds.Linux.LibC.O_CLOEXEC, 0);
    }

    public void Release()
    {
        if (fd >= 0)
            Sockets.close(fd);
        fd = -1;
    }
}
