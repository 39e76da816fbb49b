using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// The attacks on the connect hand-over that broke a naive design (see the
/// design note: shared/design/allow.md), kept for good.  Each aims at the
/// host's own 127.0.0.1 (a listener nonet must never let the command reach)
/// and at an outside address no rule allows, and checks the listeners'
/// counts as well as what the calls answered.
/// </summary>
public sealed class AllowBypassTests(Identity identity) : EndToEndTest(identity)
{
    private AllowOutside outside = null!;

    [OneTimeSetUp]
    public void MakeOutside() => outside = AllowOutside.Make();

    [OneTimeTearDown]
    public void RemoveOutside() => outside?.Dispose();

    private RunResult Probe(TimeSpan timeout, params string[] args) =>
        Harness.Run(Who, Harness.Nonet, [outside.Probe, .. args],
            new Dictionary<string, string?> { ["NONET_ALLOW"] = outside.Allowed }, timeout: timeout);

    private RunResult Probe(params string[] args) => Probe(Harness.DefaultTimeout, args);

    /// <summary>(target address, port, its listener's count) for each target.</summary>
    private IEnumerable<(string Address, int Port, Func<int> Count)> Targets()
    {
        yield return ("127.0.0.1", outside.HostLoopbackPort, () => outside.HostLoopbackAccepts);
        yield return (outside.Forbidden, AllowOutside.CountPort, () => outside.Count($"{outside.Forbidden}:{AllowOutside.CountPort}"));
    }

    private void AssertNothingReached(string mode, Func<RunResult, IEnumerable<string>> refused)
    {
        foreach (var (address, port, count) in Targets())
        {
            int before = count();
            var r = Probe(mode, outside.Allowed, $"{(mode == "unspec" ? AllowOutside.HttpPort : AllowOutside.ClosedPort)}", address, $"{port}");
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
            foreach (var line in refused(r))
                Assert.That(r.Stdout, Does.Contain(line), r.ToString());
            Assert.That(r.Stdout, Does.Not.Contain("again: OK"), r.ToString());
            Assert.That(r.Stdout, Does.Not.Contain("write: OK"), r.ToString());
            Assert.That(count(), Is.EqualTo(before), $"{address}:{port} was reached\n{r}");
        }
    }

    [Test]
    public void A_failed_host_socket_is_not_connected_again()
    {
        AssertNothingReached("reaim", r => ["first connect: ECONNREFUSED", "again: ENETUNREACH"]);
    }

    [Test]
    public void A_host_socket_dissolved_with_AF_UNSPEC_is_not_connected_again()
    {
        AssertNothingReached("unspec", r => ["first connect: OK", "unspec: OK"]);
    }

    [Test]
    public void MSG_FASTOPEN_is_refused_on_sendto_sendmsg_and_sendmmsg()
    {
        AssertNothingReached("fastopen", r => ["sendto: EOPNOTSUPP", "sendmsg: EOPNOTSUPP", "sendmmsg: EOPNOTSUPP"]);
    }

    [Test]
    public void TCP_FASTOPEN_CONNECT_does_not_re_aim_a_host_socket()
    {
        AssertNothingReached("fastopen-connect", r => ["first connect: ECONNREFUSED", "again: ENETUNREACH"]);
    }

    [Test]
    public void Flipping_the_address_during_connect_reaches_nothing()
    {
        foreach (var (address, port, count) in Targets())
        {
            int before = count();
            var r = Probe(TimeSpan.FromSeconds(120), "flip", outside.Allowed, $"{AllowOutside.CountPort}", address, $"{port}", "3000");
            var m = Regex.Match(r.Stdout, @"flip: (\d+) connected, (\d+) failed");
            Assert.That(m.Success, r.ToString());
            // Both addresses were seen (else the race was not run): the
            // allowed one connected, the other failed.
            Assert.That(int.Parse(m.Groups[1].Value), Is.GreaterThan(0), r.ToString());
            Assert.That(int.Parse(m.Groups[2].Value), Is.GreaterThan(0), r.ToString());
            Assert.That(count(), Is.EqualTo(before), $"{address}:{port} was reached\n{r}");
        }
    }

    [Test]
    public void Swapping_in_a_host_socket_during_connect_reaches_nothing()
    {
        var (address, port, count) = Targets().First();
        var r = Probe(TimeSpan.FromSeconds(600), "swap", outside.Allowed, $"{AllowOutside.ClosedPort}", address, $"{port}", "200000");
        Assert.That(r.Stdout, Does.Contain("first connect: ECONNREFUSED"), r.ToString());
        Assert.That(r.Stdout, Does.Contain("swap: 0 connected of 200000"), r.ToString());
        Assert.That(count(), Is.Zero, r.ToString());
    }

    [Test]
    public void Swapping_in_a_host_Unix_socket_during_connect_reaches_nothing()
    {
        // The command inherits a Unix socket of the host's network namespace
        // (descriptor 50): its abstract names are the host's.
        var r = Harness.Run(Who, Python, ["-c", """
            import os, socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            os.dup2(s.fileno(), 50, inheritable=True)
            os.execv(sys.argv[1], sys.argv[1:])
            """, Harness.Nonet, outside.Probe, "swap-unix", "50", outside.HostAbstractName, "200000"],
            new Dictionary<string, string?> { ["NONET_ALLOW"] = outside.Allowed }, timeout: TimeSpan.FromSeconds(600));
        Assert.That(r.Stdout, Does.Contain("swap: 0 connected of 200000"), r.ToString());
        Assert.That(outside.HostAbstractAccepts, Is.Zero, r.ToString());
    }

