using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Text;
using Nonet.Cli;
using Nonet.Forwarding;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

internal sealed class PortSpecTests
{
    // Listen first, as ssh -L and kubectl port-forward: [INNERPORT:][HOSTADDR:]PORT.
    [TestCase("5432", 5432, "127.0.0.1", 5432)]
    [TestCase("5432:6432", 5432, "127.0.0.1", 6432)]
    [TestCase("80:8080", 80, "127.0.0.1", 8080)]
    [TestCase("10.0.0.5:5432", 5432, "10.0.0.5", 5432)]
    [TestCase("15432:10.0.0.5:5432", 15432, "10.0.0.5", 5432)]
    [TestCase("15432:127.0.0.1:5432", 15432, "127.0.0.1", 5432)]
    [TestCase("[::1]:6379", 6379, "::1", 6379)]
    [TestCase("6380:[::1]:6379", 6380, "::1", 6379)]
    [TestCase("8443:[2001:db8::7]:443", 8443, "2001:db8::7", 443)]
    [TestCase(" 1 ", 1, "127.0.0.1", 1)]
    [TestCase("65535", 65535, "127.0.0.1", 65535)]
    public void Forward_specs_parse(string text, int innerPort, string address, int hostPort)
    {
        var spec = ForwardSpec.Parse(text);
        Assert.That(spec, Is.EqualTo(new ForwardSpec(innerPort, IPAddress.Parse(address), hostPort)));
        Assert.That(ForwardSpec.Parse(spec.ToString()), Is.EqualTo(spec), "the canonical form parses back");
    }

    [TestCase("5432:6432", "15432:127.0.0.1:5432", "6380:[::1]:6379")]
    public void The_canonical_form_puts_the_inner_port_first(params string[] texts)
    {
        Assert.That(texts.Select(t => ForwardSpec.Parse(t).ToString()),
            Is.EqualTo(new[] { "5432:127.0.0.1:6432", "15432:127.0.0.1:5432", "6380:[::1]:6379" }));
    }

    [TestCase("", "missing PORT")]
    [TestCase("0", "port 0 is out of range (1-65535)")]
    [TestCase("70000", "port 70000 is out of range (1-65535)")]
    [TestCase("99999999999999", "port 99999999999999 is out of range (1-65535)")]
    [TestCase("http", "PORT 'http' is not a number")]
    [TestCase("db.example:5432", "'db.example' is not an IP address")]
    [TestCase("localhost:5432", "host names are not looked up")]
    [TestCase("15432:localhost:5432", "host names are not looked up")]
    [TestCase("localhost:5432:15432", "host names are not looked up")]
    [TestCase("::1:5432", "IPv6 addresses go in brackets")]
    [TestCase("::1", "IPv6 addresses go in brackets")]
    [TestCase("[::1]", "a port must follow [::1]")]
    [TestCase("6380:[::1]", "a port must follow [::1]")]
    [TestCase("[::1:5432", "'[' without ']'")]
    [TestCase("x[::1]:5432", "IPv6 addresses go in brackets")]
    [TestCase("\u001b[2J", "PORT '\u001b[2J' is not a number")]
    [TestCase("1:2:[::1]:5", "IPv6 addresses go in brackets")]
    [TestCase("abc:[::1]:5432", "INNERPORT 'abc' is not a number")]
    [TestCase("1:[::1]:2:3", "expected [INNERPORT:][HOSTADDR:]PORT")]
    [TestCase("[127.0.0.1]:80", "is not an IPv6 address")]
    [TestCase("[fe80::1%2]:80", "is not an IPv6 address")]
    [TestCase("10.0.0.5", "a port must follow 10.0.0.5")]
    [TestCase("5432:10.0.0.5", "a port must follow 10.0.0.5")]
    [TestCase("5432:", "missing PORT")]
    [TestCase(":5432", "empty HOSTADDR")]
    [TestCase("1:2:3:4", "IPv6 addresses go in brackets")]
    [TestCase("1:2:3", "'2' is not an IP address")]
    [TestCase("0x7f.1:80", "is not an IP address")]
    [TestCase("010.0.0.5:5432", "'010.0.0.5' is not an IP address")]
    [TestCase("127.0.0.01:80", "is not an IP address")]
    [TestCase("0.0.0.0:80", "is not an address to connect to")]
    [TestCase("[::]:80", "is not an address to connect to")]
    [TestCase("-5", "PORT '-5' is not a number")]
    [TestCase("+5", "PORT '+5' is not a number")]
    [TestCase("abc:80", "'abc' is not an IP address")]
    [TestCase("80:abc", "PORT 'abc' is not a number")]
    [TestCase("99999:80", "port 99999 is out of range (1-65535)")]
    public void Bad_forward_specs_say_what_is_wrong(string text, string problem)
    {
        var e = Assert.Throws<PortSpecException>(() => ForwardSpec.Parse(text))!;
        Assert.That(e.Message, Does.Contain(problem));
    }

