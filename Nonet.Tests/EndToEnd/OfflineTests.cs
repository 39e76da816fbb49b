using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// Offline that fails fast and says why: every name lookup inside gets
/// nonet's "not found" at once, whatever the nameservers and transport, no
/// lookup escapes through a host daemon (<see cref="HostResolverDaemonTests"/>),
/// the kernel's settings cannot be changed from inside, ping works on the
/// loopback, and a failing command is told why.
/// </summary>
public sealed class OfflineTests(Identity identity) : EndToEndTest(identity)
{
    /// <summary>A name that exists outside on the machines these tests run
    /// on: their Debian mirror.</summary>
    internal const string Name = "deb.debian.org";

    /// <summary>"At once": well under glibc's first resolver timeout (5 s),
    /// after which an unanswered query would be sent again.  Only the
    /// attempt counts (see <see cref="Took"/>): starting bwrap, nonet or an
    /// interpreter can take seconds on a loaded two-CPU machine.</summary>
    private static readonly TimeSpan Fast = TimeSpan.FromSeconds(3);

    /// <summary>Each real tool, the "not found" it must report (not the
    /// "try again" of EAI_AGAIN), and the exit status it ends with.  Each
    /// reports how long its attempt took (see <see cref="Took"/>): Python
    /// and Node time the lookup itself, after their slow start; a shell
    /// times the native tools, which start in milliseconds.</summary>
    public static IEnumerable<TestCaseData> Lookups()
    {
        yield return new TestCaseData(TimedByShell("getent", "hosts", Name), "", 2).SetName("getent hosts");
        yield return new TestCaseData(new[] { Python, "-c", "import atexit, socket, sys, time; t = time.monotonic(); "
            + "atexit.register(lambda: print(f'took {(time.monotonic() - t) * 1000:.0f} ms', file=sys.stderr)); "
            + $"socket.getaddrinfo('{Name}', 443)" },
            "Name or service not known", 1).SetName("python getaddrinfo");
        yield return new TestCaseData(new[] { "node", "-e", $"const dns = require('dns'), t = performance.now(); dns.lookup('{Name}', e => {{ "
            + "console.error(e && e.code); console.error('took ' + Math.round(performance.now() - t) + ' ms'); process.exit(e ? 1 : 0) })" },
            "ENOTFOUND", 1).SetName("node dns.lookup");
        yield return new TestCaseData(TimedByShell("curl", "-sS", "-o", "/dev/null", $"https://{Name}/"),
            "Could not resolve host", 6).SetName("curl");
        yield return new TestCaseData(TimedByShell("git", "ls-remote", $"https://{Name}/debian/"),
            "Could not resolve host", 128).SetName("git ls-remote");
    }

    /// <summary>The command run by a shell that writes, on stderr, how long
    /// it ran: the shell runs inside nonet, so nonet's start does not count.</summary>
    private static string[] TimedByShell(params string[] command) =>
        ["sh", "-c", "t0=$(date +%s%N); \"$@\"; rc=$?; t1=$(date +%s%N); echo \"took $(( (t1 - t0) / 1000000 )) ms\" >&2; exit $rc", "sh", .. command];

