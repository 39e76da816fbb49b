using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// --report under --allow, against the test's own <see cref="Outside"/>
/// (its stub nameserver and listeners): every attempt carries its verdict,
/// an allowed connection is listed with the name it was reached by, and
/// the summary ends with the --allow options that let the denied
/// destinations through, which, given back to nonet, do: --report is the
/// way to write an allow-list.
/// </summary>
public sealed class ReportAllowTests(Identity identity) : EndToEndTest(identity)
{
    private Outside outside = null!;

    [OneTimeSetUp]
    public void MakeOutside()
    {
        if (!Harness.IsRoot)
            return; // each test that needs it is ignored, with the reason
        // The names point at the far side's IPv6 address: its IPv4 one is
        // the stub nameserver's, which is nonet's own nameserver inside.
        outside = Outside.Create(8080, 8081, 8082);
        string v6 = outside.V6.ToString();
        outside.SetZone(new JsonObject
        {
            ["registry.example"] = Outside.Entry(aaaa: [v6]),
            ["api.example.org"] = Outside.Entry(aaaa: [v6]),
            ["service.example"] = Outside.Entry(aaaa: [v6]),
        });
    }

    [OneTimeTearDown]
    public void RemoveOutside() => outside?.Dispose();

    private Outside Out => outside ?? Outside.Create(); // Create ignores the test for an ordinary caller

    /// <summary>Python that reaches each "HOST PORT" in turn and prints
    /// what the listener says, stopping at the first failure as a real
    /// client would.</summary>
    private const string Client = """
        import socket, sys
        for target in sys.argv[1:]:
            host, port = target.rsplit(" ", 1)
            try:
                s = socket.create_connection((host, int(port)), timeout=5)
            except OSError as e:
                print("failed", target, e)
                sys.exit(1)
            print(s.makefile().readline().strip())
            s.close()
        """;

    private static List<JsonElement> JsonLines(string file) =>
        File.ReadAllLines(file).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    private static string? Text(JsonElement e, string property) =>
        e.TryGetProperty(property, out var v) ? v.ValueKind == JsonValueKind.Number ? v.GetInt32().ToString() : v.GetString() : null;

    private static string Key(JsonElement e) => e.TryGetProperty("dns", out var dns)
        ? $"{Text(e, "protocol")} dns {dns.GetProperty("name").GetString()} {dns.GetProperty("type").GetString()}"
        : $"{Text(e, "protocol")} {Text(e, "address")}:{Text(e, "port")} name={Text(e, "name")}";