    // 0.2.0 read HOSTADDR:PORT:INNERPORT; where the old order is plain from
    // the spec (an address first, two ports after it), the error says how to
    // write it now.
    [TestCase("127.0.0.1:5432:15432", "write 15432:127.0.0.1:5432")]
    [TestCase("10.0.0.5:5432:15432", "write 15432:10.0.0.5:5432")]
    [TestCase("[::1]:6379:6380", "write 6380:[::1]:6379")]
    public void A_spec_in_the_old_order_says_how_to_write_it_now(string text, string advice)
    {
        var e = Assert.Throws<PortSpecException>(() => ForwardSpec.Parse(text))!;
        Assert.That(e.Message, Is.EqualTo("the inner port comes first, as in ssh -L ([INNERPORT:][HOSTADDR:]PORT): " + advice));
        Assert.That(ForwardSpec.Parse(advice["write ".Length..]).ToString(), Is.EqualTo(advice["write ".Length..]), "the advice parses");
    }

    // Listen first, as docker run -p: [OUTERPORT:]INNERPORT.
    [TestCase("8080", 8080, 8080)]
    [TestCase("18000:8000", 18000, 8000)]
    public void Publish_specs_parse(string text, int hostPort, int innerPort)
    {
        var spec = PublishSpec.Parse(text);
        Assert.That(spec, Is.EqualTo(new PublishSpec(hostPort, innerPort)));
        Assert.That(spec.ToString(), Is.EqualTo($"{hostPort}:{innerPort}"));
        Assert.That(PublishSpec.Parse(spec.ToString()), Is.EqualTo(spec));
    }

    [TestCase("", "missing INNERPORT")]
    [TestCase("0", "out of range")]
    [TestCase("1:2:3", "outside, it is always 127.0.0.1 and ::1")]
    [TestCase("127.0.0.1:8080", "OUTERPORT '127.0.0.1' is not a number")]
    [TestCase("x", "INNERPORT 'x' is not a number")]
    [TestCase("8080:", "missing INNERPORT")]
    [TestCase(":8080", "missing OUTERPORT")]
    public void Bad_publish_specs_say_what_is_wrong(string text, string problem)
    {
        var e = Assert.Throws<PortSpecException>(() => PublishSpec.Parse(text))!;
        Assert.That(e.Message, Does.Contain(problem));
    }

    private static readonly SpecSource Option = new("--forward", IsOption: true);
    private static readonly SpecSource File = new("/home/u/.config/nonet/config:3", IsOption: false);

    private static ForwardingPlan Build(IEnumerable<string> forwards, IEnumerable<string>? publishes = null) =>
        ForwardingPlan.Build(forwards.Select(f => (f, Option)), (publishes ?? []).Select(p => (p, new SpecSource("--publish", true))));

    [Test]
    public void A_plan_keeps_order_and_merges_identical_specs()
    {
        var plan = Build(["5432", "5432:127.0.0.1:5432", "5432:5432", "[::1]:6379"], ["8080", "8080:8080"]);
        Assert.That(plan.Forwards.Select(f => f.ToString()), Is.EqualTo(new[] { "5432:127.0.0.1:5432", "6379:[::1]:6379" }));
        Assert.That(plan.Publishes.Select(p => p.ToString()), Is.EqualTo(new[] { "8080:8080" }));
    }

