using System.Collections.Generic;
using System.Linq;
using System.Net;
using Nonet.Allow;
using Nonet.Cli;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

internal sealed class AllowSpecTests
{
    [TestCase("example.org", "example.org")]
    [TestCase("Example.ORG.", "example.org")]
    [TestCase("registry.npmjs.org:443", "registry.npmjs.org:443")]
    [TestCase("*.example.org", "*.example.org")]
    [TestCase("*.Example.org:8443", "*.example.org:8443")]
    [TestCase("xn--bcher-kva.example", "xn--bcher-kva.example")]
    [TestCase("_service.example.org", "_service.example.org")]
    [TestCase("myhost", "myhost")]
    [TestCase("10.213.0.2", "10.213.0.2")]
    [TestCase("10.213.0.2:80", "10.213.0.2:80")]
    [TestCase("10.213.0.0/24", "10.213.0.0/24")]
    [TestCase("10.213.0.0/24:443", "10.213.0.0/24:443")]
    [TestCase("0.0.0.0/0", "0.0.0.0/0")]
    [TestCase("[fd00:213::2]", "[fd00:213::2]")]
    [TestCase("[fd00:213::2]:443", "[fd00:213::2]:443")]
    [TestCase("[fd00:213::/64]", "[fd00:213::/64]")]
    [TestCase("[fd00:213::]/64:443", "[fd00:213::/64]:443")]
    [TestCase("[::/0]", "[::/0]")]
    [TestCase("[::ffff:10.0.0.1]", "10.0.0.1")]
    [TestCase(" 192.0.2.7 ", "192.0.2.7")]
    [TestCase("a:65535", "a:65535")]
    [TestCase("a:1", "a:1")]
    public void Good_specs_parse_to_their_canonical_form(string text, string canonical)
    {
        var rule = AllowSpec.Parse(text);
        Assert.That(rule.ToString(), Is.EqualTo(canonical));
        Assert.That(AllowSpec.Parse(canonical), Is.EqualTo(rule), "the canonical form parses back");
    }

