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
    public void Every_set_up_failure_is_125(Step step)
    {
        Assert.That(FailureExplainer.Explain(new LaunchFailure(step, Errno.EPERM), Facts()).ExitCode, Is.EqualTo(125));
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
}
