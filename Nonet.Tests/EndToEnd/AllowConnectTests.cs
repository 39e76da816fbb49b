using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// --allow's connect hand-over, as the command sees it: an allowed
/// destination is reached by any client, unmodified and without proxy
/// settings; every other one fails at once, as without --allow.  The rules
/// come through NONET_ALLOW (the 'allow' setting).
/// </summary>
public sealed class AllowConnectTests(Identity identity) : EndToEndTest(identity)
{
    private AllowOutside outside = null!;

    [OneTimeSetUp]
    public void MakeOutside() => outside = AllowOutside.Make();

    [OneTimeTearDown]
    public void RemoveOutside() => outside?.Dispose();

    private RunResult Allowing(string rules, params string[] args) =>
        NonetWith(new Dictionary<string, string?> { ["NONET_ALLOW"] = rules }, args);

    private static double Seconds(string line) =>
        double.Parse(Regex.Match(line, @"in ([0-9.]+) s").Groups[1].Value, CultureInfo.InvariantCulture);

    [Test]
    public void An_allowed_address_is_reached_by_blocking_and_non_blocking_clients()
    {
        foreach (var mode in new[] { "BLOCK", "NONBLOCK" })
        {
            var r = Allowing(outside.Allowed, outside.Probe, "get", mode, outside.Allowed, $"{AllowOutside.HttpPort}");
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
            Assert.That(r.Stdout, Does.Contain("body: hello from outside"), r.ToString());
        }
    }

    [Test]
    public void Without_allow_the_same_address_stays_unreachable()
    {
        var r = Nonet(outside.Probe, "time", outside.Allowed, $"{AllowOutside.HttpPort}");
        Assert.That(r.Stdout, Does.StartWith("connect: ENETUNREACH"), r.ToString());
    }

    [TestCase("v4")]
    [TestCase("v6")]
    public void Other_addresses_fail_at_once(string family)
    {
        string allowed = family == "v4" ? outside.Allowed : outside.AllowedV6;
        string forbidden = family == "v4" ? outside.Forbidden : outside.ForbiddenV6;
        string rule = family == "v4" ? allowed : $"[{allowed}]";
        int before = outside.Count($"{forbidden}:{AllowOutside.HttpPort}");
        var r = Allowing(rule, "/bin/sh", "-c",
            $"\"$0\" get BLOCK {allowed} {AllowOutside.HttpPort}; \"$0\" time {forbidden} {AllowOutside.HttpPort}; \"$0\" time 127.0.0.1 {outside.HostLoopbackPort}",
            outside.Probe);
        var lines = r.Stdout.Split('\n');
        Assert.That(lines[0], Is.EqualTo("body: hello from outside"), r.ToString());
        Assert.That(lines[1], Does.StartWith("connect: ENETUNREACH"), r.ToString());
        Assert.That(Seconds(lines[1]), Is.LessThan(1.0), r.ToString());
        Assert.That(lines[2], Does.StartWith("connect: ECONNREFUSED"), r.ToString()); // the namespace's own loopback
        Assert.That(outside.Count($"{forbidden}:{AllowOutside.HttpPort}"), Is.EqualTo(before));
        Assert.That(outside.HostLoopbackAccepts, Is.Zero);
    }

    [Test]
    public void A_port_rule_allows_that_port_only()
    {
        var r = Allowing($"{outside.Allowed}:{AllowOutside.HttpPort}, [{outside.AllowedV6}]:{AllowOutside.HttpPort}", "/bin/sh", "-c",
            $"\"$0\" get BLOCK {outside.Allowed} {AllowOutside.HttpPort}; \"$0\" time {outside.Allowed} {AllowOutside.OtherHttpPort}; \"$0\" get NONBLOCK {outside.AllowedV6} {AllowOutside.HttpPort}",
            outside.Probe);
        var lines = r.Stdout.Split('\n');
        Assert.That(lines[0], Is.EqualTo("body: hello from outside"), r.ToString());
        Assert.That(lines[1], Does.StartWith("connect: ENETUNREACH"), r.ToString());
        Assert.That(Seconds(lines[1]), Is.LessThan(1.0), r.ToString());
        Assert.That(lines[2], Is.EqualTo("body: hello from outside"), r.ToString());
    }