    [TestCase("", "empty spec")]
    [TestCase("   ", "empty spec")]
    [TestCase(":443", "missing a name or an address before ':443'")]
    [TestCase("host:", "missing PORT after ':'")]
    [TestCase("host:0", "port 0 is out of range (1-65535)")]
    [TestCase("host:65536", "port 65536 is out of range (1-65535)")]
    [TestCase("host:-1", "PORT '-1' is not a number")]
    [TestCase("host:08x", "PORT '08x' is not a number")]
    [TestCase("host:+80", "PORT '+80' is not a number")]
    [TestCase("host:https", "PORT 'https' is not a number")]
    [TestCase("2001:db8::1", "IPv6 addresses go in brackets")]
    [TestCase("2001:db8::1:443", "IPv6 addresses go in brackets")]
    [TestCase("fd00::/64", "IPv6 addresses go in brackets")]
    [TestCase("[2001:db8::1", "'[' without ']'")]
    [TestCase("[2001:db8::1]443", "expected ':PORT' after [2001:db8::1]")]
    [TestCase("[10.0.0.1]", "'10.0.0.1' is not an IPv6 address")]
    [TestCase("[example.org]", "'example.org' is not an IPv6 address")]
    [TestCase("[]:80", "empty IPv6 address")]
    [TestCase("[fe80::1%eth0]", "an IPv6 zone")]
    [TestCase("10.0.0.0/33", "prefix length /33 is out of range for IPv4 (0-32)")]
    [TestCase("[fd00::/129]", "prefix length /129 is out of range for IPv6 (0-128)")]
    [TestCase("10.0.0.0/", "prefix length '/' is not a number")]
    [TestCase("10.0.0.0/-1", "prefix length '/-1' is not a number")]
    [TestCase("10.0.0.0/0x8", "prefix length '/0x8' is not a number")]
    [TestCase("10.0.0.1/8", "has host bits set: the network is 10.0.0.0/8")]
    [TestCase("[fd00::1/64]", "has host bits set: the network is fd00::/64")]
    [TestCase("example.org/24", "is not an IPv4 address")]
    [TestCase("127.1", "'127.1' is not an IPv4 address")]
    [TestCase("0x7f.1", "'0x7f.1' is not an IPv4 address")]
    [TestCase("0x7f000001", "is not an IPv4 address")]
    [TestCase("2130706433", "is not an IPv4 address")]
    [TestCase("010.0.0.1", "is not an IPv4 address")]
    [TestCase("10.0.0.01", "is not an IPv4 address")]
    [TestCase("10.0.0.256", "is not an IPv4 address")]
    [TestCase("1.2.3.4.5", "is not an IPv4 address")]
    [TestCase("*", "'*' alone would allow every name")]
    [TestCase("*:443", "'*' alone would allow every name")]
    [TestCase("*.com", "would allow every name of a top-level domain")]
    [TestCase("*.com.", "would allow every name of a top-level domain")]
    [TestCase("a*.x", "'*' only goes as a whole first label")]
    [TestCase("*.*.example.org", "'*' only goes as a whole first label")]
    [TestCase("www.*.example.org", "'*' only goes as a whole first label")]
    [TestCase("*example.org", "'*' only goes as a whole first label")]
    [TestCase("a..b", "empty label")]
    [TestCase(".example.org", "empty label")]
    [TestCase("*.", "'*' alone would allow every name")]
    [TestCase("example.org..", "empty label")]
    [TestCase("-a.example", "cannot start or end with '-'")]
    [TestCase("a-.example", "cannot start or end with '-'")]
    [TestCase("a b.example", "is not a host name label")]
    [TestCase("a!b.example", "is not a host name label")]
    [TestCase("a\\.b.example", "is not a host name label")]
    [TestCase("a/b.example", "prefix length '/b.example' is not a number")]
    [TestCase("bücher.example", "write an internationalised name in its xn-- form")]
    [TestCase("例え.テスト", "write an internationalised name in its xn-- form")]
    [TestCase("a\u0000b.example", "control characters")]
    [TestCase("a\u001bb.example", "control characters")]
    [TestCase("example.org\n", "control characters")]
    [TestCase("example.org\u0085", "control characters")]
    [TestCase("localhost", "is the loopback: the host's own loopback services are reached with --forward PORT")]
    [TestCase("LocalHost.", "is the loopback")]
    [TestCase("db.localhost:5432", "is the loopback")]
    [TestCase("*.localhost", "is the loopback")]
    [TestCase("127.0.0.1", "127.0.0.1 is the loopback: the host's own loopback services are reached with --forward PORT")]
    [TestCase("127.0.0.1:5432", "is the loopback")]
    [TestCase("127.255.0.9", "is the loopback")]
    [TestCase("[::1]:80", "::1 is the loopback")]
    [TestCase("[::ffff:127.0.0.1]", "127.0.0.1 is the loopback")]
    [TestCase("0.0.0.0", "is not an address to connect to")]
    [TestCase("[::]", "is not an address to connect to")]
    [TestCase("224.0.0.1", "multicast or broadcast")]
    [TestCase("255.255.255.255", "multicast or broadcast")]
    [TestCase("[ff02::1]", "multicast or broadcast")]
    public void Bad_specs_say_what_is_wrong(string text, string problem)
    {
        var e = Assert.Throws<AllowSpecException>(() => AllowSpec.Parse(text))!;
        Assert.That(e.Message, Does.Contain(problem));
    }

    [Test]
    public void A_label_over_63_characters_or_a_name_over_253_is_refused()
    {
        string label63 = new('a', 63);
        Assert.That(AllowSpec.Parse(label63 + ".example").Name, Is.EqualTo(label63 + ".example"));
        var e = Assert.Throws<AllowSpecException>(() => AllowSpec.Parse(new string('a', 64) + ".example"))!;
        Assert.That(e.Message, Does.Contain("a label of 64 characters; DNS labels have at most 63"));

        string name253 = string.Join('.', Enumerable.Repeat(label63, 3)) + "." + new string('b', 61); // 63*3+3+61 = 253
        Assert.That(name253, Has.Length.EqualTo(253));
        Assert.That(AllowSpec.Parse(name253).Name, Is.EqualTo(name253));
        Assert.That(AllowSpec.Parse(name253 + ".").Name, Is.EqualTo(name253), "a final dot is not counted");
        e = Assert.Throws<AllowSpecException>(() => AllowSpec.Parse(name253 + "b"))!;
        Assert.That(e.Message, Does.Contain("the name is 254 characters long; DNS names have at most 253"));
        e = Assert.Throws<AllowSpecException>(() => AllowSpec.Parse("*." + name253))!;
        Assert.That(e.Message, Does.Contain("DNS names have at most 253"));
    }

