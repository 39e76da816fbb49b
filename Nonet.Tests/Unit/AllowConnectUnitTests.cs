using System;
using NUnit.Framework;
using Nonet.Allow;

namespace Nonet.Tests.Unit;

/// <summary>--allow's pure decisions beside the hand-over: which kernels
/// can do it, and the stand-in address rules.</summary>
internal sealed class AllowConnectUnitTests
{
    [TestCase("5.9.0", true)]
    [TestCase("5.10.0-30-amd64", true)]
    [TestCase("6.18.44-fc-v1045\n", true)]
    [TestCase("10.1", true)]
    [TestCase("5.8.18", false)]
    [TestCase("4.19.0-27-amd64", false)]
    [TestCase("5", false)]
    [TestCase("", false)]
    [TestCase("x.y", false)]
    [TestCase(null, false)]
    public void The_hand_over_needs_Linux_5_9(string? release, bool supported)
    {
        Assert.That(AllowPlan.KernelSupports(release), Is.EqualTo(supported));
    }

    [Test]
    public void An_older_kernel_stops_nonet_with_one_line()
    {
        var e = Assert.Throws<NonetException>(() => AllowPlan.From("192.0.2.1", () => "5.4.0-100-generic"));
        Assert.That(e!.ExitCode, Is.EqualTo(125));
        Assert.That(e.Message, Is.EqualTo("--allow needs Linux 5.9 or later (SECCOMP_IOCTL_NOTIF_ADDFD); this kernel is 5.4.0-100-generic"));
    }

    [Test]
    public void Without_rules_nothing_is_read()
    {
        Assert.That(AllowPlan.From(null, () => throw new InvalidOperationException("read")), Is.Null);
        Assert.That(AllowPlan.From(" ", () => throw new InvalidOperationException("read")), Is.Null);
    }

    [TestCase("192.0.2.1", "192.0.2.1", 80, true)]
    [TestCase("192.0.2.1", "192.0.2.2", 80, false)]
    [TestCase("192.0.2.1:443", "192.0.2.1", 443, true)]
    [TestCase("192.0.2.1:443", "192.0.2.1", 80, false)]
    [TestCase("192.0.2.0/24", "192.0.2.200", 80, true)]
    [TestCase("192.0.2.0/24", "192.0.3.1", 80, false)]
    [TestCase("[2001:db8::1]", "2001:db8::1", 80, true)]
    [TestCase("[2001:db8::1]:443", "2001:db8::1", 443, true)]
    [TestCase("[2001:db8::/32]", "2001:db8:ffff::1", 443, true)]
    [TestCase("192.0.2.1", "::ffff:192.0.2.1", 80, true)]
    [TestCase("192.0.2.1", "2001:db8::1", 80, false)]
    public void Address_rules_decide_by_address_and_port(string rule, string address, int port, bool allowed)
    {
        var policy = AddressRulePolicy.Parse(rule);
        Assert.That(policy.Decide(System.Net.IPAddress.Parse(address), port), Is.EqualTo(allowed ? Verdict.Allowed : Verdict.Denied));
    }

    [TestCase("127.1")]
    [TestCase("192.0.2.1:0")]
    [TestCase("192.0.2.1:65536")]
    [TestCase("192.0.2.0/33")]
    [TestCase("[2001:db8::1")]
    [TestCase("example.org")]
    public void A_bad_rule_is_one_line(string rule)
    {
        var e = Assert.Throws<NonetException>(() => AddressRulePolicy.Parse(rule));
        Assert.That(e!.Message, Does.StartWith($"allow: '{rule}'"));
    }
}
