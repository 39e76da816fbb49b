using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text.Json;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// --self-test's line for --allow (issue 22), and the kernel check that
/// --allow makes before it runs anything.  An older kernel is shown the way
/// the kernel itself offers: the UNAME26 personality (setarch --uname-2.6)
/// makes uname() report 2.6.x to nonet, which is what both read; nothing in
/// nonet is there for the tests.  A refused hand-over is shown for real: a
/// seccomp listener already in force above nonet (another supervisor, as
/// nonet --report is) makes the kernel refuse nonet's own, for the probe and
/// for --allow alike.
/// </summary>
public sealed class SelfTestAllowTests(Identity identity) : EndToEndTest(identity)
{
    private const string Line = "--allow (connect hand-over)";
    private const string Unavailable = "--allow unavailable: needs Linux 5.9 or later (SECCOMP_IOCTL_NOTIF_ADDFD); this kernel is 2.6.";

    private static readonly Dictionary<string, string?> AllowConfigured = new() { ["NONET_ALLOW"] = "192.0.2.1" };

    private static string Machine => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "aarch64" : "x86_64";

    /// <summary>nonet with uname() saying 2.6.x, as a kernel before 5.9 would say less than 5.9.</summary>
    private RunResult OnAnOldKernel(Dictionary<string, string?>? environment, params string[] args) =>
        Harness.Run(Who, "setarch", [Machine, "--uname-2.6", Harness.Nonet, .. args], environment);

    /// <summary>nonet under a seccomp filter that has a listener (Python
    /// installs one that allows every call, keeps the listener, and runs nonet).</summary>
    private RunResult UnderAnotherSupervisor(Dictionary<string, string?>? environment, params string[] args) =>
        Harness.Run(Who, Python, ["-c", """
            import ctypes, os, struct, subprocess, sys
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(38, 1, 0, 0, 0) != 0:
                sys.exit("prctl: " + os.strerror(ctypes.get_errno()))
            allow_all = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0x7fff0000))
            class Prog(ctypes.Structure):
                _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
            prog = Prog(1, ctypes.cast(allow_all, ctypes.c_void_p))
            nr = {"x86_64": 317, "aarch64": 277}[os.uname().machine]
            listener = libc.syscall(ctypes.c_long(nr), ctypes.c_long(1), ctypes.c_long(8), ctypes.byref(prog))
            if listener < 0:
                sys.exit("seccomp: " + os.strerror(ctypes.get_errno()))
            sys.exit(subprocess.run(sys.argv[1:], timeout=25).returncode)
            """, Harness.Nonet, .. args], environment);

    private static Dictionary<string, JsonElement> Checks(RunResult r)
    {
        using var json = JsonDocument.Parse(r.Stdout);
        return json.RootElement.GetProperty("checks").EnumerateArray()
            .ToDictionary(c => c.GetProperty("id").GetString()!, c => c.Clone());
    }

    [Test]
    public void Self_test_finds_the_connect_hand_over_on_this_kernel()
    {
        string release = Harness.Run(Who, "uname", ["-r"]).Stdout.Trim();
        var r = Nonet("--self-test");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain($"  PASS  {Line}").And.Contain($"Linux {release}: SECCOMP_IOCTL_NOTIF_ADDFD answered a seccomp listener made inside\n"));

        var json = Nonet("--self-test", "--json");
        Assert.That(json.ExitCode, Is.Zero, json.ToString());
        var allow = Checks(json)["allow"];
        Assert.That(allow.GetProperty("status").GetString(), Is.EqualTo("PASS"));
        Assert.That(allow.GetProperty("required").GetBoolean(), Is.False, "plain nonet does not need it");