    [Test]
    public void Names_match_exactly_and_wildcards_match_only_names_below()
    {
        var list = new AllowList([AllowSpec.Parse("example.org"), AllowSpec.Parse("*.api.example.net:443")]);
        Assert.That(list.Matches("example.org"), Is.True);
        Assert.That(list.Matches("EXAMPLE.org."), Is.True);
        Assert.That(list.Matches("www.example.org"), Is.False);
        Assert.That(list.Matches("badexample.org"), Is.False);
        Assert.That(list.Matches("example.org.evil"), Is.False);
        Assert.That(list.Matches("api.example.net"), Is.False, "*.NAME is the names below NAME, not NAME");
        Assert.That(list.Matches("v1.api.example.net"), Is.True);
        Assert.That(list.Matches("a.b.api.example.net"), Is.True);
        Assert.That(list.Matches("xapi.example.net"), Is.False);
        Assert.That(list.Matches("v1.api.example\\.net"), Is.False);
        Assert.That(list.Matches(""), Is.False);
        Assert.That(list.Matches("."), Is.False);
    }

    [Test]
    public void Addresses_are_allowed_by_a_network_rule_or_by_the_rule_whose_answer_gave_them()
    {
        var list = new AllowList([AllowSpec.Parse("10.213.0.0/24:443"), AllowSpec.Parse("[fd00:213::/64]"), AllowSpec.Parse("db.example:5432")]);
        Assert.That(list.Allows(IPAddress.Parse("10.213.0.9"), 443), Is.True);
        Assert.That(list.Allows(IPAddress.Parse("10.213.0.9"), 80), Is.False);
        Assert.That(list.Allows(IPAddress.Parse("10.213.1.9"), 443), Is.False);
        Assert.That(list.Allows(IPAddress.Parse("::ffff:10.213.0.9"), 443), Is.True, "a v4-mapped address is the IPv4 address");
        Assert.That(list.Allows(IPAddress.Parse("fd00:213::5"), 1), Is.True);
        Assert.That(list.Allows(IPAddress.Parse("fd00:214::5"), 1), Is.False);
        var dbRules = list.RulesFor("db.example");
        Assert.That(list.Allows(IPAddress.Parse("192.0.2.9"), 5432), Is.False, "not without the answer");
        Assert.That(list.Allows(IPAddress.Parse("192.0.2.9"), 5432, dbRules), Is.True);
        Assert.That(list.Allows(IPAddress.Parse("192.0.2.9"), 5433, dbRules), Is.False);
    }

    [TestCase("127.0.0.1")]
    [TestCase("127.8.9.10")]
    [TestCase("::1")]
    [TestCase("::ffff:127.0.0.1")]
    [TestCase("0.0.0.0")]
    [TestCase("0.1.2.3")]
    [TestCase("::")]
    [TestCase("224.0.0.251")]
    [TestCase("255.255.255.255")]
    [TestCase("ff02::fb")]
    public void No_rule_reaches_the_loopback_unspecified_multicast_or_broadcast(string address)
    {
        var list = new AllowList([AllowSpec.Parse("0.0.0.0/0"), AllowSpec.Parse("[::/0]"), AllowSpec.Parse("evil.example")]);
        var ip = IPAddress.Parse(address);
        Assert.That(list.Allows(ip, 80, list.RulesFor("evil.example")), Is.False);
        var table = new AllowedAddresses(list);
        table.Record(ip, "evil.example", list.RulesFor("evil.example"));
        Assert.That(table.IsAllowed(ip, 80), Is.False);
    }

    [Test]
    public void The_table_allows_a_recorded_address_on_the_ports_of_its_rules_and_names_it()
    {
        var list = new AllowList([AllowSpec.Parse("a.example:443"), AllowSpec.Parse("*.a.example:8443"), AllowSpec.Parse("b.example")]);
        var table = new AllowedAddresses(list);
        var address = IPAddress.Parse("10.213.0.2");
        Assert.That(table.IsAllowed(address, 443), Is.False);
        Assert.That(table.NameFor(address), Is.Null);
        table.Record(address, "a.example", list.RulesFor("a.example"));
        Assert.That(table.IsAllowed(address, 443), Is.True);
        Assert.That(table.IsAllowed(address, 8443), Is.False, "*.a.example does not match a.example");
        table.Record(address, "v1.a.example", list.RulesFor("v1.a.example"));
        Assert.That(table.IsAllowed(address, 8443), Is.True, "the same address, given for v1.a.example, adds its rule");
        Assert.That(table.IsAllowed(address, 80), Is.False);
        Assert.That(table.IsAllowed(IPAddress.Parse("::ffff:10.213.0.2"), 443), Is.True);
        Assert.That(table.NameFor(address), Is.EqualTo("a.example"));
        table.Record(address, "b.example", list.RulesFor("b.example"));
        Assert.That(table.IsAllowed(address, 80), Is.True, "a second name's rules add to the first's");
        Assert.That(table.NameFor(address), Is.EqualTo("a.example"));
    }

