using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>Nothing outlives nonet, not even a fork bomb (issue 19): the
/// launcher stops the whole tree before it kills it, and the host ends what
/// a launcher leaves, however the launcher ended.</summary>
[NonParallelizable]
public sealed class ForkBombTests(Identity identity) : EndToEndTest(identity)
{
    /// <summary>Runs a script as an ordinary uid: as root, a fresh one with no
    /// other process, so that 'ulimit -u' bites (root is exempt from it) and
    /// counts only this test's processes.</summary>
    private RunResult AsOrdinaryUser(string script, string marker)
    {
        var env = new Dictionary<string, string?> { ["NONET"] = Harness.Nonet };
        if (!Harness.IsRoot)
            return Harness.Run(Who, "/bin/bash", ["-c", script, marker], env, timeout: TimeSpan.FromSeconds(60));
        uint uid = 3_900_000 + (uint)Random.Shared.Next(100_000);
        env["HOME"] = "/";
        return Harness.Run(Identity.Root, "setpriv", [$"--reuid={uid}", $"--regid={uid}", "--clear-groups", "/bin/bash", "-c", script, marker],
            env, timeout: TimeSpan.FromSeconds(60));
    }

    private static List<int> Marked(string marker) =>
        Harness.ProcessesWithArgument(marker).Select(line => int.Parse(line.Split(':')[0])).ToList();

    /// <summary>Whatever a failing run left: stopped first, so that it
    /// cannot fork any more, then killed.</summary>
    private static void EndAllMarked(string marker)
    {
        for (int pass = 0; pass < 50 && Marked(marker) is { Count: > 0 } left; pass++)
        {
            foreach (int pid in left)
                Tmds.Linux.LibC.kill(pid, Tmds.Linux.LibC.SIGSTOP);
        }
        for (int pass = 0; pass < 200 && Marked(marker) is { Count: > 0 } left; pass++)
        {
            foreach (int pid in left)
                Tmds.Linux.LibC.kill(pid, Tmds.Linux.LibC.SIGSTOP);
            foreach (int pid in left)
                Tmds.Linux.LibC.kill(pid, Tmds.Linux.LibC.SIGKILL);
            Thread.Sleep(20);
        }
    }

    [Test]
    public void A_fork_bomb_under_a_process_limit_ends_with_the_command()
    {
        string marker = $"nonet-fork-bomb-{Guid.NewGuid():N}";
        // The bomb's processes are bash forks: each keeps $0, the marker, in
        // its command line.  The limit is 300 beyond the threads the user
        // has already; the count (with the builtin test -O, no fork) shows
        // the bomb ran.  A churning bomb (f|f&) lost to the old sweep, one
        // pass per generation of the launcher's children, on a quiet
        // machine: this one is what beats such a sweep.  Each process forks
        // the next (a chain, one generation each) and waits, with the
        // builtin read on a pipe nobody writes, until the command has
        // counted 150 of them (or 10 s passed) and made the file "go"; then
        // all spin on the CPU, ignoring SIGTERM, and the command exits a
        // second later: a sweep that kills a generation a pass, starved in
        // the bomb's session, runs out of time (the old one left 144 of
        // ~200 by hand).  The guard: every process ends by itself 20 s
        // after the command started (bash's SECONDS goes on in forks), and
        // the limit bounds their number.  The bomb holds none of nonet's
        // output, or the run would wait for it to end by itself.
        string inside = """
            count() { n=0; for p in /proc/[0-9]*; do [ -O "$p" ] && n=$((n+1)); done; }
            count; before=$n
            go=$(mktemp -d) || exit 98
            ulimit -u $(( $(ps -L -u "$(id -u)" --no-headers | wc -l) + 300 )) || exit 99
            exec 9<> <(:)
            (trap "" TERM; f(){ f & until [ -e "$go/go" ] || (( SECONDS >= 20 )); do read -t 0.1 -u 9; done; while (( SECONDS < 20 )); do :; done; }; f) </dev/null >/dev/null 2>&1 &
            until count; (( n - before >= 150 || SECONDS >= 10 )); do read -t 0.1 -u 9; done
            : > "$go/go"
            read -t 1 -u 9
            count; echo "$before $n $go"
            exit 7
            """;
        var clock = Stopwatch.StartNew();
        try
        {
            var r = AsOrdinaryUser($"exec \"$NONET\" bash -c '{inside.Replace("'", "'\\''")}' \"$0\"", marker);
            clock.Stop();
            var left = Harness.ProcessesWithArgument(marker).ToList();
            Assert.That(r.ExitCode, Is.EqualTo(7), r.ToString());
            var fields = r.Stdout.Trim().Split(' ');
            if (fields.Length == 3 && fields[2].StartsWith("/tmp/", StringComparison.Ordinal))
                Directory.Delete(fields[2], recursive: true);
            var counts = fields.Take(2).Select(int.Parse).ToArray();
            Assert.That(counts[1] - counts[0], Is.GreaterThan(50), "the bomb should have run\n" + r);
            Assert.That(left, Is.Empty, $"{left.Count} processes of the bomb outlived nonet");
            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), r.ToString());
        }
        finally
        {
            EndAllMarked(marker);
        }
    }

    [Test]
    public void The_host_ends_what_a_launcher_that_exits_normally_leaves()
    {
        // A stand-in launcher: the real one as its child, and an orphan of
        // its own, which becomes the host's (the nearest subreaper); then it
        // exits with the real one's status, not killed.
        string dir = Harness.TempDirectory(Who);
        string marker = $"1000.{Random.Shared.Next(100000, 999999)}";
        string launcher = Path.Combine(dir, "launcher");
        // (The orphan must not hold the host's pipes, its arguments.)
        File.WriteAllText(launcher, "#!/bin/bash\n(for fd; do eval \"exec $fd>&-\"; done; "
            + $"exec sleep {marker} </dev/null >/dev/null 2>&1 &)\n"
            + $"\"{Path.Combine(Harness.BinDirectory, "nonet-launcher")}\" \"$@\"\nexit $?\n");
        File.SetUnixFileMode(launcher, (UnixFileMode)0x1ed); // 0755
        try
        {
            var r = NonetWith(new Dictionary<string, string?> { ["NONET_LAUNCHER"] = launcher }, "sh", "-c", "exit 5");
            Assert.That(r.ExitCode, Is.EqualTo(5), r.ToString());
            Assert.That(Harness.ProcessesWithArgument(marker), Is.Empty, "left running after the launcher exited");
        }
        finally
        {
            EndAllMarked(marker);
        }
    }
}
