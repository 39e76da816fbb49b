using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>What the command sees of the network and of itself.</summary>
public sealed class IsolationTests(Identity identity) : EndToEndTest(identity)
{
    [Test]
    public void Only_lo_exists_and_the_kernel_reports_it_up()
    {
        // Ask the kernel over netlink (ip -j), not /sys/class/net, which shows
        // the namespace of whoever mounted /sys.
        var r = Nonet("ip", "-j", "link", "show");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var links = JsonDocument.Parse(r.Stdout).RootElement.EnumerateArray().ToList();
        Assert.That(links.Select(l => l.GetProperty("ifname").GetString()), Is.EqualTo(new[] { "lo" }));
        var flags = links[0].GetProperty("flags").EnumerateArray().Select(f => f.GetString()).ToList();
        Assert.That(flags, Does.Contain("UP").And.Contain("LOWER_UP"));
    }

    [Test]
    public void Loopback_has_127_0_0_1_and_ipv6_localhost()
    {
        var r = Nonet("ip", "-j", "addr", "show", "dev", "lo");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var addresses = JsonDocument.Parse(r.Stdout).RootElement[0].GetProperty("addr_info").EnumerateArray()
            .Select(a => $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}").ToList();
        Assert.That(addresses, Does.Contain("127.0.0.1/8").And.Contain("::1/128"));
    }

