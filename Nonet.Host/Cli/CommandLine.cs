using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Linq;
using System.Text;

namespace Nonet.Cli;

internal enum Mode { Run, Help, Version, SelfTest, PrintConfig }

/// <summary>What the user asked for: the plan that Program carries out.
/// <see cref="Command"/> holds the command and its arguments as raw bytes
/// (empty: run the shell).</summary>
internal sealed record ParsedCommandLine(
    Mode Mode,
    bool Json,
    string? LauncherOverride,
    IReadOnlyList<byte[]> Command,
    ParseResult? HelpParse)
{
    /// <summary>--forward values, in order.</summary>
    public IReadOnlyList<string> Forwards { get; init; } = [];

    /// <summary>--publish values, in order.</summary>
    public IReadOnlyList<string> Publishes { get; init; } = [];

    /// <summary>--allow values, in order.</summary>
    public IReadOnlyList<string> Allows { get; init; } = [];

    /// <summary>"on" for --report, else null.</summary>
    public string? ReportOverride { get; init; }

    /// <summary>--report-file's value, else null.</summary>
    public string? ReportFileOverride { get; init; }

    /// <summary>"on" for --hint, "off" for --no-hint, else null.</summary>
    public string? HintOverride { get; init; }
}

/// <summary>
/// Splits argv into nonet's options and the command, then parses the options.
/// Pure: no I/O, so unit tests check it directly.
/// </summary>
internal static class CommandLine
{
    /// <summary>
    /// Index of the first word of the command in <paramref name="args"/>
    /// (argv without argv[0]), or args.Count when there is none; and how many
    /// leading words are nonet's.  Options end at the first word that is not
    /// an option, or at "--" (which belongs to nonet).
    /// </summary>
    public static (int OptionCount, int CommandStart) Split(IReadOnlyList<string> args, Func<string, bool> takesValue)
    {
        int i = 0;
        while (i < args.Count)
        {
            string word = args[i];
            if (word == "--")
                return (i, i + 1);
            if (word.Length < 2 || word[0] != '-')
                return (i, i);
            i += takesValue(word) ? 2 : 1;
        }
        return (args.Count, args.Count);
    }

    /// <summary>
    /// Parses argv, building the option definitions only when there are
    /// options to parse.  Most runs are "nonet COMMAND ...": the first word
    /// already ends the options, and System.CommandLine's object graph (about
    /// 0.15 ms of nonet's start-up, see BENCHMARKS.md) is not needed.
    /// </summary>
    public static ParsedCommandLine Parse(IReadOnlyList<byte[]> rawArgs)
    {
        if (rawArgs.Count == 0 || !IsOptionWord(rawArgs[0]))
            return new ParsedCommandLine(Mode.Run, false, null, rawArgs, null);
        if (rawArgs[0] is [(byte)'-', (byte)'-'])
            return new ParsedCommandLine(Mode.Run, false, null, Tail(rawArgs, 1), null);
        return Parse(rawArgs, new NonetCommandDefinition());
    }

    /// <summary>The same rule as <see cref="Split"/>: "-" alone is a command.</summary>
    private static bool IsOptionWord(byte[] word) => word.Length >= 2 && word[0] == (byte)'-';

    private static byte[][] Tail(IReadOnlyList<byte[]> args, int start)
    {
        var tail = new byte[args.Count - start][];
        for (int i = start; i < args.Count; i++)
            tail[i - start] = args[i];
        return tail;
    }