    /// <summary>How long the attempt took, by the "took N ms" line the
    /// command wrote on stderr, timed inside nonet.</summary>
    private static TimeSpan Took(RunResult r)
    {
        var took = Regex.Matches(r.Stderr, @"^took (\d+) ms$", RegexOptions.Multiline);
        Assert.That(took, Has.Count.EqualTo(1), "the command must say how long it took\n" + r);
        return TimeSpan.FromMilliseconds(long.Parse(took[0].Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    private static void AssertNotFound(RunResult r, string message, int status)
    {
        Assert.That(r.ExitCode, Is.EqualTo(status), r.ToString());
        Assert.That(r.Stderr + r.Stdout, Does.Contain(message), r.ToString());
        Assert.That(r.Stderr, Does.Not.Contain("Temporary failure").And.Not.Contain("EAI_AGAIN"), r.ToString());
        Assert.That(Took(r), Is.LessThan(Fast), r.ToString());
    }

    [TestCaseSource(nameof(Lookups))]
    public void A_lookup_fails_at_once_as_not_found(string[] command, string message, int status)
    {
        AssertNotFound(Nonet(command), message, status);
    }

    /// <summary>resolv.conf variants, in a mount namespace of the test's own
    /// (as root: unshare; as anyone else: bwrap, whose user namespace maps
    /// the caller to itself), since the host has one nameserver.</summary>
    private RunResult WithResolvConf(string resolvConf, params string[] command)
    {
        string dir = Harness.TempDirectory(Who);
        string file = Path.Combine(dir, "resolv.conf");
        File.WriteAllText(file, resolvConf);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        string[] wrapper = Harness.IsRoot && Who != Identity.Unprivileged
            ? ["unshare", "--mount", "sh", "-c", "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"", file]
            : ["bwrap", "--dev-bind", "/", "/", "--bind", file, "/etc/resolv.conf"];
        return Harness.Run(Who, wrapper[0], [.. wrapper[1..], Harness.Nonet, .. command]);
    }

    public static IEnumerable<TestCaseData> Nameservers()
    {
        yield return new TestCaseData("nameserver 192.0.2.53\n").SetName("an IPv4 nameserver, UDP");
        yield return new TestCaseData("nameserver 192.0.2.53\noptions use-vc\n").SetName("an IPv4 nameserver, TCP");
        yield return new TestCaseData("nameserver 2001:db8::53\n").SetName("an IPv6 nameserver, UDP");
        yield return new TestCaseData("nameserver 2001:db8::53\noptions use-vc\n").SetName("an IPv6 nameserver, TCP");
        yield return new TestCaseData("nameserver 198.51.100.7\nnameserver 2001:db8::1:53\nnameserver 127.0.0.53\n").SetName("three nameservers");
        yield return new TestCaseData("search example.org corp.example\n").SetName("no nameserver: 127.0.0.1");
    }

    [TestCaseSource(nameof(Nameservers))]
    public void Every_nameserver_and_transport_answers_not_found_at_once(string resolvConf)
    {
        foreach (var lookup in Lookups().Take(3))
        {
            var command = (string[])lookup.Arguments[0]!;
            AssertNotFound(WithResolvConf(resolvConf, command), (string)lookup.Arguments[1]!, (int)lookup.Arguments[2]!);
        }
    }

    [TestCase("192.0.2.53", "+notcp")]
    [TestCase("192.0.2.53", "+tcp")]
    [TestCase("2001:db8::53", "+notcp")]
    [TestCase("2001:db8::53", "+tcp")]
    public void Dig_sees_nxdomain_with_the_extended_error_saying_why(string nameserver, string transport)
    {
        var r = WithResolvConf($"nameserver {nameserver}\n", "dig", "+tries=1", "+time=2", transport, Name);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain("status: NXDOMAIN"), r.ToString());
        Assert.That(r.Stdout, Does.Contain("EDE: 15 (Blocked): (no network inside nonet)"), r.ToString());
        Assert.That(r.Stdout, Does.Contain($"SERVER: {nameserver}#53"), r.ToString());
    }

    [Test]
    public void Localhost_and_the_hosts_file_still_resolve()
    {
        var r = Nonet("getent", "ahosts", "localhost");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain("127.0.0.1").Or.Contain("::1"), r.ToString());
        var hosts = File.ReadAllLines("/etc/hosts").Select(l => l.Split('#')[0].Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .First(f => f.Length >= 2 && f[1] != "localhost");
        var h = Nonet("getent", "hosts", hosts[1]);
        Assert.That(h.ExitCode, Is.Zero, h.ToString());
        Assert.That(h.Stdout, Does.Contain(hosts[1]), h.ToString());
    }

    [TestCase("kernel/core_pattern", "|/bin/true")]
    [TestCase("kernel/hostname", "nonet-was-here")]
    [TestCase("net/ipv6/conf/lo/disable_ipv6", "1")]
    [TestCase("net/ipv4/ip_unprivileged_port_start", "1024")]
    public void The_kernels_settings_cannot_be_changed_from_inside(string setting, string value)
    {
        string path = "/proc/sys/" + setting;
        string before = File.ReadAllText(path);
        var r = Nonet("sh", "-c", $"echo '{value}' > {path}; echo status=$?; "
            + Python + " -c \"import socket; s = socket.socket(socket.AF_INET6); s.bind(('::1', 0)); print('ipv6 ok')\"");
        Assert.That(r.Stdout, Does.Contain("status=1").Or.Contain("status=2"), r.ToString());
        Assert.That(r.Stderr, Does.Contain(Who == Identity.Unprivileged || !Harness.IsRoot ? "Permission denied" : "Read-only file system"), r.ToString());
        Assert.That(r.Stdout, Does.Contain("ipv6 ok"), "::1 must still work afterwards\n" + r);
        Assert.That(File.ReadAllText(path), Is.EqualTo(before));
    }

    [TestCase("127.0.0.1")]
    [TestCase("::1")]
    public void Ping_works_on_the_loopback(string address)
    {
        var r = Nonet("ping", "-c", "1", "-W", "2", address);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain("1 received"), r.ToString());
    }

    [TestCase("192.0.2.1")]
    [TestCase("2001:db8::1")]
    public void Ping_to_an_outside_address_fails_at_once(string address)
    {
        var r = Nonet(TimedByShell("ping", "-c", "1", "-W", "5", address));
        Assert.That(r.ExitCode, Is.Not.Zero, r.ToString());
        Assert.That(r.Stderr, Does.Contain("Network is unreachable"), r.ToString());
        Assert.That(Took(r), Is.LessThan(Fast), r.ToString());
    }

    /// <summary>nonet's stderr on a terminal: script(1) gives the command a pty.</summary>
    private RunResult InTerminal(string nonetArguments)
    {
        return Harness.Run(Who, "script", ["-qec", $"{Harness.Nonet} {nonetArguments}", "/dev/null"],
            new Dictionary<string, string?> { ["TERM"] = "dumb" });
    }

    private static int HintLines(string output) =>
        Regex.Matches(output, @"^nonet: no network inside nonet: answered \d+ lookups? of \d+ names? with ""not found"" \(", RegexOptions.Multiline).Count;

    [Test]
    public void After_a_failing_command_on_a_terminal_one_line_says_why()
    {
        var r = InTerminal($"sh -c 'getent hosts {Name} a.example b.example c.example; exit 3'");
        Assert.That(r.ExitCode, Is.EqualTo(3), r.ToString());
        Assert.That(HintLines(r.Stdout), Is.EqualTo(1), r.ToString());
        Assert.That(r.Stdout, Does.Contain($"({Name}, a.example, b.example, …)"), r.ToString());
    }

    [Test]
    public void Print_config_shows_the_hint_setting_and_where_it_came_from()
    {
        var byDefault = Nonet("--print-config");
        Assert.That(byDefault.Stdout, Does.Contain("# from default (on when stderr is a terminal)\nhint = auto\n"), byDefault.ToString());
        var fromEnvironment = NonetWith(new Dictionary<string, string?> { ["NONET_HINT"] = "on" }, "--print-config");
        Assert.That(fromEnvironment.Stdout, Does.Contain("# from environment NONET_HINT\nhint = on\n"), fromEnvironment.ToString());
        var fromOption = Nonet("--no-hint", "--print-config");
        Assert.That(fromOption.Stdout, Does.Contain("# from option --hint/--no-hint\nhint = off\n"), fromOption.ToString());
        var bad = NonetWith(new Dictionary<string, string?> { ["NONET_HINT"] = "sometimes" }, "true");
        Assert.That(bad.ExitCode, Is.EqualTo(125), bad.ToString());
        Assert.That(bad.Stderr, Is.EqualTo("nonet: environment NONET_HINT: hint must be auto, on or off, not 'sometimes'\n"), bad.ToString());
    }

    [Test]
    public void No_hint_after_success_off_a_terminal_or_when_turned_off()
    {
        var success = InTerminal($"sh -c 'getent hosts {Name}; exit 0'");
        Assert.That(HintLines(success.Stdout), Is.Zero, success.ToString());
        var noLookup = InTerminal("false");
        Assert.That(HintLines(noLookup.Stdout), Is.Zero, noLookup.ToString());
        var off = InTerminal($"--no-hint getent hosts {Name}");
        Assert.That(HintLines(off.Stdout), Is.Zero, off.ToString());
        var offBySetting = Harness.Run(Who, "script", ["-qec", $"{Harness.Nonet} getent hosts {Name}", "/dev/null"],
            new Dictionary<string, string?> { ["NONET_HINT"] = "off" });
        Assert.That(HintLines(offBySetting.Stdout), Is.Zero, offBySetting.ToString());

        var pipe = Nonet("getent", "hosts", Name);
        Assert.That(pipe.ExitCode, Is.EqualTo(2));
        Assert.That(HintLines(pipe.Stderr), Is.Zero, pipe.ToString());
        var on = Nonet("--hint", "getent", "hosts", Name);
        Assert.That(HintLines(on.Stderr), Is.EqualTo(1), on.ToString());
        Assert.That(on.Stderr, Does.Contain($"with \"not found\" ({Name})"), on.ToString());
    }
}

/// <summary>
/// No lookup escapes through a host daemon: nscd, systemd-resolved, avahi.
/// These tests change the machine for everyone, making a daemon's socket
/// under /run or starting nscd, and a nonet run that saw no socket at its
/// start would find one after (the self-test's "resolver sockets hidden"
/// check would fail): they run while no other fixture runs.
/// </summary>
[NonParallelizable]
public sealed class HostResolverDaemonTests(Identity identity) : EndToEndTest(identity)
{
    private const string Name = OfflineTests.Name;

    [Test]
    public void No_lookup_escapes_through_the_hosts_nscd()
    {
        Nscd.RequireRunning();
        var outside = Harness.Run(Who, "getent", ["hosts", Name]);
        Assert.That(outside.ExitCode, Is.Zero, "the name must resolve outside for this test to mean anything\n" + outside);
        var r = Nonet("getent", "hosts", Name);
        Assert.That(r.ExitCode, Is.EqualTo(2), "nscd answered from outside: the lookup leaked\n" + r);
        // The socket is hidden, nothing else of the file system changes.
        var seen = Nonet("sh", "-c", "test -S /var/run/nscd/socket && echo is-a-socket; test -e /var/run/nscd/socket && echo still-there");
        Assert.That(seen.Stdout, Does.Not.Contain("is-a-socket").And.Contain("still-there"), seen.ToString());
    }

    /// <summary>systemd-resolved's and avahi's sockets, where the host has
    /// no such daemon: a stand-in listens at the same path (root makes it;
    /// anyone may connect), reachable outside, refused inside.</summary>
    [TestCase("/run/systemd/resolve/io.systemd.Resolve")]
    [TestCase("/run/avahi-daemon/socket")]
    public void Every_resolver_daemons_socket_is_hidden_inside(string path)
    {
        using var standIn = StandInDaemon.Listen(path);
        string connect = $"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{path}'); print('connected')";
        var outside = Harness.Run(Who, Python, ["-c", connect]);
        Assert.That(outside.Stdout, Does.Contain("connected"), "the stand-in must answer outside\n" + outside);
        var inside = Nonet(Python, "-c", connect);
        Assert.That(inside.ExitCode, Is.Not.Zero, inside.ToString());
        Assert.That(inside.Stderr, Does.Contain("ConnectionRefusedError"), inside.ToString());
    }
}

/// <summary>A listening Unix socket at a resolver daemon's path, made for
/// one test where no daemon has it (as root; as anyone else the test is
/// ignored, saying why) and removed after.  A real daemon's socket is used
/// as it is.</summary>
internal sealed class StandInDaemon : IDisposable
{
    private readonly System.Net.Sockets.Socket? socket;
    private readonly string path;
    private readonly string? madeDirectory;

    private StandInDaemon(string path, System.Net.Sockets.Socket? socket, string? madeDirectory)
    {
        this.path = path;
        this.socket = socket;
        this.madeDirectory = madeDirectory;
    }

    /// <summary>No lock: only <see cref="HostResolverDaemonTests"/> makes
    /// one, and that fixture runs alone.</summary>
    public static StandInDaemon Listen(string path)
    {
        if (File.Exists(path))
            return new StandInDaemon(path, null, null);
        if (!Harness.IsRoot)
        {
            string reason = $"{path} does not exist, and only root can make a stand-in for it";
            if (Environment.GetEnvironmentVariable("NONETTEST_REQUIRE_USERNS") == "1")
                Assert.Fail(reason);
            Assert.Ignore("ignored because " + reason);
        }
        string dir = Path.GetDirectoryName(path)!;
        // The outermost directory made, to remove with what is under it.
        string? made = null;
        for (string? d = dir; d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d))
            made = d;
        Directory.CreateDirectory(dir);
        var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        s.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        s.Listen(16);
        File.SetUnixFileMode(path, (UnixFileMode)0x1ff);
        return new StandInDaemon(path, s, made);
    }

    public void Dispose()
    {
        if (socket is null)
            return;
        socket.Dispose();
        File.Delete(path);
        if (madeDirectory is not null)
            Directory.Delete(madeDirectory, recursive: true);
    }
}

/// <summary>The host's nscd, for the leak test: as root the test starts it
/// when it is installed but not running (CI installs it).</summary>
internal static class Nscd
{
    private const string Socket = "/var/run/nscd/socket";

    /// <summary>This test run started nscd (see <see cref="TestRunCleanup"/>).</summary>
    public static bool StartedHere { get; private set; }

    public static void RequireRunning()
    {
        if (Answers())
            return;
        if (Harness.IsRoot && File.Exists("/usr/sbin/nscd"))
        {
            StartedHere = true;
            Harness.Run(Identity.Caller, "/usr/sbin/nscd", []);
            for (int i = 0; i < 50 && !Answers(); i++)
                System.Threading.Thread.Sleep(100);
            if (Answers())
                return;
        }
        string reason = "nscd is not running here (as root with nscd installed, the test starts it)";
        if (Environment.GetEnvironmentVariable("NONETTEST_REQUIRE_NSCD") == "1")
            Assert.Fail("nscd is required here (NONETTEST_REQUIRE_NSCD=1): " + reason);
        Assert.Ignore("ignored because " + reason);
    }

    private static bool Answers() => File.Exists(Socket);
}
