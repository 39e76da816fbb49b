using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace Nonet.Report;

/// <summary>
/// The attempts grouped by destination (protocol, address and port or path,
/// the name looked up: its A and AAAA queries are one destination, with
/// both types) and verdict, each with its count and the processes that
/// made it, in the order first seen.  Bounded: past <see cref="MaxGroups"/> destinations,
/// further ones are only counted.
/// </summary>
internal sealed class ReportTally
{
    public const int MaxGroups = 10000;
    public const int MaxProcessesPerGroup = 16;

    internal sealed class Group(Destination destination, Allow.Verdict? verdict)
    {
        public Destination Destination { get; } = destination;
        public Allow.Verdict? Verdict { get; } = verdict;
        public bool Allowed => Verdict == Allow.Verdict.Allowed;
        public List<string> DnsTypes { get; } = [];
        public long Count { get; set; }
        public List<(int Pid, string Command)> Processes { get; } = [];
        public int MoreProcesses { get; set; }
    }

    private readonly Dictionary<(Destination, Allow.Verdict?), Group> groups = [];
    private readonly List<Group> order = [];

    public long Attempts { get; private set; }

    /// <summary>Attempts to destinations beyond <see cref="MaxGroups"/>.</summary>
    public long Ungrouped { get; private set; }

    public IReadOnlyList<Group> Groups => order;

    public void Add(Attempt attempt)
    {
        Attempts++;
        var key = (attempt.Destination with { DnsType = null }, attempt.Verdict);
        if (!groups.TryGetValue(key, out var group))
        {
            if (groups.Count >= MaxGroups)
            {
                Ungrouped++;
                return;
            }
            group = new Group(key.Item1, key.Verdict);
            groups.Add(key, group);
            order.Add(group);
        }
        group.Count++;
        if (attempt.Destination.DnsType is { } type && !group.DnsTypes.Contains(type) && group.DnsTypes.Count < MaxProcessesPerGroup)
            group.DnsTypes.Add(type);
        if (!group.Processes.Contains((attempt.Pid, attempt.Command)))
        {
            if (group.Processes.Count < MaxProcessesPerGroup)
                group.Processes.Add((attempt.Pid, attempt.Command));
            else
                group.MoreProcesses++;
        }
    }
}

/// <summary>
/// The summary --report prints on stderr when the command has ended: one
/// line "none", or a header, then one line per destination, the Unix sockets
/// in a section of their own.  What went through (under --allow, what it
/// allowed) and what was denied are separate sections once anything went
/// through; the summary ends with the --allow options that would let the
/// denied destinations through (<see cref="AllowAdvice"/>).  What the
/// command chose (its processes' names, socket paths, the names it looked
/// up) is shown as nonet shows user text (<see cref="UserText.Show(string)"/>):
/// no byte of it can start a line or drive the terminal.  Pure.
/// </summary>
internal static class ReportSummary
{
    private const int ProcessesShown = 3;

    /// <summary>The lines, without the "nonet: " prefix; × only in a UTF-8
    /// locale (<paramref name="utf8"/>), else x.  <paramref name="allow"/>
    /// is the run's --allow, or null without one; <paramref name="nameservers"/>
    /// the addresses nonet answers DNS on inside, which no --allow reaches.</summary>
    public static IReadOnlyList<string> Lines(ReportTally tally, bool utf8 = true, Allow.AllowList? allow = null,
        IReadOnlyCollection<System.Net.IPAddress>? nameservers = null)
    {
        string times = utf8 ? "×" : "x";
        if (tally.Attempts == 0)
            return ["report: none (no attempt to reach outside the namespace)"];
        var lines = new List<string>();
        var network = tally.Groups.Where(g => !g.Destination.IsUnix).ToList();
        var allowed = network.Where(g => g.Allowed).ToList();
        var denied = network.Where(g => !g.Allowed).ToList();
        var unix = tally.Groups.Where(g => g.Destination.IsUnix).ToList();
        long networkCount = network.Sum(g => g.Count);
        long unixCount = unix.Sum(g => g.Count);
        var rows = allowed.Concat(denied).Concat(unix).Select(g => (Group: g, Where: Where(g), Count: g.Count.ToString(CultureInfo.InvariantCulture))).ToList();
        int whereWidth = rows.Count == 0 ? 0 : rows.Max(r => r.Where.Length);
        int countWidth = rows.Count == 0 ? 0 : rows.Max(r => r.Count.Length);
        var rowOf = rows.ToDictionary(r => r.Group);
        string Row(ReportTally.Group group)
        {
            var r = rowOf[group];
            return $"  {group.Destination.Protocol,-6} {r.Where.PadRight(whereWidth)}  {r.Count.PadLeft(countWidth)}{times}  {Processes(group)}";
        }

        if (allow is null && allowed.Count == 0)
        {
            // Without --allow nothing goes through: one section, as it always was.
            if (network.Count > 0 || unix.Count == 0)
            {
                lines.Add(networkCount == 0
                    ? "report: no attempt to reach outside the namespace"
                    : $"report: {Plural(networkCount, "attempt")} to reach outside the namespace, to {Plural(network.Count, "destination")}:");
                lines.AddRange(network.Select(Row));
            }
        }
        else if (network.Count > 0 || unix.Count == 0)
        {
            if (allowed.Count > 0)
            {
                lines.Add($"report: allowed: {Plural(allowed.Sum(g => g.Count), "attempt")} went through, to {Plural(allowed.Count, "destination")}:");
                lines.AddRange(allowed.Select(Row));
            }
            lines.Add(denied.Count == 0
                ? "report: denied: none"
                : $"report: denied: {Plural(denied.Sum(g => g.Count), "attempt")} to reach outside the namespace, to {Plural(denied.Count, "destination")}:");
            lines.AddRange(denied.Select(Row));
        }
        if (unix.Count > 0)
        {
            lines.Add($"report: {Plural(unixCount, "connection")} to path-based Unix sockets (these reach the host's services):");
            lines.AddRange(unix.Select(Row));
        }
        if (tally.Ungrouped > 0)
            lines.Add($"report: and {Plural(tally.Ungrouped, "attempt")} to further destinations (see --report-file)");
        lines.AddRange(AllowAdvice.Lines(denied.Select(g => g.Destination), allow, nameservers));
        return lines;
    }

    private static string Where(ReportTally.Group group)
    {
        var d = group.Destination;
        string where = UserText.Show(d.Show());
        if (d.DnsName is { } name)
            where += $"  {UserText.Show(name)} {string.Join(",", group.DnsTypes)}";
        else if (d.Name is { } lookedUp)
            where += $"  {UserText.Show(lookedUp)}";
        if (d.Left)
            where += d.Address is { } a && System.Net.IPAddress.IsLoopback(a) ? "  (left: the host's loopback)" : "  (left: a socket made outside)";
        return where;
    }

    private static string Processes(ReportTally.Group group)
    {
        var shown = group.Processes.Take(ProcessesShown)
            .Select(p => p.Pid > 0 ? $"pid {p.Pid} {UserText.Show(p.Command)}" : UserText.Show(p.Command));
        int more = group.Processes.Count - ProcessesShown + group.MoreProcesses;
        return string.Join(", ", shown) + (more > 0 ? $" (+{more} more)" : "");
    }

    internal static string Plural(long n, string word) =>
        n.ToString(CultureInfo.InvariantCulture) + " " + (n == 1 ? word : word + "s");
}
