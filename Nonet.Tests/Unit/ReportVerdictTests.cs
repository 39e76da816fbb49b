using System;
using System.Linq;
using System.Net;
using System.Text;
using System.Text.Json;
using Nonet.Allow;
using Nonet.Report;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

/// <summary>--report under --allow: each attempt's verdict and the name an
/// address was reached by, in the JSON lines and the summary, and the
/// --allow options the summary ends with, which must parse back as --allow
/// specs that let exactly the denied destination through.</summary>
public sealed class ReportVerdictTests
{
    private static readonly IPAddress Nameserver = IPAddress.Parse("10.0.0.53");

    private static Attempt At(Destination d, Verdict? verdict, int pid = 42, string command = "curl") =>
        new(new DateTime(2026, 12, 1, 10, 2, 3, 45, DateTimeKind.Utc), d, pid, command, CallKind.Connect) { Verdict = verdict };

    private static Destination Tcp(string address, int port, string? name = null) =>
        new("tcp", IPAddress.Parse(address), port, null) { Name = name };

    private static Destination Lookup(string name, string type = "A") =>
        new("udp", Nameserver, 53, null) { DnsName = name, DnsType = type };

    private static AllowList Rules(params string[] specs) => new([.. specs.Select(AllowSpec.Parse)]);

    [Test]
    public void A_JSON_line_carries_the_verdict_and_the_name_the_address_was_reached_by()
    {
        var allowed = Encoding.UTF8.GetString(ReportJson.Line(At(Tcp("10.213.0.2", 443, "registry.example"), Verdict.Allowed)));
        Assert.That(allowed, Is.EqualTo(
            "{\"time\":\"2026-12-01T10:02:03.045Z\",\"protocol\":\"tcp\",\"address\":\"10.213.0.2\",\"port\":443,\"name\":\"registry.example\",\"pid\":42,\"command\":\"curl\",\"call\":\"connect\",\"verdict\":\"allowed\"}\n"));
        var denied = JsonDocument.Parse(ReportJson.Line(At(Lookup("api.example.org"), Verdict.Denied))).RootElement;
        Assert.That(denied.GetProperty("verdict").GetString(), Is.EqualTo("denied"));
        Assert.That(denied.TryGetProperty("name", out _), Is.False, "a lookup's name is in dns.name");
        Assert.That(denied.GetProperty("dns").GetProperty("name").GetString(), Is.EqualTo("api.example.org"));
        var unread = JsonDocument.Parse(ReportJson.Line(At(Destination.Unread(AttemptRecorder.Unreadable), null))).RootElement;
        Assert.That(unread.TryGetProperty("verdict", out _), Is.False, "nonet cannot tell where an unread call went");
    }

    [Test]
    public void The_same_destination_allowed_and_denied_is_two_groups()
    {
        var tally = new ReportTally();
        tally.Add(At(Tcp("10.213.0.2", 443), Verdict.Denied));
        tally.Add(At(Tcp("10.213.0.2", 443), Verdict.Allowed));
        tally.Add(At(Tcp("10.213.0.2", 443), Verdict.Allowed));
        Assert.That(tally.Groups.Select(g => (g.Verdict, g.Count)), Is.EqualTo(new[] { ((Verdict?)Verdict.Denied, 1L), (Verdict.Allowed, 2L) }));
    }

    [Test]
    public void The_summary_lists_what_was_allowed_with_its_name_apart_from_what_was_denied_and_ends_with_the_options()
    {
        var tally = new ReportTally();
        tally.Add(At(Lookup("registry.example"), Verdict.Allowed));
        tally.Add(At(Lookup("registry.example", "AAAA"), Verdict.Allowed));
        tally.Add(At(Tcp("10.213.0.2", 443, "registry.example"), Verdict.Allowed));
        tally.Add(At(Lookup("api.example.org"), Verdict.Denied, 43, "python3"));
        tally.Add(At(Tcp("10.213.0.2", 80, "registry.example"), Verdict.Denied));
        tally.Add(At(new Destination("unix", null, null, "/run/dbus/system_bus_socket"), Verdict.Allowed, 45, "busctl"));
        Assert.That(ReportSummary.Lines(tally, allow: Rules("registry.example:443")), Is.EqualTo(new[]
        {
            "report: allowed: 3 attempts went through, to 2 destinations:",
            "  udp    10.0.0.53:53  registry.example A,AAAA  2×  pid 42 curl",
            "  tcp    10.213.0.2:443  registry.example       1×  pid 42 curl",
            "report: denied: 2 attempts to reach outside the namespace, to 2 destinations:",
            "  udp    10.0.0.53:53  api.example.org A        1×  pid 43 python3",
            "  tcp    10.213.0.2:80  registry.example        1×  pid 42 curl",
            "report: 1 connection to path-based Unix sockets (these reach the host's services):",
            "  unix   /run/dbus/system_bus_socket            1×  pid 45 busctl",
            "report: to allow what was denied: --allow api.example.org --allow registry.example:80",
        }));
    }

