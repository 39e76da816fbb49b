using System.Linq;
using System.Text;
using Nonet.Cli;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

/// <summary>What users of GNU tools expect of options: the last of a
/// single-valued option wins, repeatable ones add up, and --help fits in 80
/// columns.</summary>
internal sealed class OptionConventionTests
{
    private static readonly NonetCommandDefinition Definition = new();

    private static ParsedCommandLine Parse(params string[] args) =>
        CommandLine.Parse(args.Select(Encoding.UTF8.GetBytes).ToList(), Definition);

    [TestCase(new[] { "--hint", "--no-hint", "true" }, "off")]
    [TestCase(new[] { "--no-hint", "--hint", "true" }, "on")]
    [TestCase(new[] { "--hint", "--no-hint", "--hint", "--print-config" }, "on")]
    [TestCase(new[] { "--hint", "--hint", "true" }, "on")]
    public void The_last_of_hint_and_no_hint_wins(string[] args, string hint)
    {
        Assert.That(Parse(args).HintOverride, Is.EqualTo(hint));
    }

    [TestCase(new[] { "--launcher", "/a", "--launcher", "/b", "true" }, "/b")]
    [TestCase(new[] { "--launcher=/a", "--launcher", "/b", "true" }, "/b")]
    [TestCase(new[] { "--launcher", "/a", "--launcher=/b", "true" }, "/b")]
    [TestCase(new[] { "--launcher", "/a", "--hint", "--launcher", "/c", "--no-hint", "true" }, "/c")]
    public void The_last_launcher_wins(string[] args, string launcher)
    {
        Assert.That(Parse(args).LauncherOverride, Is.EqualTo(launcher));
    }

    [Test]
    public void The_last_report_file_wins_and_repeated_switches_are_one()
    {
        var parsed = Parse("--report-file", "a.jsonl", "--report", "--report", "--report-file", "b.jsonl", "true");
        Assert.That((parsed.ReportFileOverride, parsed.ReportOverride), Is.EqualTo(("b.jsonl", "on")));
        Assert.That(Parse("--print-config", "--json", "--json", "--print-config").Mode, Is.EqualTo(Mode.PrintConfig));
        Assert.That(Parse("--self-test", "--self-test").Mode, Is.EqualTo(Mode.SelfTest));
        Assert.That(Parse("--version", "--version").Mode, Is.EqualTo(Mode.Version));
    }

    [Test]
    public void Forward_and_publish_are_lists_that_keep_every_value()
    {
        var parsed = Parse("--forward", "1", "--publish", "2", "--forward=3", "--publish", "4", "--forward", "1", "true");
        Assert.That(parsed.Forwards, Is.EqualTo(new[] { "1", "3", "1" }));
        Assert.That(parsed.Publishes, Is.EqualTo(new[] { "2", "4" }));
    }

    [Test]
    public void Two_different_modes_are_still_an_error_and_a_missing_value_still_is_one()
    {
        var e = Assert.Throws<NonetException>(() => Parse("--self-test", "--version", "--self-test"))!;
        Assert.That(e.Message, Is.EqualTo("--self-test and --version cannot be used together; see 'nonet --help'"));
        e = Assert.Throws<NonetException>(() => Parse("--launcher", "/a", "--launcher"))!;
        Assert.That(e.Message, Is.EqualTo("--launcher needs a value: PATH; see 'nonet --help'"));
        Assert.That(Parse("--launcher", "", "--launcher", "/b", "true").LauncherOverride, Is.EqualTo("/b"), "an empty value that a later one replaces");
    }

    private static string Help()
    {
        var output = new System.IO.StringWriter();
        Parse("--help").HelpParse!.Invoke(new System.CommandLine.InvocationConfiguration { Output = output });
        return output.ToString();
    }

    [Test]
    public void Help_fits_in_80_columns()
    {
        var lines = Help().Split('\n');
        Assert.That(lines.Where(l => l.Length > 80), Is.Empty);
        Assert.That(lines, Has.Length.GreaterThan(30));
    }

    [Test]
    public void Help_wraps_descriptions_between_words_and_each_line_says_what_its_option_does()
    {
        string help = Help();
        var lines = help.Split('\n');
        string indent = new(' ', 24);
        foreach (var option in Definition.Root.Options)
        {
            // The option's lines: its names, then those indented to the
            // descriptions; their words, joined, are its description.
            int first = System.Array.FindIndex(lines, l => l.StartsWith("  " + option.Name + " ", System.StringComparison.Ordinal)
                || l.TrimEnd() == "  " + option.Name || l.Contains(", " + option.Name, System.StringComparison.Ordinal));
            Assert.That(first, Is.GreaterThan(0), option.Name);
            var block = lines.Skip(first + 1).TakeWhile(l => l.StartsWith(indent, System.StringComparison.Ordinal)).Prepend(lines[first]);
            string words = string.Join(' ', block.SelectMany(l => l.Split(' ', System.StringSplitOptions.RemoveEmptyEntries)));
            Assert.That(words, Does.EndWith(option.Description!), option.Name);
        }
        Assert.That(Definition.NoHint.Description, Does.Contain("name lookups"), "--no-hint says what it stops, without --hint's line");
    }
}