    public static ParsedCommandLine Parse(IReadOnlyList<byte[]> rawArgs, NonetCommandDefinition definition)
    {
        // Options are ASCII; a lossy decode is only used to recognise them.
        var words = rawArgs.Select(a => Encoding.UTF8.GetString(a)).ToList();
        var (optionCount, commandStart) = Split(words, definition.TakesValue);
        var command = rawArgs.Skip(Math.Min(commandStart, rawArgs.Count)).ToList();

        // An option that takes a value but ends the options has none: say so
        // as nonet says everything else (System.CommandLine's own wording
        // is "Required argument missing for option").
        for (int i = 0; i < optionCount; i++)
        {
            string option = words[i].EndsWith('=') ? words[i][..^1] : words[i];
            bool empty = words[i].EndsWith('=') && definition.TakesValue(option); // "--forward="
            if ((definition.TakesValue(words[i]) && i + 1 >= optionCount) || empty)
                throw new NonetException(ExitCodes.NonetFailed, Usage($"{option} needs a value: {definition.ValueName(option)}"));
            if (definition.TakesValue(words[i]))
                i++;
        }

        var configuration = new ParserConfiguration { ResponseFileTokenReplacer = null };
        var result = definition.Root.Parse(LastOfEach(words, optionCount, definition), configuration);
        // Only option words reach the parser, so an unmatched one is an unknown option.
        if (result.UnmatchedTokens.Count > 0)
            throw new NonetException(ExitCodes.NonetFailed, Usage($"unknown option '{UserText.Quote(result.UnmatchedTokens[0])}'"));
        if (result.Errors.Count > 0)
            throw new NonetException(ExitCodes.NonetFailed, Usage(UserText.Quote(result.Errors[0].Message, 2 * UserText.MaxShown)));

        bool help = result.Action is NonetHelpAction or System.CommandLine.Help.HelpAction;
        bool selfTest = result.GetValue(definition.SelfTest);
        bool printConfig = result.GetValue(definition.PrintConfig);
        bool version = result.GetValue(definition.Version);
        bool json = result.GetValue(definition.Json);
        string? launcher = result.GetValue(definition.Launcher);
        var forwards = result.GetValue(definition.Forward) ?? [];
        var publishes = result.GetValue(definition.Publish) ?? [];
        var allows = result.GetValue(definition.Allow) ?? [];
        bool hint = result.GetValue(definition.Hint);
        bool noHint = result.GetValue(definition.NoHint);
        bool report = result.GetValue(definition.Report);
        string? reportFile = result.GetValue(definition.ReportFile);

        if (help)
            return new ParsedCommandLine(Mode.Help, false, launcher, command, result);

        var modes = new List<(bool Set, string Name, Mode Mode)>
        {
            (selfTest, "--self-test", Mode.SelfTest),
            (printConfig, "--print-config", Mode.PrintConfig),
            (version, "--version", Mode.Version),
        }.Where(m => m.Set).ToList();
        if (modes.Count > 1)
            throw new NonetException(ExitCodes.NonetFailed,
                Usage($"{modes[0].Name} and {modes[1].Name} cannot be used together"));
        if (modes.Count == 1 && command.Count > 0)
            throw new NonetException(ExitCodes.NonetFailed,
                Usage($"{modes[0].Name} takes no command (got '{UserText.Quote(rawArgs[commandStart])}')"));
        var mode = modes.Count == 1 ? modes[0].Mode : Mode.Run;
        if (json && mode is not (Mode.SelfTest or Mode.PrintConfig))
            throw new NonetException(ExitCodes.NonetFailed, Usage("--json goes with --self-test or --print-config"));
        if (launcher is { Length: 0 })
            throw new NonetException(ExitCodes.NonetFailed, Usage("--launcher needs a path"));
        if ((forwards.Length > 0 || publishes.Length > 0) && mode is not (Mode.Run or Mode.PrintConfig))
            throw new NonetException(ExitCodes.NonetFailed,
                Usage($"{(forwards.Length > 0 ? "--forward" : "--publish")} goes with a command or --print-config"));
        if (allows.Length > 0 && mode is not (Mode.Run or Mode.PrintConfig))
            throw new NonetException(ExitCodes.NonetFailed, Usage("--allow goes with a command or --print-config"));

        if ((hint || noHint) && mode is not (Mode.Run or Mode.PrintConfig))
            throw new NonetException(ExitCodes.NonetFailed,
                Usage($"{(hint ? "--hint" : "--no-hint")} goes with a command or --print-config"));

        if (reportFile is { Length: 0 })
            throw new NonetException(ExitCodes.NonetFailed, Usage("--report-file needs a path"));
        if ((report || reportFile is not null) && mode is not (Mode.Run or Mode.PrintConfig))
            throw new NonetException(ExitCodes.NonetFailed,
                Usage($"{(report ? "--report" : "--report-file")} goes with a command or --print-config"));

        return new ParsedCommandLine(mode, json, launcher, command, null)
        {
            ReportOverride = report ? "on" : null,
            ReportFileOverride = reportFile,
            Forwards = forwards,
            Publishes = publishes,
            Allows = allows,
            HintOverride = hint ? "on" : noHint ? "off" : null,
        };
    }

    /// <summary>
    /// The option words, where an option that takes one value (or a switch,
    /// or --hint and --no-hint, which set one value) appears only as its
    /// last occurrence: as in GNU tools, the last one wins, so that
    /// "alias nonet='nonet --hint'" can still be given --no-hint.
    /// --forward, --publish and --allow add to a list and are all kept.
    /// </summary>
    internal static List<string> LastOfEach(IReadOnlyList<string> words, int optionCount, NonetCommandDefinition definition)
    {
        var occurrences = new List<(int Start, int Count, string? Setting)>();
        var last = new Dictionary<string, int>();
        for (int i = 0; i < optionCount;)
        {
            string word = words[i];
            int count = definition.TakesValue(word) ? 2 : 1;
            string name = word.StartsWith("--", StringComparison.Ordinal) && word.IndexOf('=') is > 2 and var equals ? word[..equals] : word;
            string? setting = definition.SingleValued(name);
            if (setting is not null)
                last[setting] = occurrences.Count;
            occurrences.Add((i, Math.Min(count, optionCount - i), setting));
            i += count;
        }
        return occurrences
            .Where((o, n) => o.Setting is null || last[o.Setting] == n)
            .SelectMany(o => words.Skip(o.Start).Take(o.Count))
            .ToList();
    }

    private static string Usage(string problem) =>
        $"{problem.TrimEnd('.')}; see 'nonet --help'";
}