    [Test]
    public void Under_allow_a_run_that_was_denied_nothing_says_so()
    {
        var tally = new ReportTally();
        tally.Add(At(Tcp("10.213.0.2", 443, "registry.example"), Verdict.Allowed));
        Assert.That(ReportSummary.Lines(tally, allow: Rules("registry.example")), Is.EqualTo(new[]
        {
            "report: allowed: 1 attempt went through, to 1 destination:",
            "  tcp    10.213.0.2:443  registry.example  1×  pid 42 curl",
            "report: denied: none",
        }));
    }

    [Test]
    public void Under_allow_a_run_with_nothing_allowed_has_the_denied_section_only()
    {
        var tally = new ReportTally();
        tally.Add(At(Tcp("192.0.2.1", 443), Verdict.Denied));
        Assert.That(ReportSummary.Lines(tally, allow: Rules("registry.example")), Is.EqualTo(new[]
        {
            "report: denied: 1 attempt to reach outside the namespace, to 1 destination:",
            "  tcp    192.0.2.1:443  1×  pid 42 curl",
            "report: to allow what was denied: --allow 192.0.2.1:443",
        }));
    }

    [Test]
    public void Options_are_by_the_name_looked_up_else_the_address_with_IPv6_in_brackets()
    {
        Assert.That(AllowAdvice.For(Lookup("API.Example.org", "AAAA"))?.ToString(), Is.EqualTo("api.example.org"));
        Assert.That(AllowAdvice.For(Tcp("10.213.0.2", 8081, "www.registry.example"))?.ToString(), Is.EqualTo("www.registry.example:8081"));
        Assert.That(AllowAdvice.For(Tcp("198.51.100.7", 443))?.ToString(), Is.EqualTo("198.51.100.7:443"));
        Assert.That(AllowAdvice.For(Tcp("2001:db8::10", 5432))?.ToString(), Is.EqualTo("[2001:db8::10]:5432"));
        Assert.That(AllowAdvice.For(Tcp("::ffff:198.51.100.7", 443))?.ToString(), Is.EqualTo("198.51.100.7:443"));
        Assert.That(AllowAdvice.ShellWord("[2001:db8::10]:5432"), Is.EqualTo("'[2001:db8::10]:5432'"), "a bracket is a glob to the shell");
    }

    [Test]
    public void UDP_ICMP_Unix_and_unread_destinations_get_no_option_and_one_line_says_why()
    {
        Assert.That(AllowAdvice.For(new Destination("udp", IPAddress.Parse("192.0.2.1"), 9, null)), Is.Null);
        Assert.That(AllowAdvice.For(new Destination("icmp", IPAddress.Parse("192.0.2.1"), null, null)), Is.Null);
        Assert.That(AllowAdvice.For(new Destination("unix", null, null, "/run/x")), Is.Null);
        Assert.That(AllowAdvice.For(Destination.Unread(AttemptRecorder.Unreadable)), Is.Null);
        var lines = AllowAdvice.Lines([
            new Destination("udp", IPAddress.Parse("192.0.2.1"), 9, null),
            new Destination("icmp", IPAddress.Parse("192.0.2.1"), null, null),
            new Destination("udp", IPAddress.Parse("192.0.2.2"), 9, null),
            Destination.Unread(AttemptRecorder.Unreadable),
        ], null);
        Assert.That(lines, Is.EqualTo(new[] { "report: no --allow option lets the denied udp, icmp attempts through (--allow is for TCP)" }));
    }

    [Test]
    public void Options_are_deduplicated_in_the_order_first_seen_and_bounded()
    {
        var lines = AllowAdvice.Lines([Lookup("b.example"), Tcp("192.0.2.1", 80), Lookup("a.example"), Lookup("B.EXAMPLE", "AAAA"), Tcp("192.0.2.1", 80)], null);
        Assert.That(lines, Is.EqualTo(new[] { "report: to allow what was denied: --allow b.example --allow 192.0.2.1:80 --allow a.example" }));

        var many = AllowAdvice.Lines(Enumerable.Range(0, 1000).Select(i => Lookup($"host{i}.example")), null);
        Assert.That(many, Has.Count.EqualTo(1));
        Assert.That(Regex(many[0], "--allow "), Is.EqualTo(AllowAdvice.MaxShown));
        Assert.That(many[0], Does.EndWith($"--allow host{AllowAdvice.MaxShown - 1}.example (and {1000 - AllowAdvice.MaxShown} more)"));
    }

    private static int Regex(string text, string what) => System.Text.RegularExpressions.Regex.Matches(text, what).Count;

