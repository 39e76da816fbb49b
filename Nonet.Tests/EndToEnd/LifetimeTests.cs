using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>Nothing outlives nonet (issue 13): what the command leaves
/// running is ended when it exits, when nonet is killed, and when the
/// launcher is.</summary>
public sealed class LifetimeTests(Identity identity) : EndToEndTest(identity)
{
    /// <summary>A sleep duration no other test uses, to find its processes by.</summary>
    private static string Marker() => $"1000.{Random.Shared.Next(100000, 999999)}";

    /// <summary>Live processes (zombies have no command line) whose command
    /// line holds <paramref name="marker"/>.</summary>
    private static List<string> Left(string marker) => Harness.ProcessesWithArgument(marker).ToList();

    private static List<string> WaitUntilNoneLeft(string marker, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        List<string> left;
        while ((left = Left(marker)).Count > 0 && DateTime.UtcNow < deadline)
            Thread.Sleep(20);
        return left;
    }

    [Test]
    public void Background_jobs_daemons_and_double_forks_end_with_the_command_and_its_status_is_kept()
    {
        string a = Marker(), b = Marker(), c = Marker();
        var clock = Stopwatch.StartNew();
        // Leftovers hold no pipe of the test's: it must not wait for them.
        var r = Nonet("sh", "-c", $"echo $$; test -d /proc/{Environment.ProcessId} && echo sees-the-host; "
            + $"exec </dev/null >/dev/null 2>&1; sleep {a} & setsid sleep {b} & (sleep {c} &) ; exit 3");
        clock.Stop();
        Assert.That(r.ExitCode, Is.EqualTo(3), r.ToString());
        // No PID namespace: the command has a pid of the host's and sees the host's processes.
        var lines = r.Stdout.Split('\n');
        Assert.That(int.Parse(lines[0]), Is.GreaterThan(1), r.ToString());
        Assert.That(lines[1], Is.EqualTo("sees-the-host"), r.ToString());
        // nonet waits for them: nothing is left by the time it exits.
        Assert.That(Left(a).Concat(Left(b)).Concat(Left(c)), Is.Empty);
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), "sleep ends at SIGTERM, well within the grace");
    }

    [Test]
    public void A_leftover_that_ignores_SIGTERM_is_killed_after_the_one_second_grace()
    {
        string m = Marker();
        var clock = Stopwatch.StartNew();
        // The command waits until the leftover ignores SIGTERM (its file is there).
        string d = Harness.TempDirectory(Who);
        var r = Nonet("sh", "-c", $"exec </dev/null >/dev/null 2>&1; (trap '' TERM; : >{d}/ready; exec sleep {m}) & "
            + $"until [ -e {d}/ready ]; do sleep .05; done; exit 4");
        clock.Stop();
        Assert.That(r.ExitCode, Is.EqualTo(4), r.ToString());
        Assert.That(Left(m), Is.Empty);
        Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(1)).And.LessThan(TimeSpan.FromSeconds(6)), "killed after the grace");
    }

    [Test]
    public void A_stopped_leftover_is_ended_too()
    {
        string m = Marker();
        var r = Nonet("sh", "-c", $"exec </dev/null >/dev/null 2>&1; sleep {m} & kill -STOP $!; exit 0");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(Left(m), Is.Empty);
    }

    [Test]
    public void Killing_nonet_at_random_moments_leaves_nothing_running()
    {
        string m = Marker();
        for (int i = 0; i < 200; i++)
        {
            using var nonet = Harness.Start(Who, Harness.Nonet, ["sh", "-c", $"sleep {m}; :"]);
            Thread.Sleep(Random.Shared.Next(0, 25));
            Tmds.Linux.LibC.kill(nonet.Id, Tmds.Linux.LibC.SIGKILL);
            Assert.That(nonet.WaitForExit(10_000), Is.True, "nonet did not die of SIGKILL");
        }
        Assert.That(WaitUntilNoneLeft(m, TimeSpan.FromSeconds(10)), Is.Empty, "left running after nonet was killed");
    }

    [Test]
    public void Killing_the_launcher_at_random_moments_leaves_nothing_running()
    {
        string m = Marker();
        int killed = 0;
        for (int i = 0; i < 200; i++)
        {
            using var nonet = Harness.Start(Who, Harness.Nonet, ["sh", "-c", $"sleep {m}; :"]);
            Thread.Sleep(Random.Shared.Next(0, 25));
            int launcher = WaitForChild(nonet.Id, TimeSpan.FromSeconds(10));
            if (launcher > 0 && Tmds.Linux.LibC.kill(launcher, Tmds.Linux.LibC.SIGKILL) == 0)
                killed++;
            Assert.That(nonet.WaitForExit(10_000), Is.True, "nonet did not end after its launcher was killed");
        }
        Assert.That(killed, Is.GreaterThan(150), "the launcher should mostly have been there to kill");
        Assert.That(WaitUntilNoneLeft(m, TimeSpan.FromSeconds(10)), Is.Empty, "left running after the launcher was killed");
    }

    [Test]
    public void A_killed_publish_helper_is_reaped_at_once()
    {
        int port = ForwardingTests.FreeHostPort();
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--publish", $"{port}", "sh", "-c", "echo ready; exec sleep 20"]);
        Assert.That(nonet.StandardOutput.ReadLineAsync().Wait(TimeSpan.FromSeconds(20)), Is.True, "no 'ready'");
        try
        {
            int launcher = WaitForChild(nonet.Id, TimeSpan.FromSeconds(5));
            // The helper names itself once it runs, which the command need not wait for.
            int helper = 0;
            for (var until = DateTime.UtcNow.AddSeconds(5); helper == 0 && DateTime.UtcNow < until; Thread.Sleep(10))
                helper = Children(launcher).FirstOrDefault(p => Comm(p) == "nonet-publish");
            Assert.That(helper, Is.Positive, "the publish helper should be running");
            Tmds.Linux.LibC.kill(helper, Tmds.Linux.LibC.SIGKILL);
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (Exists(helper) && DateTime.UtcNow < deadline)
                Thread.Sleep(20);
            Assert.That(Exists(helper), Is.False, $"the helper {helper} is still there (a zombie?) while the command runs");
        }
        finally
        {
            Tmds.Linux.LibC.kill(nonet.Id, Tmds.Linux.LibC.SIGTERM);
            Harness.Finish(nonet);
        }
    }

    /// <summary>Only one test at a time moves the kernel's next pid.</summary>
    private static readonly object pidOrder = new();

    /// <summary>
    /// After a pid wrap an orphan can have a lower pid than its parent.  One
    /// pass over /proc then reads the orphan while it is still its parent's,
    /// and the parent once it has died: in that pass neither is a child to
    /// end.  Made certain here: kernel.ns_last_pid gives the orphan-to-be a
    /// low pid, and 50 sleeps come between it and its parent; strace slows
    /// each openat of the process that sweeps (the launcher when nonet is
    /// killed, nonet when the launcher is), so that the test sees where a
    /// sweep is, and stops it among the sleeps; the orphan's parent, which
    /// ignores SIGTERM, is killed, strace lets go and the sweep goes on.  The
    /// orphan must still be ended, with SIGTERM first (the launcher's sweeps
    /// missed it; nonet's gave it SIGKILL alone, once the grace was over).
    /// </summary>
    [TestCase("nonet")]
    [TestCase("launcher")]
    public void An_orphan_with_a_lower_pid_than_its_parent_is_ended_when_the_parent_dies_during_a_sweep(string killed)
    {
        if (!Harness.IsRoot)
            Assert.Ignore("needs root: it sets kernel.ns_last_pid and traces nonet's processes");
        string m = Marker();
        // sh, the command, runs the parent, which ignores SIGTERM, and at a
        // word from the test starts the orphan-to-be, which writes TERM to a
        // file when SIGTERM ends it.
        const string orphanCode = "import signal, sys, time\n"
            + "signal.signal(signal.SIGTERM, lambda *_: (open(sys.argv[1], 'w').write('TERM'), sys.exit(0)))\n"
            + "print('ready', flush=True)\ntime.sleep(1000)\n";
        const string parent = "import os, signal, subprocess, sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            + "print(os.getpid(), flush=True)\nsys.stdin.readline()\n"
            + "o = subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2], sys.argv[3]], stdout=subprocess.PIPE)\n"
            + "o.stdout.readline()\nprint(o.pid, flush=True)\nsys.stdin.readline()\n";
        string ended = Path.Combine(Harness.TempDirectory(Who), "ended");
        lock (pidOrder)
        {
            int pidMax = int.Parse(File.ReadAllText("/proc/sys/kernel/pid_max").Trim(), System.Globalization.CultureInfo.InvariantCulture);
            File.WriteAllText("/proc/sys/kernel/ns_last_pid", $"{pidMax - 2000}");
            using var nonet = Harness.Start(Who, Harness.Nonet, ["sh", "-c", $"{Python} -c \"$0\" \"$1\" \"$2\" \"$3\"; :", parent, orphanCode, ended, m]);
            Process? strace = null;
            var fillers = new List<Process>();
            try
            {
                int python = int.Parse(ForwardingTests.ReadLine(nonet));
                File.WriteAllText("/proc/sys/kernel/ns_last_pid", "300");
                nonet.StandardInput.WriteLine();
                nonet.StandardInput.Flush();
                int orphan = int.Parse(ForwardingTests.ReadLine(nonet));
                Assert.That(orphan, Is.LessThan(python), "the orphan-to-be should have the lower pid");
                int sh = int.Parse(Stat(python)![1]);
                int launcher = int.Parse(Stat(sh)![1]);
                Assert.That(Comm(launcher), Is.EqualTo("nonet-launcher"));
                // Between the two in /proc: time for the test to act in.
                for (int i = 0; i < 50; i++)
                    fillers.Add(Process.Start("sleep", "120"));

                Assert.That(fillers.Select(f => f.Id), Is.All.InRange(orphan + 1, python - 1), "the sleeps should come between the orphan-to-be and its parent");

                // The one that sweeps is traced, and the other killed: nonet
                // first, its launcher's first sweep (which ends the command,
                // sh, and does not count) unslowed: once sh is reaped, every
                // sweep counts.  The launcher after nonet is traced.
                int sweeper = killed == "nonet" ? launcher : nonet.Id;
                if (killed == "nonet")
                {
                    Tmds.Linux.LibC.kill(nonet.Id, Tmds.Linux.LibC.SIGKILL);
                    WaitFor(() => Stat(sh) is null, "sh to end and be reaped");
                }
                strace = Process.Start(new ProcessStartInfo("strace", ["-qq", "-f", "-p", $"{sweeper}", "-o", "/dev/null",
                    "-e", "trace=openat", "-e", "inject=openat:delay_enter=200"]))!;
                WaitFor(() => File.ReadLines($"/proc/{sweeper}/status").Any(l => l.StartsWith("TracerPid:", StringComparison.Ordinal) && l.Split('\t')[1] != "0"),
                    "strace to attach");
                if (killed == "launcher")
                    Tmds.Linux.LibC.kill(launcher, Tmds.Linux.LibC.SIGKILL);

                // A sweep reads /proc in pid order, each entry's directory
                // held open while it reads its stat: holding a sleep's, it
                // has read the orphan's.  Stopped there, it waits while the
                // parent dies; then it goes on untraced, within the grace.
                var between = fillers.Select(f => $"/proc/{f.Id}").ToHashSet();
                WaitFor(() => Holding(sweeper).Any(between.Contains), "a sweep to pass the orphan-to-be");
                Tmds.Linux.LibC.kill(sweeper, Tmds.Linux.LibC.SIGSTOP);
                Tmds.Linux.LibC.kill(python, Tmds.Linux.LibC.SIGKILL);
                WaitFor(() => Stat(python) is not ["S" or "R" or "D", ..], "the parent to die");
                Tmds.Linux.LibC.kill(strace.Id, Tmds.Linux.LibC.SIGINT);
                Assert.That(strace.WaitForExit(10_000), Is.True, "strace did not let go");
                Tmds.Linux.LibC.kill(sweeper, Tmds.Linux.LibC.SIGCONT);
                var deadline = DateTime.UtcNow.AddSeconds(20);
                while (Stat(sweeper) is not (null or ["Z", ..]) && DateTime.UtcNow < deadline)
                    Thread.Sleep(10);
                Assert.That(Stat(sweeper) is null or ["Z", ..], Is.True, "the sweeper did not end");
                Assert.That(WaitUntilNoneLeft(m, TimeSpan.FromSeconds(10)), Is.Empty, $"the orphan {orphan} is left running");
                Assert.That(File.Exists(ended) ? File.ReadAllText(ended) : "", Is.EqualTo("TERM"), "the orphan got SIGTERM and its grace, not SIGKILL alone");
            }
            finally
            {
                if (strace is { HasExited: false })
                    strace.Kill();
                foreach (var filler in fillers)
                {
                    filler.Kill();
                    filler.WaitForExit();
                    filler.Dispose();
                }
                foreach (var left in Left(m))
                    Tmds.Linux.LibC.kill(int.Parse(left.Split(':')[0]), Tmds.Linux.LibC.SIGKILL);
                Tmds.Linux.LibC.kill(nonet.Id, Tmds.Linux.LibC.SIGKILL);
                nonet.WaitForExit(10_000);
            }
        }
    }

    /// <summary>What the descriptors of <paramref name="pid"/> are open on.</summary>
    private static List<string> Holding(int pid)
    {
        var paths = new List<string>();
        try
        {
            foreach (var fd in Directory.GetFileSystemEntries($"/proc/{pid}/fd"))
            {
                if (new FileInfo(fd).LinkTarget is { } target)
                    paths.Add(target);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return paths;
    }

    /// <summary>Spins (no sleep: the test acts within milliseconds) until <paramref name="done"/>.</summary>
    private static void WaitFor(Func<bool> done, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!done())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "waited in vain for " + what);
            Thread.SpinWait(100);
        }
    }

    /// <summary>The first child of <paramref name="parent"/>, once it has one; 0 if it exited first.</summary>
    internal static int WaitForChild(int parent, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        while (DateTime.UtcNow < deadline && Exists(parent))
        {
            int child = Children(parent).FirstOrDefault();
            if (child > 0)
                return child;
            Thread.Sleep(1);
        }
        return 0;
    }

    /// <summary>Children by the parent field of /proc/PID/stat (kernels without
    /// CONFIG_PROC_CHILDREN have no /proc/PID/task/TID/children).</summary>
    internal static IEnumerable<int> Children(int parent)
    {
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
                continue;
            string[]? f = Stat(pid);
            if (f is not null && int.Parse(f[1]) == parent)
                yield return pid;
        }
    }

    /// <summary>The fields of /proc/PID/stat after the command name: state first; null if gone.</summary>
    internal static string[]? Stat(int pid)
    {
        try
        {
            string s = File.ReadAllText($"/proc/{pid}/stat");
            return s[(s.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    internal static string Comm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static bool Exists(int pid) => Stat(pid) is not null;
}
