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
        var r = Nonet("sh", "-c", $"exec </dev/null >/dev/null 2>&1; (trap '' TERM; exec sleep {m}) & sleep 0.2; exit 4");
        clock.Stop();
        Assert.That(r.ExitCode, Is.EqualTo(4), r.ToString());
        Assert.That(Left(m), Is.Empty);
        Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(1.1)).And.LessThan(TimeSpan.FromSeconds(6)));
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
            int helper = Children(launcher).FirstOrDefault(p => Comm(p) == "nonet-publish");
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