    [Test]
    public void A_connection_to_a_nameservers_address_gets_no_option_but_a_line_naming_it()
    {
        var lines = AllowAdvice.Lines([Tcp("10.0.0.53", 8080), Tcp("10.0.0.53", 8080), Tcp("10.0.0.53", 443), Lookup("a.example")], null, [Nameserver]);
        Assert.That(lines, Is.EqualTo(new[]
        {
            "report: to allow what was denied: --allow a.example",
            "report: no --allow option reaches a nameserver's address, where nonet answers DNS inside: 10.0.0.53:8080, 10.0.0.53:443",
        }));
    }

    [Test]
    public void A_rule_the_run_already_has_is_not_suggested_again()
    {
        var lines = AllowAdvice.Lines([Lookup("a.example"), Tcp("192.0.2.1", 80)], Rules("a.example"));
        Assert.That(lines, Is.EqualTo(new[] { "report: to allow what was denied: --allow 192.0.2.1:80" }));
    }

    /// <summary>Names as a command may ask them: escaped bytes, a '*', an
    /// address written as a name, the loopback, too long, a label too long.
    /// None is suggested, and the summary says how many.</summary>
    [TestCase("evil\\027[2J.example")]
    [TestCase("a\\046b.example")]
    [TestCase("*.example.org")]
    [TestCase("a*.example.org")]
    [TestCase("192.0.2.1")]
    [TestCase("localhost")]
    [TestCase("db.localhost")]
    [TestCase("-a.example")]
    [TestCase("a b.example")]
    [TestCase("--allow=x")]
    [TestCase("x;rm -rf ~")]
    [TestCase("é.example")]
    [TestCase(".")]
    [TestCase("")]
    public void A_looked_up_name_that_is_no_host_name_gets_no_option(string name)
    {
        Assert.That(AllowAdvice.For(Lookup(name)), Is.Null);
        var lines = AllowAdvice.Lines([Lookup(name), Lookup("good.example")], null);
        Assert.That(lines, Is.EqualTo(new[]
        {
            "report: to allow what was denied: --allow good.example",
            "report: no --allow option for 1 looked-up name that is not a host name",
        }));
    }

    [Test]
    public void Over_long_names_and_labels_get_no_option()
    {
        Assert.That(AllowAdvice.For(Lookup(new string('a', 64) + ".example")), Is.Null);
        Assert.That(AllowAdvice.For(Lookup(string.Join(".", Enumerable.Repeat(new string('a', 60), 5)))), Is.Null);
    }

    /// <summary>Whatever a summary suggests is an --allow spec that parses
    /// back to itself and lets the denied destination through: the name's
    /// lookup, or the connection to that address and port (by the name's
    /// DNS answer, or by the address rule).</summary>
    [Test]
    public void Every_suggestion_parses_as_an_allow_spec_that_lets_its_destination_through()
    {
        var random = new Random(22);
        int checkedSuggestions = 0;
        string[] labels = ["api", "Registry", "x-1", "a_b", "0", "xn--nxasmq6b", "cdn", "*", "\\000", "-", "127", "localhost", "é"];
        for (int i = 0; i < 2000; i++)
        {
            string name = string.Join(".", Enumerable.Range(0, random.Next(1, 5)).Select(_ => labels[random.Next(labels.Length)]));
            var address = random.Next(3) switch
            {
                0 => new IPAddress(random.NextInt64(0, 1L << 32) is var v ? BitConverter.GetBytes((uint)v) : []),
                1 => IPAddress.Parse($"2001:db8::{random.Next(0, 0xffff):x}"),
                _ => IPAddress.Parse("10.213.0.2"),
            };
            int port = random.Next(1, 65536);
            Destination d = random.Next(3) switch
            {
                0 => Lookup(name),
                1 => new Destination("tcp", address, port, null) { Name = name },
                _ => new Destination("tcp", address, port, null),
            };
            var rule = AllowAdvice.For(d);
            if (rule is null)
                continue;
            checkedSuggestions++;
            string spec = rule.ToString();
            var parsed = AllowSpec.Parse(spec);
            Assert.That(parsed, Is.EqualTo(rule), spec);
            Assert.That(parsed.ToString(), Is.EqualTo(spec));
            var list = new AllowList([parsed]);
            if (d.DnsName is { } looked)
            {
                Assert.That(list.Matches(looked), Is.True, $"{spec} for the lookup of {looked}");
            }
            else
            {
                // A name rule allows the addresses its DNS answer gives:
                // as AllowedAddresses records them for the run.
                var table = new AllowedAddresses(list);
                if (parsed.Kind == AllowKind.Name)
                    table.Record(d.Address!, parsed.Name!, list.RulesFor(parsed.Name!));
                Assert.That(table.IsAllowed(d.Address!, d.Port!.Value), Is.True, $"{spec} for {d.Show()}");
            }
            var line = AllowAdvice.Lines([d], null).Single();
            Assert.That(line, Is.EqualTo("report: to allow what was denied: --allow " + AllowAdvice.ShellWord(spec)));
        }
        Assert.That(checkedSuggestions, Is.GreaterThan(500), "the random destinations gave too few suggestions to check");
    }
}
