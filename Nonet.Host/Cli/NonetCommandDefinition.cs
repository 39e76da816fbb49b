using System;
using System.Collections.Generic;
using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Linq;

namespace Nonet.Cli;

/// <summary>
/// nonet's options and help text, and nothing that runs them (see
/// <see cref="CommandLine"/> for the parse, Program for what follows).
/// The man page and the shell completions list the same options.
/// </summary>
internal sealed class NonetCommandDefinition
{
    public const string Synopsis = "nonet [OPTIONS] [--] [COMMAND [ARG...]]";

    public const string Epilogue = """

        With no COMMAND, nonet runs $SHELL (else the 'shell' setting, else /bin/sh).
        Options end at the first word that is not an option, or at '--'; every
        word after that goes to COMMAND unchanged.  --forward, --publish and
        --allow may be repeated, and add to the 'forward', 'publish' and 'allow'
        settings; of any other option given more than once, the last one wins.
        --allow needs Linux 5.9; IPv6 addresses go in brackets.

        Exit status:
          the command's own status, or 128+N if a signal N killed it;
          125  nonet itself failed (bad option or configuration, missing launcher,
               user or network namespace refused, a process or file limit reached,
               output not written); the command did not run
          126  the command exists but cannot be executed
          127  the command, or the interpreter its #! line names, was not found
          --self-test: 0 when every required check passes, 1 otherwise.

        Configuration: /etc/nonet/config, then
        ${XDG_CONFIG_HOME:-~/.config}/nonet/config (skipped when another user's
        directory keeps it out of reach), then NONET_* environment variables,
        then options; see nonet(1).
        nonet is a convenience and testing tool, not a security boundary.

        """;

    public RootCommand Root { get; }
    public Option<bool> SelfTest { get; } = new("--self-test")
    {
        Description = "Check on this host that nonet works, end to end, and explain any failure",
    };
    public Option<bool> Json { get; } = new("--json")
    {
        Description = "With --self-test or --print-config: print one JSON document",
    };
    public Option<bool> PrintConfig { get; } = new("--print-config")
    {
        Description = "Show each setting's effective value and where it came from",
    };
    public Option<string> Launcher { get; } = new("--launcher")
    {
        Description = "Use this nonet-launcher (overrides the 'launcher' setting)",
        HelpName = "PATH",
    };
    public Option<string[]> Forward { get; } = new("--forward")
    {
        Description = "Inside, port INNERPORT (default PORT) leads to HOSTADDR:PORT (default 127.0.0.1) outside",
        HelpName = "[INNERPORT:][HOSTADDR:]PORT",
        AllowMultipleArgumentsPerToken = false,
    };
    public Option<string[]> Publish { get; } = new("--publish")
    {
        Description = "Outside, port OUTERPORT (default INNERPORT) leads to the command's port INNERPORT inside",
        HelpName = "[OUTERPORT:]INNERPORT",
        AllowMultipleArgumentsPerToken = false,
    };
    public Option<string[]> Allow { get; } = new("--allow")
    {
        Description = "Let the command reach this host, domain, address or network (TCP), and look up allowed names",
        HelpName = "NAME|*.NAME|ADDR|CIDR[:PORT]",
        AllowMultipleArgumentsPerToken = false,
    };
    public Option<bool> Hint { get; } = new("--hint")
    {
        Description = "After a failing command, say which name lookups nonet answered (by default only when stderr is a terminal)",
    };
    public Option<bool> NoHint { get; } = new("--no-hint")
    {
        Description = "Never say after a failing command which name lookups nonet answered",
    };
    public Option<bool> Report { get; } = new("--report")
    {
        Description = "When the command ends, list every attempt it (or any process it started) made to reach outside",
    };
    public Option<string> ReportFile { get; } = new("--report-file")
    {
        Description = "Write each attempt to FILE as it happens, one JSON object per line (mode 0600)",
        HelpName = "FILE",
    };
    public Option<bool> Version { get; } = new("--version")
    {
        Description = "Show the versions of nonet and its launcher",
    };

