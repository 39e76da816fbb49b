using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using Nonet.Interop;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.Launch;

/// <summary>
/// Whatever the launcher leaves when it ends, the host ends, as the launcher
/// would have (launcher/lifetime.c): SIGTERM, a grace of
/// <see cref="GraceMilliseconds"/>, then the whole tree stopped and killed.
/// The launcher leaves something when it is killed (by anyone: the command
/// runs with its uid) or gives up on a process SIGKILL did not end in time;
/// the command itself dies of its parent-death signal.  The host is a child
/// subreaper too, so with the launcher gone the command's orphans become the
/// host's children, and the host ends them by descent exactly as the
/// launcher does (while the launcher lives, it is the nearer subreaper and
/// takes them).  Each is signalled through its /proc/PID directory, a pidfd;
/// a child's pid is its own until the host reaps it.
/// </summary>
internal static unsafe class Leftovers
{
    public const int GraceMilliseconds = 1000;

    private const int StopMilliseconds = 3000;
    private const int KillMilliseconds = 5000;

    private const int PR_SET_CHILD_SUBREAPER = 36;

    /// <summary>Before the launcher starts.</summary>
    public static void BecomeSubreaper()
    {
        if (Libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
            throw new SystemCallException("prctl(PR_SET_CHILD_SUBREAPER)", Libc.Errno);
    }

    /// <summary>After the launcher ended (reaped), however it ended: one
    /// waitpid() when nothing is left.</summary>
    public static void LauncherEnded()
    {
        if (HasChildren())
            EndAll();
    }

    /// <summary>Reaps the children that died; whether any is left.</summary>
    private static bool HasChildren()
    {
        int st;
        int r;
        while ((r = Libc.waitpid(-1, &st, Libc.WNOHANG | Libc.__WALL)) > 0)
        {
        }
        return r == 0 || Libc.Errno != ECHILD;
    }

    private static void EndAll()
    {
        var terminated = new HashSet<int>();
        long deadline = Environment.TickCount64 + GraceMilliseconds;
        while (Sweep(terminated) > 0 && Environment.TickCount64 < deadline)
            Thread.Sleep(20);
        // A fork bomb makes processes faster than one look per child can
        // end them: stop the whole tree (stopped processes cannot fork),
        // until two passes in a row find nothing running, then kill it.
        deadline = Environment.TickCount64 + StopMilliseconds;
        for (int quiet = 0; quiet < 2 && Environment.TickCount64 < deadline;)
        {
            if (!HasChildren() || SignalTree(SIGSTOP, out int running) == 0)
                return;
            quiet = running == 0 ? quiet + 1 : 0;
            if (running > 0)
                Thread.Sleep(1);
        }
        deadline = Environment.TickCount64 + KillMilliseconds;
        while (HasChildren() && Environment.TickCount64 < deadline)
        {
            SignalTree(SIGKILL, out _);
            Thread.Sleep(5);
        }
    }

    /// <summary>Reaps the children that died, then signals every live one
    /// (SIGTERM once each, with SIGCONT if stopped); returns how many there
    /// were, those that died during the pass included.  An orphan's children
    /// become the host's when it dies, and after a pid wrap they may have
    /// been read before it, as its own: the pass that finds it dead is not
    /// the last (launcher/lifetime.c, sweep).</summary>
    private static int Sweep(HashSet<int> terminated)
    {
        HasChildren();
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
                if (terminated.Add(pid))
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

    /// <summary>A process as one pass over /proc read it.  Depth 1 is a
    /// child of the host; 0 not below it; -1 not known.</summary>
    private sealed class Node(int pid, int parent, char state, int dfd)
    {
        public int Pid = pid, Parent = parent, Dfd = dfd, Depth = -1, Guess = -1;
        public char State = state;
    }

    /// <summary>
    /// One pass over the whole tree below the host (launcher/lifetime.c,
    /// signal_tree, says why each step): <paramref name="signal"/> to every
    /// process shown to be below it, SIGSTOP only to one not stopped.  A
    /// process is shown below when its parent is the host, or a process
    /// shown below in this pass whose directory still names a live process
    /// after the child's stat was read; others wait for the next pass.
    /// Returns how many it found; <paramref name="running"/>, how many may
    /// still run.
    /// </summary>
    private static int SignalTree(int signal, out int running)
    {
        int self = Environment.ProcessId;
        var nodes = new Dictionary<int, Node>();
        int busy = 0;
        void Act(Node node)
        {
            Node? parent = node.Parent == self ? null : nodes.GetValueOrDefault(node.Parent);
            if (node.Parent != self && (parent is null || parent.Depth <= 0 || !Libc.TryPidfdSendSignal(parent.Dfd, 0)))
            {
                close(node.Dfd);
                node.Dfd = -1;
                busy++;
                return;
            }
            node.Depth = parent is null ? 1 : parent.Depth + 1;
            if (node.State == 'Z' || (signal == SIGSTOP && node.State is 'T' or 't'))
                return;
            busy++;
            Libc.PidfdSendSignal(node.Dfd, node.Pid, signal);
        }
        try
        {
            // Parents are mostly read before their children (pids grow):
            // each is signalled as soon as read, while the pass goes on.
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), out int pid))
                    continue;
                int dfd = OpenProcess(pid);
                if (dfd < 0)
                    continue;
                if (StatFields(dfd)?.Split(' ') is not [var state, var parentText, ..] || state is "X" || !int.TryParse(parentText, out int parent))
                {
                    close(dfd);
                    continue;
                }
                var node = nodes[pid] = new Node(pid, parent, state[0], dfd);
                if (parent == self || (nodes.TryGetValue(parent, out var p) && p.Depth > 0))
                    Act(node);
                else
                {
                    close(dfd);
                    node.Dfd = -1;
                }
            }
            // The rest (read before their parent, after a pid wrap), by
            // parent links, parents first, each read again.
            var rest = new List<Node>();
            foreach (var node in nodes.Values)
            {
                if (node.Depth == -1 && Guess(node, nodes, self) > 0)
                    rest.Add(node);
            }
            rest.Sort((a, b) => a.Guess.CompareTo(b.Guess));
            foreach (var node in rest)
            {
                node.Dfd = OpenProcess(node.Pid);
                if (node.Dfd < 0 || StatFields(node.Dfd)?.Split(' ') is not [var state, var parentText, ..] || parentText != $"{node.Parent}")
                {
                    if (node.Dfd >= 0)
                        close(node.Dfd);
                    node.Dfd = -1;
                    busy++;
                    continue;
                }
                node.State = state[0];
                Act(node);
            }
            running = busy;
            return nodes.Values.Count(n => n.Depth > 0) + rest.Count(n => n.Depth <= 0);
        }
        finally
        {
            foreach (var node in nodes.Values)
            {
                if (node.Dfd >= 0)
                    close(node.Dfd);
            }
        }
    }

    /// <summary>The depth of a node not shown yet, by parent links (0: not
    /// below the host; a loop, from a pid reused during the pass, is not).</summary>
    private static int Guess(Node node, Dictionary<int, Node> nodes, int self)
    {
        var path = new List<Node>();
        Node? p = node;
        while (p is not null && p.Depth <= 0 && p.Guess == -1)
        {
            if (p.Parent == self)
            {
                p.Guess = 1;
                break;
            }
            p.Guess = -2;
            path.Add(p);
            p = nodes.GetValueOrDefault(p.Parent);
        }
        int depth = p is null ? 0 : p.Depth > 0 ? p.Depth : Math.Max(p.Guess, 0);
        for (int i = path.Count - 1; i >= 0; i--)
        {
            if (depth > 0)
                depth++;
            path[i].Guess = depth;
        }
        return node.Guess;
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
