using System.Collections.Generic;
using System.Linq;
using System.Text;
using Nonet.Cli;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

internal sealed class CommandLineTests
{
    private static readonly NonetCommandDefinition Definition = new();

    private static ParsedCommandLine Parse(params string[] args) =>
        CommandLine.Parse(args.Select(Encoding.UTF8.GetBytes).ToList(), Definition);

    private static string[] CommandOf(ParsedCommandLine parsed) =>
        parsed.Command.Select(Encoding.UTF8.GetString).ToArray();

    [TestCase(new string[0], 0, 0)]
    [TestCase(new[] { "ls", "-la" }, 0, 0)]
    [TestCase(new[] { "--self-test" }, 1, 1)]
    [TestCase(new[] { "--", "--test" }, 0, 1)]
    [TestCase(new[] { "--launcher", "/x", "echo", "--help" }, 2, 2)]
    [TestCase(new[] { "--launcher=/x", "echo" }, 1, 1)]
    [TestCase(new[] { "--launcher", "--", "echo" }, 2, 2)]
    [TestCase(new[] { "-", "x" }, 0, 0)]
    [TestCase(new[] { "--bogus", "ls" }, 1, 1)]
    public void Split_ends_options_at_the_first_word_that_is_not_one(string[] args, int optionCount, int commandStart)
    {
        Assert.That(CommandLine.Split(args, Definition.TakesValue), Is.EqualTo((optionCount, commandStart)));
    }

    [TestCase()]
    [TestCase("ls", "-la")]
    [TestCase("--", "--test", "x")]
    [TestCase("--")]
    [TestCase("-", "x")]
    [TestCase("--launcher", "/l", "echo", "--help")]
    [TestCase("--self-test")]
    public void The_fast_path_agrees_with_the_full_parse(params string[] args)
    {
        var raw = args.Select(Encoding.UTF8.GetBytes).ToList();
        var fast = CommandLine.Parse(raw);
        var full = CommandLine.Parse(raw, Definition);
        Assert.That((fast.Mode, fast.Json, fast.LauncherOverride), Is.EqualTo((full.Mode, full.Json, full.LauncherOverride)));
        Assert.That(fast.Command, Is.EqualTo(full.Command));
    }

    [Test]
    public void Words_after_the_command_are_the_commands_even_when_they_look_like_options()
    {
        var parsed = Parse("echo", "--help", "--version", "--", "-x");
        Assert.That(parsed.Mode, Is.EqualTo(Mode.Run));
        Assert.That(CommandOf(parsed), Is.EqualTo(new[] { "echo", "--help", "--version", "--", "-x" }));
    }

    [Test]
    public void Double_dash_belongs_to_nonet()
    {
        Assert.That(CommandOf(Parse("--", "--test", "a")), Is.EqualTo(new[] { "--test", "a" }));
        Assert.That(CommandOf(Parse("--")), Is.Empty);
    }

    [Test]
    public void No_arguments_means_run_the_shell()
    {
        var parsed = Parse();
        Assert.That((parsed.Mode, parsed.Command.Count), Is.EqualTo((Mode.Run, 0)));
    }

    [Test]
    public void The_command_keeps_its_raw_bytes()
    {
        byte[] invalid = [0xff, 0xfe, (byte)'x'];
        var parsed = CommandLine.Parse([Encoding.UTF8.GetBytes("printf"), invalid, []], Definition);
        Assert.That(parsed.Command[1], Is.EqualTo(invalid));
        Assert.That(parsed.Command[2], Is.Empty);
    }

    [TestCase("--self-test", Mode.SelfTest)]
    [TestCase("--print-config", Mode.PrintConfig)]
    [TestCase("--version", Mode.Version)]
    [TestCase("--help", Mode.Help)]
    [TestCase("-h", Mode.Help)]
    public void Each_mode_option_selects_its_mode(string option, Mode mode)
    {
        Assert.That(Parse(option).Mode, Is.EqualTo(mode));
    }

    [Test]
    public void Json_goes_with_self_test_and_print_config()
    {
        Assert.That(Parse("--self-test", "--json").Json, Is.True);
        Assert.That(Parse("--json", "--print-config").Json, Is.True);
    }

    [Test]
    public void Launcher_option_is_carried_as_an_override()
    {
        Assert.That(Parse("--launcher", "/opt/l", "true").LauncherOverride, Is.EqualTo("/opt/l"));
        Assert.That(Parse("--launcher=/opt/l", "true").LauncherOverride, Is.EqualTo("/opt/l"));
    }

    [TestCase(new[] { "--bogus" }, "unknown option '--bogus'; see 'nonet --help'")]
    [TestCase(new[] { "-x", "ls" }, "unknown option '-x'; see 'nonet --help'")]
    [TestCase(new[] { "--json" }, "--json goes with --self-test or --print-config; see 'nonet --help'")]
    [TestCase(new[] { "--json", "ls" }, "--json goes with --self-test or --print-config; see 'nonet --help'")]
    [TestCase(new[] { "--self-test", "ls" }, "--self-test takes no command (got 'ls'); see 'nonet --help'")]
    [TestCase(new[] { "--version", "--self-test" }, "--self-test and --version cannot be used together; see 'nonet --help'")]
    [TestCase(new[] { "--launcher" }, "--launcher needs a value: PATH; see 'nonet --help'")]
    [TestCase(new[] { "--forward" }, "--forward needs a value: [INNERPORT:][HOSTADDR:]PORT; see 'nonet --help'")]
    [TestCase(new[] { "--publish", "80", "--publish" }, "--publish needs a value: [OUTERPORT:]INNERPORT; see 'nonet --help'")]
    [TestCase(new[] { "--forward=", "true" }, "--forward needs a value: [INNERPORT:][HOSTADDR:]PORT; see 'nonet --help'")]
    [TestCase(new[] { "--\u001b[2J" }, "unknown option '--\\x1b[2J'; see 'nonet --help'")]
    [TestCase(new[] { "--launcher", "", "ls" }, "--launcher needs a path; see 'nonet --help'")]
    public void Bad_usage_is_one_line_and_exit_125(string[] args, string message)
    {
        var e = Assert.Throws<NonetException>(() => Parse(args))!;
        Assert.That((e.ExitCode, e.Message), Is.EqualTo((125, message)));
    }

    [Test]
    public void Response_files_are_not_expanded()
    {
        var e = Assert.Throws<NonetException>(() => Parse("--launcher", "/x", "--@file"))!;
        Assert.That(e.Message, Does.StartWith("unknown option '--@file'"));
        Assert.That(CommandOf(Parse("@file")), Is.EqualTo(new[] { "@file" }));
    }

    [Test]
    public void Help_lists_every_option_and_the_exit_statuses()
    {
        var output = new System.IO.StringWriter();
        var parsed = Parse("--help");
        parsed.HelpParse!.Invoke(new System.CommandLine.InvocationConfiguration { Output = output });
        string help = output.ToString();
        Assert.That(help, Does.StartWith("Usage: nonet [OPTIONS] [--] [COMMAND [ARG...]]\n"));
        foreach (var option in Definition.Root.Options)
            Assert.That(help, Does.Contain(option.Name));
        Assert.That(help, Does.Contain("125  nonet itself failed").And.Contain("126  ").And.Contain("127  ").And.Contain("128+N"));
    }
}
