using System;
using System.Globalization;
using System.Linq;

namespace Nonet.Dns;

/// <summary>When to say, after a failing command, that nonet answered its
/// name lookups (the 'hint' setting, --hint and --no-hint).</summary>
internal enum HintMode { Auto, On, Off }

/// <summary>
/// The one line nonet prints after the command when the command failed and
/// looked up names that nonet answered "not found": the likeliest reason a
/// build fails offline, said where the user looks.  Pure.
/// </summary>
internal static class LookupHint
{
    private const int NamesShown = 3;
    private const int MaxNameLength = 64;

    public static HintMode ParseMode(string? value, string source) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => HintMode.Auto,
        "on" or "yes" or "true" or "1" => HintMode.On,
        "off" or "no" or "false" or "0" => HintMode.Off,
        _ => throw new NonetException(ExitCodes.NonetFailed,
            $"{source}: hint must be auto, on or off, not '{UserText.Quote(value)}'"),
    };

    /// <summary>Whether to print it: never after success or when no lookup
    /// was answered; by default only when stderr is a terminal.</summary>
    public static bool ShouldShow(HintMode mode, int exitStatus, DnsTally tally, bool stderrIsTerminal) =>
        exitStatus != 0 && tally.Queries > 0 && mode switch
        {
            HintMode.On => true,
            HintMode.Off => false,
            _ => stderrIsTerminal,
        };

    /// <summary>The line, without the "nonet: " prefix; … only in a UTF-8
    /// locale (<paramref name="utf8"/>), else "...".</summary>
    public static string Line(DnsTally tally, bool utf8 = true)
    {
        string names = string.Join(", ", tally.Names.Take(NamesShown).Select(name => UserText.Quote(name, MaxNameLength)));
        if (tally.DistinctNames > NamesShown)
            names += utf8 ? ", …" : ", ...";
        return $"no network inside nonet: answered {Plural(tally.Queries, "lookup")} of "
            + $"{Plural(tally.DistinctNames, "name")} with \"not found\" ({names})";
    }

    private static string Plural(int count, string noun) =>
        count.ToString(CultureInfo.InvariantCulture) + " " + noun + (count == 1 ? "" : "s");
}
