using System.Collections.Generic;
using Nonet.Interop;
using Nonet.Launch;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

internal sealed class FailureExplainerTests
{
    private const string InitialMap = "         0          0 4294967295\n";

    private static HostFacts Facts(Dictionary<string, string>? sysctls = null, uint uid = 1000, string uidMap = InitialMap) =>
        new(sysctls ?? new Dictionary<string, string>(), uid, uid, uidMap, uidMap);

    [TestCase(Errno.ENOENT, 127)]
    [TestCase(Errno.ENOTDIR, 127)]
    [TestCase(Errno.ELOOP, 126)]
    [TestCase(Errno.EACCES, 126)]
    [TestCase(8 /* ENOEXEC */, 126)]
    public void Exec_failures_use_the_shell_convention(int errno, int exitCode)
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.Exec, errno, "tool"), Facts());
        Assert.That(e.ExitCode, Is.EqualTo(exitCode));
        Assert.That(e.Message, Does.StartWith("tool: "));
    }

    [TestCase(Step.SpawnLauncher)]
    [TestCase(Step.Clone)]
    [TestCase(Step.WriteUidMap)]
    [TestCase(Step.UnshareNet)]
    [TestCase(Step.LoopbackUp)]
    [TestCase(Step.Listen)]
    [TestCase(Step.ReceiveListeners)]
    [TestCase(Step.Helper)]
    [TestCase(Step.DropCaps)]
    [TestCase(Step.LauncherEnded)]
    [TestCase(Step.Report)]
    public void Every_set_up_failure_is_125(Step step)
    {
        Assert.That(FailureExplainer.Explain(new LaunchFailure(step, Errno.EPERM), Facts()).ExitCode, Is.EqualTo(125));
    }

    [Test]
    public void A_report_that_cannot_watch_the_command_says_what_is_needed()
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.Report, Errno.EPERM, "pidfd_getfd: "), Facts());
        Assert.That(FailureExplainer.OneLine(e), Does.StartWith("cannot watch the command's network calls for --report: pidfd_getfd: Operation not permitted; "));
        Assert.That(e.Fix, Does.Contain("run without --report"));
    }

    [Test]
    public void A_forwarded_port_that_cannot_listen_inside_is_named()
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.Listen, 98 /* EADDRINUSE */, "5432"), Facts());
        Assert.That(FailureExplainer.OneLine(e), Is.EqualTo("cannot listen on forwarded port 5432 inside the namespace: Address already in use"));
    }

    [Test]
    public void AppArmor_restriction_is_named_with_its_fix()
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.Clone, Errno.EACCES),
            Facts(new() { ["kernel.apparmor_restrict_unprivileged_userns"] = "1" }));
        Assert.That(FailureExplainer.OneLine(e), Does.StartWith("cannot create a user namespace: clone: Permission denied; AppArmor restricts"));
        Assert.That(e.Fix, Does.Contain("kernel.apparmor_restrict_unprivileged_userns=0"));
    }

    [Test]
    public void Debians_userns_clone_switch_is_named_with_its_fix()
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.Clone, Errno.EPERM), Facts(new() { ["kernel.unprivileged_userns_clone"] = "0" }));
        Assert.That(e.Fix, Does.Contain("sudo sysctl -w kernel.unprivileged_userns_clone=1"));
    }

    [Test]
    public void A_zero_namespace_limit_is_named_with_its_value()
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.Clone, Errno.ENOSPC), Facts(new() { ["user.max_user_namespaces"] = "0" }));
        Assert.That(e.Fix, Does.Contain("user.max_user_namespaces=0"));
    }

    [Test]
    public void A_sandbox_that_forbids_more_namespaces_is_recognised()
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.Clone, Errno.ENOSPC), Facts(uidMap: "1000 1000 1\n"));
        Assert.That(e.Fix, Does.StartWith("nonet runs inside a user namespace that allows no more"));
    }

    [Test]
    public void An_unmapped_uid_is_explained_at_clone_and_at_the_maps()
    {
        var facts = Facts(uid: 65534, uidMap: "");
        foreach (var step in new[] { Step.Clone, Step.WriteUidMap })
            Assert.That(FailureExplainer.Explain(new LaunchFailure(step, Errno.EPERM, "/proc/1/uid_map"), facts).Fix,
                Does.StartWith("nonet runs inside a user namespace that does not map your uid 65534/gid 65534"));
    }

    [Test]
    public void Root_inside_a_user_namespace_cannot_map_uid_0()
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.WriteUidMap, Errno.EPERM, "/proc/9/uid_map"), Facts(uid: 0, uidMap: "0 0 1\n"));
        Assert.That(e.Message, Is.EqualTo("cannot write /proc/9/uid_map: Operation not permitted"));
        Assert.That(e.Fix, Does.StartWith("mapping uid 0 needs CAP_SETFCAP"));
    }

    [Test]
    public void A_seccomp_refusal_gets_the_container_hint()
    {
        Assert.That(FailureExplainer.Explain(new LaunchFailure(Step.Clone, Errno.EPERM), Facts()).Fix, Does.Contain("seccomp"));
    }

    [TestCase("0 0 4294967295", 1000u, true)]
    [TestCase("1000 1000 1", 1000u, true)]
    [TestCase("1000 1000 1", 1001u, false)]
    [TestCase("0 100000 65536\n1000 1000 1", 65535u, true)]
    [TestCase("", 65534u, false)]
    public void Id_maps_are_read_as_the_kernel_writes_them(string map, uint id, bool mapped)
    {
        Assert.That(HostFacts.IsMapped(map, id), Is.EqualTo(mapped));
    }

    [TestCase(Step.SpawnLauncher)]
    [TestCase(Step.Clone)]
    [TestCase(Step.Helper)]
    public void The_process_limit_is_named_whichever_step_hit_it(Step step)
    {
        var facts = Facts() with { ProcessLimit = "12" };
        var e = FailureExplainer.Explain(new LaunchFailure(step, Errno.EAGAIN, "/l"), facts);
        Assert.That(e.ExitCode, Is.EqualTo(125));
        Assert.That(FailureExplainer.OneLine(e), Does.StartWith("your process limit is reached: "));
        Assert.That(e.Fix, Is.EqualTo("end some of your processes or raise the limit ('ulimit -u' is 12)"));
    }

    [Test]
    public void Too_many_open_files_is_named_with_the_limit()
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.SpawnLauncher, Errno.EMFILE, "/l"), Facts() with { OpenFileLimit = "4" });
        Assert.That(FailureExplainer.OneLine(e), Is.EqualTo("too many open files: start launcher: Too many open files; raise the limit of open files ('ulimit -n' is 4)"));
    }

    [Test]
    public void Arguments_too_long_are_not_blamed_on_the_launcher()
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.SpawnLauncher, Errno.E2BIG, "/l"), Facts());
        Assert.That(e.Message, Does.StartWith("the arguments are too long: "));
        Assert.That(e.Fix, Does.Not.Contain("executable file"));
    }

    [Test]
    public void A_zero_limit_in_a_nested_namespace_names_the_setting()
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.Clone, Errno.ENOSPC),
            Facts(new() { ["user.max_user_namespaces"] = "0" }, uid: 0, uidMap: "0 1000 1\n"));
        Assert.That(e.Fix, Does.Contain("(user.max_user_namespaces=0)"));
    }

    [Test]
    public void Root_inside_nonet_is_told_that_nonet_forbids_nesting_not_to_raise_a_sysctl()
    {
        var e = FailureExplainer.Explain(new LaunchFailure(Step.Clone, Errno.ENOSPC),
            Facts(new() { ["user.max_user_namespaces"] = "0" }, uid: 0, uidMap: "0 0 1\n") with { ProcSysReadOnly = true });
        Assert.That(FailureExplainer.OneLine(e), Is.EqualTo("root inside nonet cannot create user namespaces (nonet forbids them for a root caller)"), FailureExplainer.OneLine(e));
        Assert.That(e.ExitCode, Is.EqualTo(125));
    }

    [TestCase("#!/usr/bin/nope -x\necho\n", "tool: bad interpreter /usr/bin/nope: No such file or directory")]
    [TestCase("#! /opt/x\techo", "tool: bad interpreter /opt/x: No such file or directory")]
    [TestCase("#!/bin/\u001b[2J\n", "tool: bad interpreter /bin/\\x1b[2J: No such file or directory")]
    [TestCase("\u007fELF", null)]
    [TestCase("#!\n", null)]
    public void A_missing_interpreter_is_named(string head, string? message)
    {
        var e = FailureExplainer.MissingInterpreter(new LaunchFailure(Step.Exec, Errno.ENOENT, "tool"), System.Text.Encoding.UTF8.GetBytes(head));
        Assert.That(e?.Message, Is.EqualTo(message));
        if (e is not null)
            Assert.That(e.ExitCode, Is.EqualTo(127));
    }
}