    [Test]
    public void The_hosts_abstract_Unix_sockets_stay_unreachable_through_an_inherited_socket()
    {
        // The same socket connected directly: nonet's host-socket rule, no race.
        var r = Harness.Run(Who, Python, ["-c", """
            import os, socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect("\0" + sys.argv[1])
                print("connected")
            except OSError as e:
                print("refused", e.errno)
            """, outside.HostAbstractName], timeout: TimeSpan.FromSeconds(30));
        Assert.That(r.Stdout, Does.StartWith("connected"), "without nonet the host's name is there: " + r);
        int before = outside.HostAbstractAccepts;
        r = Harness.Run(Who, Python, ["-c", """
            import os, socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            os.set_inheritable(s.fileno(), True)
            os.execv(sys.argv[1], sys.argv[1:] + [str(s.fileno())])
            """, Harness.Nonet, Python, "-c", """
            import socket, sys
            s = socket.socket(fileno=int(sys.argv[2]))
            try:
                s.connect("\0" + sys.argv[1])
                print("connected")
            except OSError as e:
                print("refused", e.errno)
            """, outside.HostAbstractName],
            new Dictionary<string, string?> { ["NONET_ALLOW"] = outside.Allowed }, timeout: TimeSpan.FromSeconds(30));
        Assert.That(r.Stdout, Does.StartWith("refused"), r.ToString());
        Assert.That(outside.HostAbstractAccepts, Is.EqualTo(before), r.ToString());
    }

    [Test]
    public void UDP_to_an_allowed_address_stays_unreachable()
    {
        string key = $"udp:{outside.Allowed}:{AllowOutside.UdpPort}";
        int before = outside.Count(key);
        var r = Probe("udp", outside.Allowed, $"{AllowOutside.UdpPort}");
        Assert.That(r.Stdout, Does.Contain("udp connect: ENETUNREACH"), r.ToString());
        Assert.That(r.Stdout, Does.Not.Contain(": OK"), r.ToString());
        Assert.That(outside.Count(key), Is.EqualTo(before));
    }

    [Test]
    public void io_uring_setup_is_refused()
    {
        var r = Probe("uring");
        Assert.That(r.Stdout, Does.Contain("io_uring_setup: ENOSYS"), r.ToString());
    }

    /// <summary>Descriptors of process <paramref name="pid"/>.</summary>
    private static int Descriptors(int pid) => Directory.GetFiles($"/proc/{pid}/fd").Length;

    [Test]
    public void Hostile_connects_neither_crash_nor_stall_nonet_and_its_descriptors_return()
    {
        using var nonet = Harness.Start(Who, Harness.Nonet, ["/bin/sh", "-c", """
            echo ready; read go
            "$0" hostile "$1" 80 2000
            for i in 1 2 3 4 5; do timeout -s KILL 0.3 "$0" time "$1" 80; done
            "$0" get BLOCK "$2" 8080
            echo done; read go
            """, outside.Probe, outside.Silent, outside.Allowed],
            new Dictionary<string, string?> { ["NONET_ALLOW"] = $"{outside.Silent}, {outside.Allowed}" });
        var output = new List<string>();
        string? Line()
        {
            var read = nonet.StandardOutput.ReadLineAsync();
            if (!read.Wait(TimeSpan.FromSeconds(120)))
                Assert.Fail("nonet stalled: " + string.Join("\n", output));
            if (read.Result is { } l)
                output.Add(l);
            return read.Result;
        }
        Assert.That(Line(), Is.EqualTo("ready"));
        int before = Descriptors(nonet.Id);
        nonet.StandardInput.WriteLine("go");
        nonet.StandardInput.Flush();
        while (Line() is { } line && line != "done")
        {
        }
        // Calls whose callers were interrupted are let go within a sweep (0.1 s).
        var wait = Stopwatch.StartNew();
        int after;
        while ((after = Descriptors(nonet.Id)) > before && wait.Elapsed < TimeSpan.FromSeconds(5))
            System.Threading.Thread.Sleep(100);
        nonet.StandardInput.WriteLine("go");
        nonet.StandardInput.Close();
        var r = Harness.Finish(nonet);
        string all = string.Join("\n", output) + "\n" + r;
        Assert.That(r.ExitCode, Is.Zero, all);
        Assert.That(after, Is.LessThanOrEqualTo(before), all);
        foreach (var expected in new[]
                 {
                     "null: EFAULT", "unmapped: EFAULT", "short: EINVAL", "long: EINVAL", "negative: EINVAL",
                     "closed: EBADF", "negative fd: EBADF", "not a socket: ENOTSOCK", "blackhole: 2000 EINTR, 0 other",
                     "body: hello from outside",
                 })
            Assert.That(output, Has.Some.StartsWith(expected), all);
        var slowest = Regex.Match(string.Join("\n", output), @"slowest ([0-9.]+) s");
        Assert.That(double.Parse(slowest.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Is.LessThan(0.5), all);
    }
}
