using System.IO;
using System.Linq;
using Nonet.Interop;
using Nonet.SelfTest;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

/// <summary>The self-test's --allow line (<see cref="AllowCheck"/>): what
/// it says for each kernel release, probe answer and configuration, and
/// the real request it rests on (<see cref="Seccomp.ProbeAddFd"/>).</summary>
internal sealed class AllowCheckTests
{
    private static readonly (string, string) Answered = ("PASS", "SECCOMP_IOCTL_NOTIF_ADDFD answered a seccomp listener made inside");
    private static readonly (string, string) Refused = ("FAIL", "SECCOMP_IOCTL_NOTIF_ADDFD: Invalid argument: this kernel does not have it (Linux 5.9)");

    [TestCase("5.9")]
    [TestCase("5.9.0")]
    [TestCase("6.1.0-28-amd64")]
    [TestCase("6.18.44-fc-v1045\n")]
    public void A_kernel_that_answers_passes_with_its_release(string release)
    {
        var check = AllowCheck.Decide(release, Answered, configuredAt: null);
        Assert.That(check.Status, Is.EqualTo(CheckStatus.PASS));
        Assert.That(check.Detail, Is.EqualTo($"Linux {release.Trim()}: {Answered.Item2}"));
        Assert.That(check.Required, Is.False, "plain nonet does not need it");
        Assert.That(AllowCheck.Decide(release, Answered, "environment NONET_ALLOW").Required, Is.True);
    }

    [TestCase("5.8.0-1-amd64", "5.8.0-1-amd64")]
    [TestCase("4.19.0-27-amd64", "4.19.0-27-amd64")]
    [TestCase("2.6.78-fc-v1045", "2.6.78-fc-v1045")]
    [TestCase("garbage", "garbage")]
    [TestCase("", "")]
    [TestCase(null, "unknown")]
    public void Below_5_9_it_is_a_note_that_does_not_fail_the_self_test(string? release, string shown)
    {
        // What the probe answered does not matter: --allow itself goes by the release.
        foreach (var probe in new (string, string)?[] { Answered, Refused, null })
        {
            var check = AllowCheck.Decide(release, probe, configuredAt: null);
            Assert.That(check.Status, Is.EqualTo(CheckStatus.SKIP));
            Assert.That(check.Required, Is.False);
            Assert.That(check.Detail, Is.EqualTo(
                $"--allow unavailable: needs Linux 5.9 or later (SECCOMP_IOCTL_NOTIF_ADDFD); this kernel is {shown}; nonet without --allow works"));
            Assert.That(new SelfTestReport([], [check]).Passed, Is.True);
        }
    }

    [TestCase("5.8.0-1-amd64")]
    [TestCase("garbage")]
    public void Below_5_9_it_fails_when_the_configuration_asks_for_allow(string release)
    {
        var check = AllowCheck.Decide(release, Answered, "/etc/nonet/config:3");
        Assert.That(check.Status, Is.EqualTo(CheckStatus.FAIL));
        Assert.That(check.Required, Is.True);
        Assert.That(check.Detail, Does.StartWith("--allow unavailable: needs Linux 5.9 or later").And.EndWith(", and /etc/nonet/config:3 sets 'allow'"));
        Assert.That(check.Fix, Is.EqualTo("run on Linux 5.9 or later, or take 'allow' out of /etc/nonet/config:3"));
        Assert.That(new SelfTestReport([], [check]).Passed, Is.False);
    }

    [Test]
    public void A_kernel_that_should_have_it_but_refuses_fails_and_is_required_only_when_configured()
    {
        var note = AllowCheck.Decide("6.1.0-28-amd64", Refused, configuredAt: null);
        Assert.That(note.Status, Is.EqualTo(CheckStatus.FAIL));
        Assert.That(note.Required, Is.False);
        Assert.That(note.Detail, Is.EqualTo("--allow unavailable: " + Refused.Item2));
        Assert.That(note.Fix, Does.Contain("seccomp listener of its own"));
        Assert.That(new SelfTestReport([], [note]).Passed, Is.True);

        var configured = AllowCheck.Decide("6.1.0-28-amd64", Refused, "environment NONET_ALLOW");
        Assert.That(configured.Status, Is.EqualTo(CheckStatus.FAIL));
        Assert.That(new SelfTestReport([], [configured]).Passed, Is.False);
    }

    [Test]
    public void Without_the_probe_it_says_why()
    {
        var skipped = AllowCheck.Decide("6.1.0", null, "environment NONET_ALLOW", notReached: "exec the command failed");
        Assert.That((skipped.Status, skipped.Detail, skipped.Required), Is.EqualTo((CheckStatus.SKIP, "not reached: exec the command failed", false)));
        var silent = AllowCheck.Decide("6.1.0", null, "environment NONET_ALLOW");
        Assert.That((silent.Status, silent.Detail, silent.Required), Is.EqualTo((CheckStatus.FAIL, "the probe reported nothing", true)));
    }

    [Test]
    [CancelAfter(10_000)]
    public void The_probe_finds_the_request_on_this_kernel_and_leaves_the_caller_unfiltered()
    {
        static string[] SeccompState() => File.ReadAllLines("/proc/thread-self/status")
            .Where(l => l.StartsWith("Seccomp", System.StringComparison.Ordinal) || l.StartsWith("NoNewPrivs:", System.StringComparison.Ordinal)).ToArray();
        var before = SeccompState();
        // This kernel (the tests need 5.9 for --allow anyway) has it.
        var probe = Seccomp.ProbeAddFd();
        Assert.That(probe, Is.EqualTo(new Seccomp.AddFdProbe(true, "SECCOMP_IOCTL_NOTIF_ADDFD", Errno.ENOENT)));
        // The filter and no_new_privs went with the probe's own thread.
        Assert.That(SeccompState(), Is.EqualTo(before).And.Not.Empty);
    }
}