internal sealed class UserTextTests
{
    [TestCase("plain", "plain")]
    [TestCase("\u001b]0;x\u0007", "\\x1b]0;x\\x07")]
    [TestCase("caf\u00e9 \u009b", "caf\u00e9 \\xc2\\x9b")]
    public void Control_characters_are_escaped(string text, string shown)
    {
        Assert.That(UserText.Show(text), Is.EqualTo(shown));
    }

    [Test]
    public void Invalid_UTF8_is_escaped_byte_by_byte()
    {
        Assert.That(UserText.Show([0x61, 0xff, 0xfe, 0x62]), Is.EqualTo("a\\xff\\xfeb"));
    }

    [Test]
    public void A_long_value_is_cut_with_its_length()
    {
        string shown = UserText.Quote(new string('a', 1000));
        Assert.That(shown, Is.EqualTo(new string('a', 77) + "... (1000 bytes)"));
        Assert.That(UserText.Quote(new string('a', 80)), Has.Length.EqualTo(80));
    }

    [Test]
    public void A_cut_never_splits_an_escape()
    {
        Assert.That(UserText.Quote(new string('a', 73) + new string('\u0001', 10)), Is.EqualTo(new string('a', 73) + "\\x01... (83 bytes)"));
        Assert.That(UserText.Quote(new string('a', 75) + new string('\u0001', 10)), Is.EqualTo(new string('a', 75) + "... (85 bytes)"));
    }
}
