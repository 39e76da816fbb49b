using System;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>Signals sent to nonet reach the command; nothing outlives nonet.</summary>
public sealed class SignalTests(Identity identity) : EndToEndTest(identity)
{
    private const string Catcher = """
        import signal, sys, os
        names = sys.argv[1:]
        def caught(n, frame):
            print("caught", signal.Signals(n).name, flush=True)
            sys.exit(0)
        for name in names:
            signal.signal(getattr(signal, name), caught)
        print("ready", flush=True)
        while True:
            signal.pause()
        """;

    [TestCase("SIGTERM")]
    [TestCase("SIGINT")]
    [TestCase("SIGHUP")]
    [TestCase("SIGQUIT")]
    [TestCase("SIGUSR1")]
    [TestCase("SIGUSR2")]
    [TestCase("SIGWINCH")]
    public void A_signal_sent_to_nonet_reaches_the_command(string name)
    {
        using var nonet = Harness.Start(Who, Harness.Nonet, [Python, "-c", Catcher, name]);
        WaitForLine(nonet, "ready");
        Send(nonet, name);
        var r = Harness.Finish(nonet);
        Assert.That(r.Stdout, Is.EqualTo("caught " + name + "\n"), r.ToString());
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
    }

    [TestCase("SIGTERM", "--forward")]
    [TestCase("SIGUSR1", "--publish")]
    public void A_signal_reaches_the_command_while_nonet_relays_ports(string name, string option)
    {
        // With forwarding, nonet waits in its event loop rather than on the
        // signalfd alone: signals must pass the same way.
        int port = ForwardingTests.FreeHostPort();
        using var nonet = Harness.Start(Who, Harness.Nonet, [option, $"{port}", Python, "-c", Catcher, name]);
        WaitForLine(nonet, "ready");
        Send(nonet, name);
        var r = Harness.Finish(nonet);
        Assert.That(r.Stdout, Is.EqualTo("caught " + name + "\n"), r.ToString());
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
    }

    [Test]
    public void Nonet_exits_with_the_status_the_signal_gave_the_command()
    {
        using var nonet = Harness.Start(Who, Harness.Nonet, ["sh", "-c", "echo ready; exec sleep 60"]);
        WaitForLine(nonet, "ready");
        Thread.Sleep(100); // let sh exec sleep
        Send(nonet, "SIGTERM");
        var r = Harness.Finish(nonet);
        Assert.That(r.ExitCode, Is.EqualTo(128 + 15), r.ToString());
    }

    [Test]
    public void A_signal_is_delivered_once_not_twice()
    {
        const string counter = """
            import signal, time
            count = 0
            def caught(n, f):
                global count
                count += 1
            signal.signal(signal.SIGUSR1, caught)
            print("ready", flush=True)
            end = time.time() + 1.5
            while time.time() < end:
                time.sleep(0.05)
            print("count", count)
            """;
        using var nonet = Harness.Start(Who, Harness.Nonet, [Python, "-c", counter]);
        WaitForLine(nonet, "ready");
        Send(nonet, "SIGUSR1");
        var r = Harness.Finish(nonet);
        Assert.That(r.Stdout.Trim(), Is.EqualTo("count 1"), r.ToString());
    }

    [Test]
    public void The_command_does_not_outlive_a_SIGKILLed_nonet()
    {
        string marker = $"{Random.Shared.Next(1000, 9999)}.{Random.Shared.Next(100, 999)}";
        using var nonet = Harness.Start(Who, Harness.Nonet, ["sh", "-c", $"echo ready; exec sleep {marker}"]);
        WaitForLine(nonet, "ready");
        Thread.Sleep(100);
        Assert.That(Harness.ProcessesWithArgument("sleep " + marker).ToList(), Is.Not.Empty, "the command should be running");
        Send(nonet, "SIGKILL");
        nonet.WaitForExit(5000);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Harness.ProcessesWithArgument(marker).Any() && DateTime.UtcNow < deadline)
            Thread.Sleep(50);
        Assert.That(Harness.ProcessesWithArgument(marker).ToList(), Is.Empty, "launcher and command must die with nonet");
    }

    [Test]
    public void Nothing_is_left_behind_after_a_normal_exit_or_a_failure()
    {
        string marker = $"nonet-leftover-{Random.Shared.Next(100000, 999999)}";
        Assert.That(Nonet("sh", "-c", "true", marker).ExitCode, Is.Zero);
        Assert.That(Nonet("sh", "-c", "exit 3", marker).ExitCode, Is.EqualTo(3));
        Assert.That(Nonet("--launcher", "/nonexistent", "sh", "-c", "true", marker).ExitCode, Is.EqualTo(125));
        Assert.That(Nonet("/nonexistent-" + marker).ExitCode, Is.EqualTo(127));
        Assert.That(Harness.ProcessesWithArgument(marker).ToList(), Is.Empty);
    }

    [Test]
    public void No_zombies_while_the_command_runs()
    {
        using var nonet = Harness.Start(Who, Harness.Nonet, ["sh", "-c", "echo ready; sleep 1"]);
        WaitForLine(nonet, "ready");
        // A zombie whose parent is nonet or its launcher would be theirs to reap.
        var stats = System.IO.Directory.GetDirectories("/proc")
            .Where(d => int.TryParse(System.IO.Path.GetFileName(d), out _))
            .Select(d => { try { return System.IO.File.ReadAllText(d + "/stat"); } catch (System.IO.IOException) { return ""; } })
            .Where(s => s.Length > 0)
            .Select(s => (Pid: s[..s.IndexOf(' ')], Comm: s[(s.IndexOf('(') + 1)..s.LastIndexOf(')')], Fields: s[(s.LastIndexOf(')') + 2)..].Split(' ')))
            .ToList();
        // This test's nonet and its launcher only: other tests' nonets run
        // at the same time, and may be reaping a child just now.
        string host = nonet.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var hosts = stats.Where(p => p.Comm.StartsWith("nonet", StringComparison.Ordinal)
            && (p.Pid == host || p.Fields[1] == host)).Select(p => p.Pid).ToHashSet();
        var ours = stats.Where(p => p.Comm.StartsWith("nonet", StringComparison.Ordinal)
            && (hosts.Contains(p.Pid) || hosts.Contains(p.Fields[1]))).Select(p => p.Pid).ToHashSet();
        var zombies = stats.Where(p => p.Fields[0] == "Z" && ours.Contains(p.Fields[1])).Select(p => $"{p.Pid} ({p.Comm})").ToList();
        Harness.Finish(nonet);
        Assert.That(zombies, Is.Empty);
    }

    private static void WaitForLine(Process process, string line)
    {
        var read = process.StandardOutput.ReadLineAsync();
        if (!read.Wait(TimeSpan.FromSeconds(20)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"no '{line}' within 20 s");
        }
        Assert.That(read.Result, Is.EqualTo(line));
    }

    private static void Send(Process process, string name)
    {
        var r = Harness.Run(Identity.Caller, "kill", ["-s", name.Replace("SIG", ""), process.Id.ToString()]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
    }
}
