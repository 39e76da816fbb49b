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
/// host ends what the command left running, as the launcher would have
/// (launcher/lifetime.c): SIGTERM, a grace of <see cref="GraceMilliseconds"/>,
/// then SIGKILL.  The command itself dies of its parent-death signal.  The
/// host is a child subreaper too, so with the launcher gone the command's
/// orphans become the host's children, and the host ends them by descent
/// exactly as the launcher does (while the launcher lives, it is the nearer
/// subreaper and takes them).  Each is signalled through its /proc/PID
/// directory, a pidfd; a child's pid is its own until the host reaps it.
/// </summary>
internal static unsafe class Leftovers
{
    public const int GraceMilliseconds = 1000;

    private const int PR_SET_CHILD_SUBREAPER = 36;

    /// <summary>Before the launcher starts.</summary>
    public static void BecomeSubreaper()
    {
        if (Libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
            throw new SystemCallException("prctl(PR_SET_CHILD_SUBREAPER)", Libc.Errno);
    }

    /// <summary>After the launcher ended with <paramref name="waitStatus"/>.</summary>
    public static void LauncherEnded(int waitStatus)
    {
        bool killed = (waitStatus & 0x7f) != 0 && (waitStatus & 0xff) != 0x7f;
        if (killed)
            EndAll();
    }

    private static void EndAll()
    {
        var terminated = new System.Collections.Generic.HashSet<int>();
        long deadline = Environment.TickCount64 + GraceMilliseconds;
        while (Sweep(SIGTERM, terminated) > 0 && Environment.TickCount64 < deadline)
            Thread.Sleep(20);
        deadline = Environment.TickCount64 + 5000;
        while (Sweep(SIGKILL, terminated) > 0 && Environment.TickCount64 < deadline)
            Thread.Sleep(5);
    }

    /// <summary>Reaps the children that died, then signals every live one
    /// (SIGTERM once each, with SIGCONT if stopped); returns how many there
    /// were, those that died during the pass included.  An orphan's children
    /// become the host's when it dies, and after a pid wrap they may have
    /// been read before it, as its own: the pass that finds it dead is not
    /// the last (launcher/lifetime.c, sweep).</summary>
    private static int Sweep(int signal, System.Collections.Generic.HashSet<int> terminated)
    {
        int st;
        while (Libc.waitpid(-1, &st, Libc.WNOHANG | Libc.__WALL) > 0)
        {
        }
        int self = Environment.ProcessId;
        int found = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
                continue;
            int dfd = OpenProcess(pid);
            if (dfd < 0)
                continue;
            try
            {
                if (StatFields(dfd)?.Split(' ') is not [var state, var parent, ..] || parent != $"{self}" || state is "X")
                    continue;
                found++;
                if (state is "Z")
                    continue; // reaped at the next pass
                if (signal != SIGTERM)
                    Libc.PidfdSendSignal(dfd, pid, signal);
                else if (terminated.Add(pid))
                {
                    Libc.PidfdSendSignal(dfd, pid, SIGTERM);
                    if (state == "T")
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
}