    [TestCase(new[] { "5432", "5432:6000" }, new string[0], "inner port 5432 is forwarded twice")]
    [TestCase(new string[0], new[] { "8080:80", "8080:81" }, "host port 8080 is published twice")]
    [TestCase(new[] { "5432" }, new[] { "15432:5432" }, "inner port 5432 is both forwarded and published")]
    public void Clashing_specs_are_refused(string[] forwards, string[] publishes, string problem)
    {
        var e = Assert.Throws<NonetException>(() => Build(forwards, publishes))!;
        Assert.That(e.ExitCode, Is.EqualTo(ExitCodes.NonetFailed));
        Assert.That(e.Message, Does.StartWith("port forwarding: " + problem));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void More_than_a_hundred_forwards_are_refused()
    {
        var e = Assert.Throws<NonetException>(() => Build(Enumerable.Range(1000, 101).Select(p => p.ToString())))!;
        Assert.That(e.Message, Does.Contain("at most 100"));
        Assert.That(Build(Enumerable.Range(1000, 100).Select(p => p.ToString())).Forwards, Has.Count.EqualTo(100));
    }

    [Test]
    public void An_option_error_names_the_option_and_points_to_help()
    {
        var e = Assert.Throws<NonetException>(() => Build(["70000"]))!;
        Assert.That(e.Message, Is.EqualTo("--forward '70000': port 70000 is out of range (1-65535); see 'nonet --help'"));
    }

    [Test]
    public void A_configuration_error_names_the_file_and_line()
    {
        var e = Assert.Throws<NonetException>(() => ForwardingPlan.Build([("x", File)], []))!;
        Assert.That(e.Message, Is.EqualTo("/home/u/.config/nonet/config:3: forward 'x': PORT 'x' is not a number"));
    }

    [TestCase("5432 6379", new[] { "5432", "6379" })]
    [TestCase("5432,[::1]:6379 , 80:8080", new[] { "5432", "[::1]:6379", "80:8080" })]
    [TestCase("", new string[0])]
    [TestCase(null, new string[0])]
    public void Configured_lists_split_on_spaces_and_commas(string? value, string[] specs)
    {
        Assert.That(ForwardingPlan.SplitList(value), Is.EqualTo(specs));
    }

    private static readonly NonetCommandDefinition Definition = new();

    private static ParsedCommandLine Parse(params string[] args) =>
        CommandLine.Parse(args.Select(Encoding.UTF8.GetBytes).ToList(), Definition);

    [Test]
    public void Forward_and_publish_repeat_and_stop_at_the_command()
    {
        var parsed = Parse("--forward", "5432", "--publish", "8080", "--forward=[::1]:6379", "nc", "--forward", "1");
        Assert.That(parsed.Forwards, Is.EqualTo(new[] { "5432", "[::1]:6379" }));
        Assert.That(parsed.Publishes, Is.EqualTo(new[] { "8080" }));
        Assert.That(parsed.Command.Select(Encoding.UTF8.GetString), Is.EqualTo(new[] { "nc", "--forward", "1" }));
    }

    [TestCase("--self-test")]
    [TestCase("--version")]
    public void Forward_does_not_go_with_other_modes(string mode)
    {
        var e = Assert.Throws<NonetException>(() => Parse("--forward", "1", mode))!;
        Assert.That(e.Message, Is.EqualTo("--forward goes with a command or --print-config; see 'nonet --help'"));
    }

    [Test]
    public void Forward_needs_a_value()
    {
        var e = Assert.Throws<NonetException>(() => Parse("--forward"))!;
        Assert.That(e.ExitCode, Is.EqualTo(ExitCodes.NonetFailed));
        Assert.That(e.Message, Does.EndWith("see 'nonet --help'"));
    }
}
