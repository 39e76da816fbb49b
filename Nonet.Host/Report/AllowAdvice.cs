using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using Nonet.Allow;

namespace Nonet.Report;

/// <summary>
/// The end of --report's summary: the --allow options that would let each
/// denied destination through, so that --report is the way to write an
/// allow-list.  By the name the command looked up: a denied lookup gives
/// the name; a denied TCP connection to an address an allowed name gave
/// (on a port its rule did not allow) gives NAME:PORT; any other denied TCP
/// connection its ADDRESS:PORT ([IPV6]:PORT).  Each option is one that
/// <see cref="AllowSpec.Parse"/> takes back as it is, and only what the
/// command looked up or connected to that --allow can carry: a name that
/// is no host name (the command chooses the bytes of what it asks) gets
/// none, nor does anything but TCP, nor an address of the host's
/// nameservers (nonet's own nameserver has it inside, so no rule reaches
/// it).  Deduplicated, in the order first seen, at most
/// <see cref="MaxShown"/>.  Pure.
/// </summary>
internal static class AllowAdvice
{
    public const int MaxShown = 64;

    /// <summary>Destinations at a nameserver's address named, at most.</summary>
    private const int NameserverDestinationsShown = 4;

    /// <summary>The summary's closing lines for the denied destinations
    /// (none when nothing is to be said); <paramref name="allow"/> is the
    /// run's --allow, whose rules are not suggested again;
    /// <paramref name="nameservers"/> the addresses nonet answers DNS on
    /// inside.</summary>
    public static IReadOnlyList<string> Lines(IEnumerable<Destination> denied, AllowList? allow, IReadOnlyCollection<IPAddress>? nameservers = null)
    {
        var specs = new List<string>();
        var seen = new HashSet<string>();
        var untransportable = new List<string>();
        var atNameservers = new List<string>();
        int notHostNames = 0;
        foreach (var d in denied)
        {
            if (d.Note is not null || d.IsUnix || d.Left)
                continue;
            if (d is { DnsName: null, Address: { } address } && nameservers is not null && nameservers.Contains(AddressClass.Normalize(address)))
            {
                string where = d.Show();
                if (!atNameservers.Contains(where))
                    atNameservers.Add(where);
                continue;
            }
            var rule = For(d);
            if (rule is null)
            {
                if (d.DnsName is not null)
                    notHostNames++;
                else if (d.Protocol != "tcp" && !untransportable.Contains(d.Protocol))
                    untransportable.Add(d.Protocol);
                continue;
            }
            if (allow is not null && allow.Rules.Contains(rule))
                continue; // refused for a reason no rule changes (a malformed query, say)
            string spec = rule.ToString();
            if (seen.Add(spec))
                specs.Add(spec);
        }
        var lines = new List<string>();
        if (specs.Count > 0)
        {
            string options = string.Join(" ", specs.Take(MaxShown).Select(s => "--allow " + ShellWord(s)));
            if (specs.Count > MaxShown)
                options += $" (and {specs.Count - MaxShown} more)";
            lines.Add("report: to allow what was denied: " + UserText.Show(options));
        }
        if (notHostNames > 0)
            lines.Add($"report: no --allow option for {ReportSummary.Plural(notHostNames, "looked-up name")} that {(notHostNames == 1 ? "is not a host name" : "are not host names")}");
        if (atNameservers.Count > 0)
        {
            string shown = string.Join(", ", atNameservers.Take(NameserverDestinationsShown))
                + (atNameservers.Count > NameserverDestinationsShown ? $" (and {atNameservers.Count - NameserverDestinationsShown} more)" : "");
            lines.Add($"report: no --allow option reaches a nameserver's address, where nonet answers DNS inside: {shown}");
        }
        if (untransportable.Count > 0)
            lines.Add($"report: no --allow option lets the denied {string.Join(", ", untransportable)} attempts through (--allow is for TCP)");
        return lines;
    }

    /// <summary>The rule that would let <paramref name="destination"/>
    /// through, or null when no --allow rule can.</summary>
    public static AllowRule? For(Destination destination)
    {
        if (destination.Note is not null || destination.IsUnix || destination.Address is null)
            return null;
        if (destination.DnsName is { } looked)
            return NameRule(looked, null);
        if (destination.Protocol != "tcp" || destination.Port is not { } port || AddressClass.IsNeverAllowed(destination.Address))
            return null;
        if (destination.Name is { } name && NameRule(name, port) is { } byName)
            return byName;
        return AddressRule(destination.Address, port);
    }

    private static AllowRule? NameRule(string name, int? port)
    {
        // Parsed from the text alone: a name made of anything but host name
        // labels (escaped as \DDD, a '*', an address written as a name)
        // fails to parse or parses as something else, and gets no option.
        if (name.Length == 0 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_')))
            return null;
        var rule = TryParse(port is { } p ? $"{name}:{p}" : name);
        return rule is { Kind: AllowKind.Name } ? rule : null;
    }

    private static AllowRule? AddressRule(IPAddress address, int port)
    {
        address = AddressClass.WithoutScope(AddressClass.Normalize(address));
        string text = address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]:{port}" : $"{address}:{port}";
        var rule = TryParse(text);
        return rule is not null && new AllowList([rule]).Allows(address, port) ? rule : null;
    }

    private static AllowRule? TryParse(string spec)
    {
        try
        {
            return AllowSpec.Parse(spec);
        }
        catch (AllowSpecException)
        {
            return null;
        }
    }

    /// <summary>The option's value as a shell word: an IPv6 address's
    /// brackets would be a glob, so such a spec is quoted.</summary>
    public static string ShellWord(string spec) => spec.Contains('[') ? $"'{spec}'" : spec;
}