    [TestCase("127.0.0.1", "AF_INET", "SOCK_STREAM")]
    [TestCase("::1", "AF_INET6", "SOCK_STREAM")]
    [TestCase("127.0.0.1", "AF_INET", "SOCK_DGRAM")]
    [TestCase("::1", "AF_INET6", "SOCK_DGRAM")]
    public void Loopback_carries_tcp_and_udp(string address, string family, string type)
    {
        string script = $$"""
            import socket
            s = socket.socket(socket.{{family}}, socket.{{type}})
            s.bind(("{{address}}", 0))
            c = socket.socket(socket.{{family}}, socket.{{type}})
            if socket.{{type}} == socket.SOCK_STREAM:
                s.listen(1)
                c.connect(s.getsockname())
                a, _ = s.accept()
                c.sendall(b"through nonet")
                print(a.recv(100).decode())
            else:
                c.sendto(b"through nonet", s.getsockname())
                print(s.recvfrom(100)[0].decode())
            """;
        var r = Nonet(Python, "-c", script);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout.Trim(), Is.EqualTo("through nonet"));
    }

    [Test]
    public void There_is_no_route_out()
    {
        var routes = Nonet("ip", "route", "show", "table", "all");
        Assert.That(routes.ExitCode, Is.Zero, routes.ToString());
        Assert.That(routes.Stdout.Split('\n', System.StringSplitOptions.RemoveEmptyEntries),
            Has.All.Contains("dev lo"), "every route stays on lo");
        // A UDP connect() only consults the routing table; nothing is sent.
        var r = Nonet(Python, "-c", """
            import socket, errno
            for fam, addr in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
                s = socket.socket(fam, socket.SOCK_DGRAM)
                try:
                    s.connect((addr, 9))
                    print("route to", addr)
                except OSError as e:
                    print(errno.errorcode[e.errno])
            """);
        Assert.That(r.Stdout.Split('\n', System.StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "ENETUNREACH", "ENETUNREACH" }), r.ToString());
    }

    [Test]
    public void The_loopback_is_separate_from_the_hosts()
    {
        // The host listens on a port; inside, that port is free and nothing answers.
        string script = """
            import socket, subprocess, sys
            host = socket.socket(); host.bind(("127.0.0.1", 0)); host.listen(1)
            port = host.getsockname()[1]
            inside = subprocess.run([sys.argv[1], sys.argv[2], "-c", '''
            import socket, sys
            port = int(sys.argv[1])
            c = socket.socket()
            try:
                c.connect(("127.0.0.1", port)); print("reached host")
            except ConnectionRefusedError:
                print("refused")
            s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen(1); print("bound")
            ''', str(port)], capture_output=True, text=True, timeout=20)
            print(inside.stdout.strip().replace("\n", " "), inside.returncode, inside.stderr.strip())
            # And the host still owns its listener: nothing inside replaced it.
            c = socket.socket(); c.connect(("127.0.0.1", port)); print("host ok")
            """;
        var r = Harness.Run(Who, Python, ["-c", script, Harness.Nonet, Python]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain("refused bound 0").And.Contain("host ok"), r.ToString());
    }

    [Test]
    public void Two_runs_can_bind_the_same_port_at_once()
    {
        string server = """
            import socket, time
            s = socket.socket(); s.bind(("127.0.0.1", 47123)); s.listen(1)
            print("bound", flush=True); time.sleep(1)
            """;
        using var first = Harness.Start(Who, Harness.Nonet, [Python, "-c", server]);
        using var second = Harness.Start(Who, Harness.Nonet, [Python, "-c", server]);
        var a = Harness.Finish(first);
        var b = Harness.Finish(second);
        Assert.That((a.ExitCode, a.Stdout.Trim(), b.ExitCode, b.Stdout.Trim()), Is.EqualTo((0, "bound", 0, "bound")), $"{a}\n{b}");
    }

    [Test]
    public void The_command_keeps_the_callers_uid_and_gid()
    {
        var (uid, gid) = Ids;
        var r = Nonet("sh", "-c", "id -u; id -g; id -ru; id -rg");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout.Split('\n', System.StringSplitOptions.RemoveEmptyEntries),
            Is.EqualTo(new[] { $"{uid}", $"{gid}", $"{uid}", $"{gid}" }));
    }

    [Test]
    public void The_command_has_no_capabilities()
    {
        var r = Nonet("grep", "-E", "^Cap(Inh|Prm|Eff|Bnd|Amb):", "/proc/self/status");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var caps = r.Stdout.Split('\n', System.StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('\t', 2)).ToDictionary(f => f[0], f => f[1].Trim());
        Assert.That(caps, Has.Count.EqualTo(5));
        Assert.That(new[] { caps["CapInh:"], caps["CapPrm:"], caps["CapEff:"], caps["CapAmb:"] }, Has.All.EqualTo("0000000000000000"));
        // Only CAP_NET_RAW (bit 13) stays in the bounding set, for ping's file capability.
        Assert.That(caps["CapBnd:"], Is.EqualTo("0000000000002000"));
    }

    [TestCase("ip", "link", "set", "lo", "down")]
    [TestCase("ip", "addr", "add", "10.9.8.7/24", "dev", "lo")]
    [TestCase("ip", "link", "add", "dummy0", "type", "dummy")]
    [TestCase("ip", "route", "add", "default", "dev", "lo")]
    public void The_command_cannot_reconfigure_the_namespace(params string[] command)
    {
        var r = Nonet(command);
        Assert.That(r.ExitCode, Is.Not.Zero, r.ToString());
        Assert.That(r.Stderr, Does.Contain("Operation not permitted"), r.ToString());
        var after = Nonet("sh", "-c", string.Join(' ', command) + " 2>/dev/null; ip -br link; ip -br addr");
        Assert.That(after.Stdout, Does.Not.Contain("DOWN").And.Not.Contain("10.9.8.7").And.Not.Contain("dummy0"));
    }

    [Test]
    public void The_command_sees_the_callers_home_directory()
    {
        string home = Harness.Home(Who);
        var r = Nonet("sh", "-c", "cd \"$HOME\" && pwd && ls -d .");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout.Split('\n')[0], Is.EqualTo(home));
    }

    [Test]
    public void Nonet_runs_inside_nonet()
    {
        var (uid, gid) = Ids;
        if (Who == Identity.Root)
        {
            // nonet sets user.max_user_namespaces to 0 for a root caller, so
            // the inner nonet's clone fails (ENOSPC): nonet says why in one
            // line, with no sysctl advice (which could not help inside).
            var refused = Nonet(Harness.Nonet, "true");
            Assert.That(refused.ExitCode, Is.EqualTo(125), refused.ToString());
            Assert.That(refused.Stderr, Is.EqualTo("nonet: root inside nonet cannot create user namespaces (nonet forbids them for a root caller)\n"), refused.ToString());
            return;
        }
        var r = Nonet(Harness.Nonet, "sh", "-c", "id -u; id -g; ip -br link | cut -d' ' -f1");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout.Split('\n', System.StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { $"{uid}", $"{gid}", "lo" }));
    }
}
