using System;
using System.IO;
using System.Text;
using System.Threading;
using Nonet.Interop;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.Launch;

/// <summary>
/// Should the launcher be killed (it never dies of a signal otherwise), the
/// host ends what the command left in its network namespace, as the launcher
/// would have (launcher/lifetime.c): SIGTERM, a grace of
/// <see cref="GraceMilliseconds"/>, then SIGKILL.  The command itself dies of
/// its parent-death signal; its orphans went to init, out of anyone's tree,
/// so the namespace is how they are found: the child's, taken as soon as it
/// exists, before anything of the command's can run.  A process is checked
/// and signalled through its /proc/PID directory (a pidfd), so a pid reused
/// meanwhile is never signalled.
/// </summary>
internal static unsafe class Leftovers
{
    public const int GraceMilliseconds = 1000;

    /// <summary>The command's network namespace ("net:[INODE]"), once known.</summary>
    private static string? netns;

    /// <summary>
    /// After the child reported its network namespace made: take its name.
    /// The child is the launcher's and cannot exit unnoticed, but its pid
    /// could be another's if it died: so it must still be the launcher's
    /// child, and in another namespace than nonet's.
    /// </summary>
    public static void Watch(int child, int launcher)
    {
        int dfd = OpenProcess(child);
        if (dfd < 0)
            return;
        try
        {
            string? ns = NetNamespace(dfd);
            if (ns is not null && ParentOf(dfd) == launcher && ns != OwnNetNamespace())
                netns = ns;
        }
        finally
        {
            close(dfd);
        }
    }

    /// <summary>After the launcher ended with <paramref name="waitStatus"/>.</summary>
    public static void LauncherEnded(int waitStatus)
    {
        bool killed = (waitStatus & 0x7f) != 0 && (waitStatus & 0xff) != 0x7f;
        if (killed && netns is { } ns)
            EndAll(ns);
        netns = null;
    }

    private static void EndAll(string ns)
    {
        var terminated = new System.Collections.Generic.HashSet<int>();
        long deadline = Environment.TickCount64 + GraceMilliseconds;
        while (Sweep(ns, SIGTERM, terminated) > 0 && Environment.TickCount64 < deadline)
            Thread.Sleep(20);
        deadline = Environment.TickCount64 + 5000;
        while (Sweep(ns, SIGKILL, terminated) > 0 && Environment.TickCount64 < deadline)
            Thread.Sleep(5);
    }

    /// <summary>Signals every live process in <paramref name="ns"/> (SIGTERM
    /// once each, with SIGCONT if stopped); returns how many there were.</summary>
    private static int Sweep(string ns, int signal, System.Collections.Generic.HashSet<int> terminated)
    {
        int found = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || pid == Environment.ProcessId)
                continue;
            int dfd = OpenProcess(pid);
            if (dfd < 0)
                continue;
            try
            {
                if (NetNamespace(dfd) != ns || StateOf(dfd) is 'Z' or 'X' or '\0')
                    continue;
                found++;
                if (signal != SIGTERM)
                    Libc.PidfdSendSignal(dfd, pid, signal);
                else if (terminated.Add(pid))
                {
                    Libc.PidfdSendSignal(dfd, pid, SIGTERM);
                    if (StateOf(dfd) == 'T')
                        Libc.PidfdSendSignal(dfd, pid, SIGCONT);
                }
            }
            finally
            {
                close(dfd);
            }
        }
        return found;
    }

    private static int OpenProcess(int pid)
    {
        byte[] path = Encoding.ASCII.GetBytes($"/proc/{pid}\0");
        fixed (byte* p = path)
            return open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    }

    private static string? OwnNetNamespace()
    {
        int dfd = OpenProcess(Environment.ProcessId);
        if (dfd < 0)
            return null;
        try
        {
            return NetNamespace(dfd);
        }
        finally
        {
            close(dfd);
        }
    }

    private static string? NetNamespace(int dfd)
    {
        byte* buffer = stackalloc byte[64];
        byte* name = stackalloc byte[8];
        "ns/net\0"u8.CopyTo(new Span<byte>(name, 8));
        nint n = Libc.readlinkat(dfd, name, buffer, 64);
        return n <= 0 ? null : Encoding.ASCII.GetString(buffer, (int)n);
    }

    /// <summary>From the process's stat file: "PID (COMM) S PPID ...".</summary>
    private static string? StatFields(int dfd)
    {
        byte* name = stackalloc byte[8];
        "stat\0"u8.CopyTo(new Span<byte>(name, 8));
        int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0)
            return null;
        try
        {
            byte* buffer = stackalloc byte[512];
            nint n = (nint)read(fd, buffer, 512);
            if (n <= 0)
                return null;
            string s = Encoding.UTF8.GetString(buffer, (int)n);
            int end = s.LastIndexOf(')');
            return end < 0 || end + 2 >= s.Length ? null : s[(end + 2)..];
        }
        finally
        {
            close(fd);
        }
    }

    private static char StateOf(int dfd) => StatFields(dfd) is { Length: > 0 } f ? f[0] : '\0';

    private static int ParentOf(int dfd)
    {
        var fields = StatFields(dfd)?.Split(' ');
        return fields is { Length: > 1 } && int.TryParse(fields[1], out int ppid) ? ppid : -1;
    }
}
