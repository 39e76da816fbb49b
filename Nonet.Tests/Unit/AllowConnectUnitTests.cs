using System;
using NUnit.Framework;
using Nonet.Allow;

namespace Nonet.Tests.Unit;

/// <summary>--allow's pure decisions beside the hand-over: which kernels
/// can do it, and address rules as the broker asks them.</summary>
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
        Assert.That(AllowRun.KernelSupports(release), Is.EqualTo(supported));
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
        IConnectPolicy policy = new AllowedAddressesPolicy(new AllowedAddresses(new AllowList([AllowSpec.Parse(rule)])));
        Assert.That(policy.Decide(System.Net.IPAddress.Parse(address), port), Is.EqualTo(allowed ? Verdict.Allowed : Verdict.Denied));
    }

    /// <summary>The question the broker asks, as AllowRun answers it.</summary>
    private sealed class AllowedAddressesPolicy(AllowedAddresses addresses) : IConnectPolicy
    {
        public Verdict Decide(System.Net.IPAddress address, int port) =>
            addresses.IsAllowed(address, port) ? Verdict.Allowed : Verdict.Denied;
    }
}