    [Test]
    public void The_table_stops_growing_at_its_cap()
    {
        var list = new AllowList([AllowSpec.Parse("*.example.org")]);
        var table = new AllowedAddresses(list);
        var rules = list.RulesFor("x.example.org");
        for (int i = 0; i < AllowedAddresses.MaxEntries; i++)
            Assert.That(table.Record(new IPAddress([10, (byte)(i >> 16), (byte)(i >> 8), (byte)i]), "x.example.org", rules), Is.True);
        Assert.That(table.Record(IPAddress.Parse("11.0.0.1"), "x.example.org", rules), Is.False);
        Assert.That(table.Full, Is.True);
        Assert.That(table.Count, Is.EqualTo(AllowedAddresses.MaxEntries));
        Assert.That(table.IsAllowed(IPAddress.Parse("11.0.0.1"), 443), Is.False);
        Assert.That(table.IsAllowed(IPAddress.Parse("10.0.0.1"), 443), Is.True);
    }

    [Test]
    public void A_bad_spec_is_one_line_naming_the_option_or_the_setting()
    {
        var e = Assert.Throws<NonetException>(() => AllowList.Build([("example.org", new AllowSource("--allow", true)), ("a..b", new AllowSource("--allow", true))]))!;
        Assert.That(e.ExitCode, Is.EqualTo(125));
        Assert.That(e.Message, Is.EqualTo("--allow 'a..b': empty label in the name; see 'nonet --help'"));
        e = Assert.Throws<NonetException>(() => AllowList.Build([("x\u001b[31m", new AllowSource("/etc/nonet/config:3", false))]))!;
        Assert.That(e.Message, Is.EqualTo("/etc/nonet/config:3: allow 'x\\x1b[31m': control characters are not allowed"));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void Rules_given_twice_count_once_and_ten_thousand_are_refused()
    {
        var option = new AllowSource("--allow", true);
        var list = AllowList.Build([("Example.org", option), ("example.org.", option), ("example.org:443", option)]);
        Assert.That(list.Rules.Select(r => r.ToString()), Is.EqualTo(new[] { "example.org", "example.org:443" }));

        var many = Enumerable.Range(0, AllowList.MaxRules).Select(i => ($"h{i}.example", option)).ToList();
        Assert.That(AllowList.Build(many).Rules, Has.Count.EqualTo(AllowList.MaxRules));
        var tenThousand = Enumerable.Range(0, 10_000).Select(i => ($"h{i}.example", option));
        var e = Assert.Throws<NonetException>(() => AllowList.Build(tenThousand))!;
        Assert.That(e.Message, Is.EqualTo($"--allow: at most {AllowList.MaxRules} rules (use a wildcard or a CIDR for many)"));
    }

    [Test]
    public void Allow_options_are_collected_in_order_and_go_with_a_command_or_print_config()
    {
        var parsed = CommandLine.Parse(Args("--allow", "a.example", "--allow=10.0.0.0/8", "true"));
        Assert.That(parsed.Allows, Is.EqualTo(new[] { "a.example", "10.0.0.0/8" }));
        Assert.That(CommandLine.Parse(Args("--allow", "a.example", "--print-config")).Allows, Has.Count.EqualTo(1));
        var e = Assert.Throws<NonetException>(() => CommandLine.Parse(Args("--allow", "a.example", "--version")))!;
        Assert.That(e.Message, Does.Contain("--allow goes with a command or --print-config"));
        e = Assert.Throws<NonetException>(() => CommandLine.Parse(Args("--allow")))!;
        Assert.That(e.Message, Does.Contain("--allow needs a value"));
    }

    [TestCase("5.9.0", true)]
    [TestCase("5.10.0-28-amd64", true)]
    [TestCase("6.18.44-fc-v1045", true)]
    [TestCase("10.0", true)]
    [TestCase("5.8.18", false)]
    [TestCase("4.19.0-25-amd64", false)]
    [TestCase("3.10.0-1160.el7.x86_64", false)]
    [TestCase("5.9-rc1", true)]
    [TestCase("", false)]
    [TestCase("garbage", false)]
    [TestCase(null, false)]
    public void Allow_needs_linux_5_9(string? release, bool supported)
    {
        Assert.That(AllowRun.KernelSupports(release), Is.EqualTo(supported));
    }

    private static List<byte[]> Args(params string[] words) => words.Select(w => System.Text.Encoding.UTF8.GetBytes(w)).ToList();
}