    [Test]
    public void Allowed_and_denied_connects_and_lookups_carry_their_verdict_and_the_allowed_connection_its_name()
    {
        string v4 = Out.V4.ToString(), v6 = Out.V6.ToString();
        string file = Path.Combine(Harness.TempDirectory(Who), $"verdicts-{Guid.NewGuid():N}.jsonl");
        // In order: a literal address before any name gave it; by an
        // allowed name and port; by that name on another port; a name not
        // allowed; the nameserver's address (nonet's inside); lookups over TCP.
        var r = Out.Run(Who, ["--allow", "registry.example:8080", "--report", "--report-file", file, "sh", "-c",
            """
            "$0" -c "$1" "$2 8081"
            "$0" -c "$1" "registry.example 8080"
            "$0" -c "$1" "registry.example 8081"
            "$0" -c "$1" "api.example.org 8080"
            "$0" -c "$1" "$3 8080"
            dig +tcp +tries=1 +time=5 registry.example AAAA | grep -c 'status: NOERROR'
            dig +tcp +tries=1 +time=5 api.example.org AAAA | grep -c 'status: NXDOMAIN'
            """, Python, Client, v6, v4], timeout: TimeSpan.FromSeconds(45));
        Assert.That(r.Stdout, Is.EqualTo(
            $"failed {v6} 8081 [Errno 101] Network is unreachable\n"
            + $"outside {v6} 8080\n"
            + "failed registry.example 8081 [Errno 101] Network is unreachable\n"
            + "failed api.example.org 8080 [Errno -2] Name or service not known\n"
            + $"failed {v4} 8080 [Errno 111] Connection refused\n1\n1\n"), r.ToString());

        var lines = JsonLines(file);
        var verdicts = lines.GroupBy(Key).ToDictionary(g => g.Key, g => g.Select(e => Text(e, "verdict")).Distinct().ToList());
        string all = File.ReadAllText(file) + r;
        Assert.That(lines.All(e => Text(e, "verdict") is "allowed" or "denied"), Is.True, all);
        Assert.That(verdicts[$"tcp {v6}:8081 name="], Is.EqualTo(new[] { "denied" }), all);
        Assert.That(verdicts[$"tcp {v6}:8080 name=registry.example"], Is.EqualTo(new[] { "allowed" }), all);
        Assert.That(verdicts[$"tcp {v6}:8081 name=registry.example"], Is.EqualTo(new[] { "denied" }), all);
        Assert.That(verdicts[$"tcp {v4}:8080 name="], Is.EqualTo(new[] { "denied" }), all);
        Assert.That(verdicts.Where(v => v.Key.Contains(" dns registry.example ")).SelectMany(v => v.Value).Distinct(), Is.EqualTo(new[] { "allowed" }), all);
        Assert.That(verdicts.Where(v => v.Key.Contains(" dns api.example.org ")).SelectMany(v => v.Value).Distinct(), Is.EqualTo(new[] { "denied" }), all);
        // A lookup nonet forwarded is in the report however it came: dig +tcp's too.
        Assert.That(verdicts.Keys, Does.Contain("tcp dns registry.example AAAA").And.Contain("tcp dns api.example.org AAAA"), all);
        Assert.That(verdicts["tcp dns registry.example AAAA"], Is.EqualTo(new[] { "allowed" }), all);
        Assert.That(verdicts["tcp dns api.example.org AAAA"], Is.EqualTo(new[] { "denied" }), all);

        var summary = r.Stderr.Split('\n').Where(l => l.StartsWith("nonet: ", StringComparison.Ordinal)).ToList();
        int allowedAt = summary.FindIndex(l => l.StartsWith("nonet: report: allowed: ", StringComparison.Ordinal));
        int deniedAt = summary.FindIndex(l => l.StartsWith("nonet: report: denied: ", StringComparison.Ordinal));
        Assert.That(allowedAt, Is.GreaterThanOrEqualTo(0), r.ToString());
        Assert.That(deniedAt, Is.GreaterThan(allowedAt), r.ToString());
        var allowedRows = summary.Skip(allowedAt + 1).Take(deniedAt - allowedAt - 1).ToList();
        var deniedRows = summary.Skip(deniedAt + 1).TakeWhile(l => l.StartsWith("nonet:   ", StringComparison.Ordinal)).ToList();
        Assert.That(allowedRows, Has.Some.Match($@"^nonet:   tcp +\[{Regex.Escape(v6)}\]:8080 +registry\.example +1[×x]  pid \d+ python3$"), r.ToString());
        Assert.That(allowedRows, Has.Some.Match(@"^nonet:   (udp|tcp) +\S+:53 +registry\.example (A,)?AAAA"), r.ToString());
        Assert.That(allowedRows, Has.None.Contain("api.example.org").And.None.Contain(":8081"), r.ToString());
        Assert.That(deniedRows, Has.Some.Match($@"^nonet:   tcp +\[{Regex.Escape(v6)}\]:8081 +1[×x]"), r.ToString());
        Assert.That(deniedRows, Has.Some.Match($@"^nonet:   tcp +\[{Regex.Escape(v6)}\]:8081 +registry\.example "), r.ToString());
        Assert.That(deniedRows, Has.Some.Contain("api.example.org"), r.ToString());
        Assert.That(summary[^2..], Is.EqualTo(new[]
        {
            $"nonet: report: to allow what was denied: --allow '[{v6}]:8081' --allow registry.example:8081 --allow api.example.org",
            $"nonet: report: no --allow option reaches a nameserver's address, where nonet answers DNS inside: {v4}:8080",
        }), r.ToString());
    }