        var configured = NonetWith(AllowConfigured, "--self-test", "--json");
        Assert.That(configured.ExitCode, Is.Zero, configured.ToString());
        allow = Checks(configured)["allow"];
        Assert.That(allow.GetProperty("status").GetString(), Is.EqualTo("PASS"));
        Assert.That(allow.GetProperty("required").GetBoolean(), Is.True, "NONET_ALLOW asks for it");
    }

    [Test]
    public void Below_Linux_5_9_self_test_notes_that_allow_is_unavailable_and_still_passes()
    {
        var r = OnAnOldKernel(null, "--self-test");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain($"  SKIP  {Line}").And.Contain(Unavailable));
        Assert.That(r.Stdout, Does.Contain("; nonet without --allow works\n"));
        Assert.That(r.Stdout, Does.Not.Contain("FAIL"));
        Assert.That(r.Stdout, Does.Match(@"\nresult: PASS \(\d+ passed, 0 failed, \d+ skipped\)\n$"));
    }

    [Test]
    public void Below_Linux_5_9_self_test_fails_when_the_configuration_asks_for_allow()
    {
        var r = OnAnOldKernel(AllowConfigured, "--self-test");
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Stdout, Does.Contain($"  FAIL  {Line}").And.Contain(Unavailable).And.Contain(", and environment NONET_ALLOW sets 'allow'\n"));
        Assert.That(r.Stdout, Does.Contain("        fix: run on Linux 5.9 or later, or take 'allow' out of environment NONET_ALLOW\n"));
        Assert.That(r.Stdout, Does.Match(@"\nresult: FAIL \(\d+ passed, 1 failed, \d+ skipped\)\n$"));

        var json = OnAnOldKernel(AllowConfigured, "--self-test", "--json");
        Assert.That(json.ExitCode, Is.EqualTo(1), json.ToString());
        var allow = Checks(json)["allow"];
        Assert.That(allow.GetProperty("status").GetString(), Is.EqualTo("FAIL"));
        Assert.That(allow.GetProperty("required").GetBoolean(), Is.True);
    }

    [Test]
    public void Below_Linux_5_9_allow_exits_125_with_one_line_before_anything_runs()
    {
        foreach (var (environment, args) in new (Dictionary<string, string?>?, string[])[]
        {
            (null, ["--allow", "192.0.2.1", "--", "sh", "-c", "echo ran"]),
            (AllowConfigured, ["sh", "-c", "echo ran"]),
        })
        {
            var r = OnAnOldKernel(environment, args);
            Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
            Assert.That(r.Stderr, Does.Match(@"^nonet: --allow needs Linux 5\.9 or later \(SECCOMP_IOCTL_NOTIF_ADDFD\); this kernel is 2\.6\.\d+\S*\n$"));
            Assert.That(r.Stdout, Is.Empty, "the command did not run");
        }
        // Without --allow the same kernel runs commands as ever.
        var plain = OnAnOldKernel(null, "sh", "-c", "echo ran");
        Assert.That((plain.ExitCode, plain.Stdout, plain.Stderr), Is.EqualTo((0, "ran\n", "")));
    }

    [Test]
    public void Under_another_seccomp_supervisor_self_test_says_allow_is_unavailable_as_allow_finds()
    {
        var r = UnderAnotherSupervisor(null, "--self-test");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain($"  FAIL  {Line}")
            .And.Contain("--allow unavailable: seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER): Device or resource busy: a seccomp listener is already in force above this process")
            .And.Contain(" (not required)\n"));
        Assert.That(r.Stdout, Does.Match(@"\nresult: PASS \(\d+ passed, 1 failed, \d+ skipped\)\n$"));

        var configured = UnderAnotherSupervisor(AllowConfigured, "--self-test");
        Assert.That(configured.ExitCode, Is.EqualTo(1), configured.ToString());
        Assert.That(configured.Stdout, Does.Contain($"  FAIL  {Line}").And.Not.Contain("(not required)"));

        // What the line foretells: --allow itself is refused there.
        var allow = UnderAnotherSupervisor(null, "--allow", "192.0.2.1", "--", "sh", "-c", "echo ran");
        Assert.That(allow.ExitCode, Is.EqualTo(125), allow.ToString());
        Assert.That(allow.Stderr, Does.Contain("cannot install nonet's seccomp filter: Device or resource busy"));
        Assert.That(allow.Stdout, Is.Empty);
    }
}