    [Test]
    public void A_network_rule_allows_its_addresses()
    {
        var r = Allowing($"10.213.{outside.Subnet}.0/30", outside.Probe, "get", "BLOCK", outside.Forbidden, $"{AllowOutside.HttpPort}");
        Assert.That(r.Stdout, Does.Contain("body: hello from outside"), r.ToString());
    }

    [Test]
    public void Curl_python_and_git_work_unmodified()
    {
        string url = $"http://{outside.Allowed}:{AllowOutside.HttpPort}";
        string url6 = $"http://[{outside.AllowedV6}]:{AllowOutside.HttpPort}";
        string home = Harness.TempDirectory(Who);
        var r = Harness.Run(Who, Harness.Nonet, ["/bin/sh", "-c", $$"""
            set -e
            curl -sS --max-time 10 {{url}}/hello.txt
            curl -sS --max-time 10 {{url6}}/hello.txt
            {{Python}} -c 'import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' {{url6}}/hello.txt
            {{Python}} -c '
            import asyncio, sys
            async def main():
                r, w = await asyncio.open_connection(sys.argv[1], int(sys.argv[2]))
                w.write(b"GET /hello.txt HTTP/1.0\r\n\r\n")
                data = await r.read()
                sys.stdout.write(data.split(b"\r\n\r\n", 1)[1].decode())
            asyncio.run(main())' {{outside.Allowed}} {{AllowOutside.HttpPort}}
            cd "$HOME" && git clone -q {{url}}/repo.git clone && cat clone/README
            """],
            new Dictionary<string, string?> { ["NONET_ALLOW"] = $"{outside.Allowed}, [{outside.AllowedV6}]", ["HOME"] = home },
            timeout: System.TimeSpan.FromSeconds(60));
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("hello from outside\nhello from outside\nhello from outside\nhello from outside\nallowed\n"), r.ToString());
    }

    [Test]
    public void Happy_eyeballs_falls_back_from_a_silent_IPv6_address_at_once()
    {
        // The name's first address (IPv6) never answers; both are allowed.
        // Each client tries the next address after 100 ms (their defaults
        // are 200 and 250 ms), which leaves room for a loaded machine; the
        // silent address alone would take seconds to fail.
        string rules = $"[{outside.SilentV6}], {outside.Allowed}";
        var r = Allowing(rules, "/bin/sh", "-c", $$"""
            curl -sS --max-time 10 --happy-eyeballs-timeout-ms 100 -w 'curl in %{time_total} s\n' --resolve "outside.test:{{AllowOutside.HttpPort}}:[{{outside.SilentV6}}],{{outside.Allowed}}" http://outside.test:{{AllowOutside.HttpPort}}/hello.txt
            node -e '
            const http = require("http");
            const [silent, allowed, port] = [process.argv[1], process.argv[2], Number(process.argv[3])];
            const get = (addresses, done) => {
              const lookup = (name, options, callback) => callback(null, addresses);
              http.get({ host: "outside.test", port, path: "/hello.txt", agent: false, lookup, autoSelectFamily: true, autoSelectFamilyAttemptTimeout: 100 }, res => {
                let body = "";
                res.on("data", d => body += d);
                res.on("end", () => done(body));
              }).on("error", e => console.log("node error " + e.code));
            };
            // A first request warms node up; the second is timed.
            get([{ address: allowed, family: 4 }], () => {
              const start = process.hrtime.bigint();
              get([{ address: silent, family: 6 }, { address: allowed, family: 4 }], body => {
                process.stdout.write(body);
                console.log(`node in ${Number(process.hrtime.bigint() - start) / 1e9} s`);
              });
            });
            ' {{outside.SilentV6}} {{outside.Allowed}} {{AllowOutside.HttpPort}}
            """);
        var lines = r.Stdout.Split('\n');
        Assert.That(lines.Length, Is.GreaterThanOrEqualTo(4), r.ToString());
        Assert.That(lines[0], Is.EqualTo("hello from outside"), r.ToString());
        Assert.That(Seconds(lines[1]), Is.LessThan(0.5), r.ToString());
        Assert.That(lines[2], Is.EqualTo("hello from outside"), r.ToString());
        Assert.That(Seconds(lines[3]), Is.LessThan(0.5), r.ToString());
    }

    [Test]
    public void Unix_and_loopback_connections_inside_work_as_without_allow()
    {
        // nonet makes these connects itself: a path (absolute, relative,
        // through a symbolic link) as the command sees it, an abstract name
        // of the namespace, a blocking and a non-blocking TCP connect to
        // the namespace's loopback.
        string dir = Harness.TempDirectory(Who);
        var r = Allowing(outside.Allowed, Python, "-c", """
            import os, socket, sys, threading
            os.chdir(sys.argv[1])
            def serve(s):
                while True:
                    c, _ = s.accept(); c.sendall(b"hi"); c.close()
            def listen(family, address):
                s = socket.socket(family, socket.SOCK_STREAM); s.bind(address); s.listen(8)
                threading.Thread(target=serve, args=(s,), daemon=True).start()
                return s
            listen(socket.AF_UNIX, "server.sock")
            os.symlink("server.sock", "link.sock")
            listen(socket.AF_UNIX, "\0nonet-allow-abstract")
            tcp = listen(socket.AF_INET, ("127.0.0.1", 0))
            for address in [os.path.join(sys.argv[1], "server.sock"), "server.sock", "link.sock", "\0nonet-allow-abstract"]:
                c = socket.socket(socket.AF_UNIX); c.connect(address); print(c.recv(2).decode())
            for blocking in [True, False]:
                c = socket.socket(); c.setblocking(blocking)
                try:
                    c.connect(tcp.getsockname())
                except BlockingIOError:
                    pass
                c.setblocking(True); print(c.recv(2).decode())
            try:
                socket.socket(socket.AF_UNIX).connect("missing.sock")
            except OSError as e:
                print(e.errno)
            """, dir);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("hi\nhi\nhi\nhi\nhi\nhi\n2\n"), r.ToString());
    }

    [Test]
    public void Options_set_before_connect_carry_over_and_a_bound_address_is_refused()
    {
        var r = Allowing(outside.Allowed, Python, "-c", """
            import os, socket, sys
            address = (sys.argv[1], int(sys.argv[2]))
            s = socket.socket()
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            s.set_inheritable(True)
            s.settimeout(7.5)
            s.connect(address)
            print(s.getpeername()[0] == address[0],
                  s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0,
                  s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0,
                  s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 131072,
                  s.get_inheritable(),
                  os.get_blocking(s.fileno()) is False)
            c = socket.socket()
            print(c.get_inheritable(), os.get_blocking(c.fileno()))
            c.connect(address)
            print(c.get_inheritable(), os.get_blocking(c.fileno()))
            b = socket.socket(); b.bind(("127.0.0.1", 0))
            try:
                b.connect(address)
            except OSError as e:
                print(e.errno)
            """, outside.Allowed, $"{AllowOutside.HttpPort}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("True True True True True True\nFalse True\nFalse True\n99\n"), r.ToString()); // EADDRNOTAVAIL
    }

    [Test]
    public void The_report_lists_connects_that_nonet_carried_out()
    {
        string file = System.IO.Path.Combine(Harness.TempDirectory(Who), "report.jsonl");
        var r = Allowing(outside.Allowed, "--report-file", file, "/bin/sh", "-c",
            $"\"$0\" get BLOCK {outside.Allowed} {AllowOutside.HttpPort}; \"$0\" time {outside.Forbidden} {AllowOutside.HttpPort}; \"$0\" time 127.0.0.1 9",
            outside.Probe);
        Assert.That(r.Stdout, Does.Contain("body: hello from outside"), r.ToString());
        var destinations = System.IO.File.ReadAllLines(file)
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Select(e => $"{e.GetProperty("protocol").GetString()} {e.GetProperty("address").GetString()}:{e.GetProperty("port").GetInt32()}")
            .ToList();
        Assert.That(destinations, Is.EqualTo(new[] { $"tcp {outside.Allowed}:{AllowOutside.HttpPort}", $"tcp {outside.Forbidden}:{AllowOutside.HttpPort}" }),
            System.IO.File.ReadAllText(file) + r);
    }
}