    /// <summary>The point of it all: run the command under --report,
    /// add the options its summary ends with, run it again, until it
    /// succeeds.  By address (IPv6, literal, before any lookup), by name
    /// and port (a port the rule did not allow): each round's options are
    /// exactly what was denied, and the last run is denied nothing.</summary>
    [Test]
    public void The_options_the_report_suggests_given_back_let_the_same_command_through()
    {
        string v6 = Out.V6.ToString();
        var options = new List<string> { "--allow", "service.example:8080" };
        var suggested = new List<string>();
        RunResult r = null!;
        for (int round = 0; round < 4; round++)
        {
            r = Out.Run(Who, [.. options, "--report", Python, "-c", Client, $"{v6} 8082", "service.example 8080", "service.example 8081"],
                timeout: TimeSpan.FromSeconds(30));
            var advice = r.Stderr.Split('\n').Where(l => l.StartsWith("nonet: report: to allow what was denied: ", StringComparison.Ordinal)).ToList();
            if (r.ExitCode == 0)
            {
                Assert.That(advice, Is.Empty, r.ToString());
                break;
            }
            Assert.That(advice, Has.Count.EqualTo(1), r.ToString());
            // As a shell would read the line: words, single quotes removed.
            var words = Regex.Matches(advice[0]["nonet: report: to allow what was denied: ".Length..], @"'([^']*)'|(\S+)")
                .Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value).ToList();
            Assert.That(words.Where((w, i) => i % 2 == 0), Is.All.EqualTo("--allow"), r.ToString());
            suggested.AddRange(words.Where((w, i) => i % 2 == 1));
            options.AddRange(words);
        }
        Assert.That(r.ExitCode, Is.Zero, $"still failing with {string.Join(' ', options)}\n{r}");
        Assert.That(r.Stdout, Is.EqualTo($"outside {v6} 8082\noutside {v6} 8080\noutside {v6} 8081\n"), r.ToString());
        Assert.That(suggested, Is.EqualTo(new[] { $"[{v6}]:8082", "service.example:8081" }), r.ToString());
        Assert.That(r.Stderr, Does.Contain("nonet: report: denied: none\n"), r.ToString());
    }

    [Test]
    public void A_name_denied_without_allow_is_suggested_and_that_option_lets_the_command_through()
    {
        var first = Out.Run(Who, ["--report", Python, "-c", Client, "service.example 8080"], timeout: TimeSpan.FromSeconds(30));
        Assert.That(first.ExitCode, Is.EqualTo(1), first.ToString());
        Assert.That(first.Stderr, Does.EndWith("nonet: report: to allow what was denied: --allow service.example\n"), first.ToString());
        var second = Out.Run(Who, ["--allow", "service.example", "--report", Python, "-c", Client, "service.example 8080"], timeout: TimeSpan.FromSeconds(30));
        Assert.That(second.ExitCode, Is.Zero, second.ToString());
        Assert.That(second.Stdout, Is.EqualTo($"outside {Out.V6} 8080\n"), second.ToString());
        Assert.That(second.Stderr, Does.EndWith("nonet: report: denied: none\n"), second.ToString());
    }

    /// <summary>A name the command chose to look up, made to attack the
    /// terminal or the shell the suggestion is pasted into: shown escaped
    /// in the summary, never suggested.</summary>
    [Test]
    public void A_hostile_name_is_shown_escaped_and_never_suggested()
    {
        var r = Out.Run(Who, ["--allow", "registry.example", "--report", "sh", "-c",
            """for name in 'x\027[2J.example' 'a\059touch\032p.example' '*.example.org' 'good.example'; do dig +tries=1 +time=5 "$name" A >/dev/null; done"""],
            timeout: TimeSpan.FromSeconds(30));
        Assert.That(r.Stderr, Does.Not.Contain("\x1b"), r.ToString());
        var advice = r.Stderr.Split('\n').Where(l => l.Contains("to allow what was denied")).ToList();
        Assert.That(advice, Is.EqualTo(new[] { "nonet: report: to allow what was denied: --allow good.example" }), r.ToString());
        Assert.That(r.Stderr, Does.Contain("nonet: report: no --allow option for 3 looked-up names that are not host names\n"), r.ToString());
    }
}
