using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

public sealed class SelfTestTests(Identity identity) : EndToEndTest(identity)
{
    private static readonly string[] RequiredChecks =
        ["launcher", "signals", "userns", "idmap", "netns", "lo_set_up", "drop_caps", "exec", "ids", "interfaces", "lo_up", "tcp4", "no_route", "separate", "home", "caps", "reconfigure"];

    [Test]
    public void Self_test_passes_and_reports_for_a_support_ticket()
    {
        var r = Nonet("--self-test");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var (uid, gid) = Ids;
        Assert.That(r.Stdout, Does.StartWith("nonet self-test\n"));
        foreach (var fact in new[] { "nonet:", "launcher:", "kernel:", "distribution:", "container:", $"uid {uid} gid {gid}", "\nsysctls\n", "  user.max_user_namespaces " })
            Assert.That(r.Stdout, Does.Contain(fact));
        Assert.That(r.Stdout, Does.Contain($"PASS  visible uid/gid").And.Contain($"the command sees uid {uid} gid {gid}"));
        Assert.That(r.Stdout, Does.Not.Contain("FAIL"));
        Assert.That(r.Stdout, Does.Match(@"\nresult: PASS \(\d+ passed, 0 failed, \d+ skipped\)\n$"));
    }

    [Test]
    public void Self_test_json_has_every_required_check_passing()
    {
        var r = Nonet("--self-test", "--json");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        using var json = JsonDocument.Parse(r.Stdout);
        Assert.That(json.RootElement.GetProperty("result").GetString(), Is.EqualTo("PASS"));
        var facts = json.RootElement.GetProperty("facts");
        Assert.That(facts.GetProperty("user").GetProperty("uid").GetUInt32(), Is.EqualTo(Ids.Uid));
        Assert.That(facts.GetProperty("user").GetProperty("gid").GetUInt32(), Is.EqualTo(Ids.Gid));
        Assert.That(facts.GetProperty("probe_run_ms").ValueKind, Is.EqualTo(JsonValueKind.Number));
        Assert.That(facts.GetProperty("sysctls").GetProperty("user.max_user_namespaces").ValueKind, Is.EqualTo(JsonValueKind.Number), "a sysctl's number is a number");
        Assert.That(facts.GetProperty("nonet").GetProperty("version").GetString(), Does.Match(@"^\d+\.\d+\.\d+$"));
        Assert.That(facts.GetProperty("launcher").GetProperty("path").GetString(), Is.EqualTo($"{Harness.BinDirectory}/nonet-launcher"));
        var checks = json.RootElement.GetProperty("checks").EnumerateArray()
            .ToDictionary(c => c.GetProperty("id").GetString()!, c => c.GetProperty("status").GetString());
        foreach (var id in RequiredChecks)
            Assert.That(checks.GetValueOrDefault(id), Is.EqualTo("PASS"), id);
    }

    [Test]
    public void Self_test_explains_a_refused_user_namespace_with_a_fix_and_fails()
    {
        var r = Harness.Run(Who, "bwrap", ["--unshare-user", "--disable-userns", "--dev-bind", "/", "/", Harness.Nonet, "--self-test"]);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Stdout, Does.Contain("FAIL  helper spawn and user namespace"));
        Assert.That(r.Stdout, Does.Contain("fix: nonet runs inside a user namespace that allows no more"));
        Assert.That(r.Stdout, Does.Contain("user namespace:").And.Contain("nested"));
        Assert.That(r.Stdout, Does.Contain("SKIP  only lo present"));
        Assert.That(r.Stdout, Does.Match(@"\nresult: FAIL \(\d+ passed, [1-9]\d* failed, \d+ skipped\)\n$"));
    }

    [Test]
    public void Self_test_json_reports_the_failure_too()
    {
        var r = Harness.Run(Who, "unshare", ["--user", Harness.Nonet, "--self-test", "--json"]);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        using var json = JsonDocument.Parse(r.Stdout);
        Assert.That(json.RootElement.GetProperty("result").GetString(), Is.EqualTo("FAIL"));
        var failed = json.RootElement.GetProperty("checks").EnumerateArray().Where(c => c.GetProperty("status").GetString() == "FAIL").ToList();
        Assert.That(failed.Select(c => c.GetProperty("id").GetString()), Is.EqualTo(new[] { "userns" }));
        Assert.That(failed[0].GetProperty("fix").GetString(), Does.Contain("does not map your uid 65534"));
    }

    private const string ProbeRefused =
        "nonet: --self-test-probe is internal to 'nonet --self-test', which runs it inside nonet; run 'nonet --self-test' instead\n";

    [Test]
    public void The_probe_run_by_hand_refuses_and_leaves_the_hosts_lo_alone()
    {
        var before = Harness.Run(Who, "ip", ["-o", "link", "show", "lo"]);
        foreach (var args in new[] { new[] { "--self-test-probe" }, new[] { "--self-test-probe", "12345" }, new[] { "--self-test-probe", "1:2:3", "12345" } })
        {
            var r = Nonet(args);
            Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
            Assert.That(r.Stderr, Is.EqualTo(ProbeRefused));
            Assert.That(r.Stdout, Is.Empty, "no check ran");
        }
        Assert.That(Harness.Run(Who, "ip", ["-o", "link", "show", "lo"]).Stdout, Is.EqualTo(before.Stdout));
    }

    [Test]
    public void The_probe_refuses_a_forged_token()
    {
        // The right pipe, but the caller's own namespaces: on the host.
        const string script = """
            import os, subprocess, sys
            r, w = os.pipe()
            ino = lambda p: os.stat(p).st_ino
            token = f"{os.fstat(w).st_ino}:{ino('/proc/self/ns/user')}:{ino('/proc/self/ns/net')}"
            p = subprocess.run([sys.argv[1], "--self-test-probe", token, "12345"], stdout=w, stderr=subprocess.PIPE)
            os.close(w)
            out = os.read(r, 65536)
            sys.stdout.write(f"{p.returncode} {len(out)} {p.stderr.decode()}")
            """;
        var host = Harness.Run(Who, Python, ["-c", script, Harness.Nonet]);
        Assert.That(host.Stdout, Is.EqualTo("125 0 " + ProbeRefused), host.ToString());

        // Inside nonet, but with a token that is not the self-test's.
        var inside = Nonet(Harness.Nonet, "--self-test-probe", "1:1:1", "12345");
        Assert.That(inside.ExitCode, Is.EqualTo(125), inside.ToString());
        Assert.That(inside.Stderr, Is.EqualTo(ProbeRefused));
        Assert.That(inside.Stdout, Is.Empty);
    }

    [Test]
    public void Self_test_sees_a_home_directory_whose_name_is_not_UTF8()
    {
        string dir = Harness.TempDirectory(Who);
        var r = Shell($"h=\"{dir}/$(printf 'home\\377')\" && mkdir \"$h\" && HOME=\"$h\" \"$NONET\" --self-test");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain($"PASS  home directory visible").And.Contain($"{dir}/home\\xff is readable"));
    }
}