    public NonetCommandDefinition()
    {
        Root = new RootCommand("Run COMMAND with no network but a working loopback, as you (same UID and GID).");
        // The built-in --version prints only the assembly's version; ours adds the launcher's.
        Root.Options.Remove(Root.Options.OfType<VersionOption>().Single());
        Root.Options.Add(SelfTest);
        Root.Options.Add(Json);
        Root.Options.Add(PrintConfig);
        Root.Options.Add(Forward);
        Root.Options.Add(Publish);
        Root.Options.Add(Allow);
        Root.Options.Add(Launcher);
        Root.Options.Add(Report);
        Root.Options.Add(ReportFile);
        Root.Options.Add(Hint);
        Root.Options.Add(NoHint);
        Root.Options.Add(Version);
        Root.TreatUnmatchedTokensAsErrors = true;

        // The built-in help also answers "/?" and "/h", which are commands here.
        Root.Options.Remove(Root.Options.OfType<HelpOption>().Single());
        Root.Options.Add(new HelpOption("--help", "-h") { Description = "Show this help", Action = new NonetHelpAction() });
    }

    /// <summary>What the value of an option that takes one looks like (its
    /// help name, e.g. PATH).</summary>
    public string ValueName(string word) => Find(word)?.HelpName ?? "a value";

    /// <summary>For an option of which the last one given wins, the setting
    /// it decides (--no-hint decides --hint's); null for the lists
    /// (--forward, --publish, --allow), which may be repeated, and for
    /// words that are no option.</summary>
    public string? SingleValued(string word)
    {
        var option = Find(word);
        if (option is null || option.ValueType == typeof(string[]))
            return null; // a list (--forward, --publish, --allow): every one counts
        return option == NoHint ? Hint.Name : option.Name;
    }

    /// <summary>True for an option word that takes the next word as its value.</summary>
    public bool TakesValue(string word) =>
        Find(word) is { } option && option.ValueType != typeof(bool) && option is not HelpOption;

    /// <summary>The option that <paramref name="word"/> names, by its name or an alias.</summary>
    private Option? Find(string word) => Root.Options.FirstOrDefault(o => o.Name == word || o.Aliases.Contains(word));
}

/// <summary>--help, written from the option definitions: System.CommandLine's
/// own layout has no place for "[--] [COMMAND [ARG...]]" or exit statuses.
/// Every line fits in <see cref="Width"/> columns (env's help is 76, timeout's
/// 78): descriptions wrap between words, and an option whose names and value
/// are long has its description on the lines below.</summary>
internal sealed class NonetHelpAction : SynchronousCommandLineAction
{
    public const int Width = 80;

    /// <summary>Where descriptions start.</summary>
    private const int DescriptionColumn = 24;

    public override int Invoke(ParseResult parseResult)
    {
        var command = parseResult.RootCommandResult.Command;
        var output = parseResult.InvocationConfiguration.Output;
        var text = new System.Text.StringBuilder();
        text.Append($"Usage: {NonetCommandDefinition.Synopsis}\n\n");
        foreach (var line in Wrap(command.Description ?? "", Width))
            text.Append(line).Append('\n');
        text.Append("\nOptions:\n");
        foreach (var option in command.Options.Where(o => !o.Hidden))
        {
            string names = "  " + string.Join(", ", option.Aliases.Order().Append(option.Name)) + (option.HelpName is { } value ? $" {value}" : "");
            var lines = Wrap(option.Description ?? "", Width - DescriptionColumn);
            bool below = names.Length + 2 > DescriptionColumn;
            text.Append(below ? names + "\n" : names.PadRight(DescriptionColumn));
            for (int i = 0; i < lines.Count; i++)
                text.Append(i == 0 && !below ? "" : new string(' ', DescriptionColumn)).Append(lines[i]).Append('\n');
        }
        text.Append(NonetCommandDefinition.Epilogue.ReplaceLineEndings("\n"));
        output.Write(text.ToString());
        return 0;
    }

    /// <summary>Words into lines of at most <paramref name="width"/>
    /// columns; a word longer than that has a line of its own.</summary>
    internal static List<string> Wrap(string text, int width)
    {
        var lines = new List<string>();
        var line = new System.Text.StringBuilder();
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > width)
            {
                lines.Add(line.ToString());
                line.Clear();
            }
            if (line.Length > 0)
                line.Append(' ');
            line.Append(word);
        }
        if (line.Length > 0)
            lines.Add(line.ToString());
        return lines;
    }
}
