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

    private RunResult AllowingShell(string rules, string script) =>
        Harness.Run(Who, Harness.Nonet, ["/bin/sh", "-c", script],
            new Dictionary<string, string?> { ["NONET_ALLOW"] = rules, ["PROBE"] = outside.Probe });

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
        string rules = $"[{outside.SilentV6}], {outside.Allowed}";
        var r = Allowing(rules, "/bin/sh", "-c", $$"""
            start=$(date +%s.%N)
            curl -sS --max-time 10 --resolve "outside.test:{{AllowOutside.HttpPort}}:[{{outside.SilentV6}}],{{outside.Allowed}}" http://outside.test:{{AllowOutside.HttpPort}}/hello.txt
            end=$(date +%s.%N)
            echo "curl in $(echo "$end - $start" | bc) s"
            node -e '
            const http = require("http");
            const start = process.hrtime.bigint();
            const lookup = (name, options, callback) => callback(null, [{ address: process.argv[1], family: 6 }, { address: process.argv[2], family: 4 }]);
            http.get({ host: "outside.test", port: Number(process.argv[3]), path: "/hello.txt", lookup, autoSelectFamily: true, autoSelectFamilyAttemptTimeout: 250 }, res => {
              let body = "";
              res.on("data", d => body += d);
              res.on("end", () => { process.stdout.write(body); console.log(`node in ${Number(process.hrtime.bigint() - start) / 1e9} s`); });
            }).on("error", e => { console.log("node error " + e.code); });
            ' {{outside.SilentV6}} {{outside.Allowed}} {{AllowOutside.HttpPort}}
            """);
        var lines = r.Stdout.Split('\n');
        Assert.That(lines.Length, Is.GreaterThanOrEqualTo(4), r.ToString());
        Assert.That(lines[0], Is.EqualTo("hello from outside"), r.ToString());
        Assert.That(Seconds(lines[1]), Is.LessThan(0.5), r.ToString());
        Assert.That(lines[2], Is.EqualTo("hello from outside"), r.ToString());
        Assert.That(Seconds(lines[3]), Is.LessThan(0.5), r.ToString());
    }
}
