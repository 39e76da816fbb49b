using System.Collections.Generic;
using System.Net;

namespace Nonet.Allow;

/// <summary>
/// The per-run table of addresses that DNS gave for allowed names (and the
/// host's /etc/hosts, read at the start): address to the name it was
/// looked up by and the rules that allowed that name.  Entries stay for the
/// whole run (clients cache answers past their TTL).  The connect side
/// asks <see cref="IsAllowed"/>; the report asks <see cref="NameFor"/>.
/// Single-threaded: the event loop's.
/// </summary>
internal sealed class AllowedAddresses(AllowList list)
{
    /// <summary>Addresses kept at most; a run that looks up more allowed
    /// addresses than this gets no new ones (its connects to them fail, as
    /// to any other address), rather than nonet growing without bound.</summary>
    public const int MaxEntries = 65536;

    private readonly Dictionary<IPAddress, Entry> entries = [];

    public AllowList List { get; } = list;

    public int Count => entries.Count;

    /// <summary>Whether the table had no room for an address.</summary>
    public bool Full { get; private set; }

    /// <summary>Whether a TCP connection to
    /// <paramref name="address"/>:<paramref name="port"/> is allowed, by an
    /// address rule or by a name rule whose DNS answer gave the address.</summary>
    public bool IsAllowed(IPAddress address, int port)
    {
        address = AddressClass.WithoutScope(AddressClass.Normalize(address));
        return List.Allows(address, port, entries.TryGetValue(address, out var entry) ? entry.Rules : null);
    }

    /// <summary>The name this address was looked up by (the first one), or
    /// null when no DNS answer gave it.</summary>
    public string? NameFor(IPAddress address) =>
        entries.TryGetValue(AddressClass.WithoutScope(AddressClass.Normalize(address)), out var entry) ? entry.Name : null;

    /// <summary>Records that <paramref name="name"/>, allowed by
    /// <paramref name="rules"/>, resolved to <paramref name="address"/>.
    /// False when the table is full.</summary>
    public bool Record(IPAddress address, string name, IReadOnlyList<AllowRule> rules)
    {
        address = AddressClass.WithoutScope(AddressClass.Normalize(address));
        if (entries.TryGetValue(address, out var entry))
        {
            foreach (var rule in rules)
            {
                if (!entry.Rules.Contains(rule))
                    entry.Rules.Add(rule);
            }
            return true;
        }
        if (entries.Count >= MaxEntries)
        {
            Full = true;
            return false;
        }
        entries[address] = new Entry(name, [.. rules]);
        return true;
    }

    /// <summary>An allowed name's /etc/hosts entries, as if DNS had given
    /// them (and dropped the same ones).</summary>
    public void RecordHostsFile(string? hosts, IReadOnlySet<IPAddress> hostAddresses)
    {
        foreach (var (address, name) in Dns.HostsFile.Entries(hosts))
        {
            var rules = List.RulesFor(name);
            if (rules.Count > 0 && !AddressClass.IsRebinding(address, hostAddresses))
                Record(address, name, rules);
        }
    }

    private sealed record Entry(string Name, List<AllowRule> Rules);
}
