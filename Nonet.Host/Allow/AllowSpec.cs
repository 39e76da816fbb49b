using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using Nonet.Forwarding;

namespace Nonet.Allow;

/// <summary>A malformed --allow value; the message says what is wrong with it.</summary>
internal sealed class AllowSpecException(string message) : Exception(message);

internal enum AllowKind
{
    /// <summary>Exactly this DNS name.</summary>
    Name,

    /// <summary>Every name below this one (*.example.org), not the name itself.</summary>
    Wildcard,

    /// <summary>An IPv4 or IPv6 network (one address is a /32 or /128).</summary>
    Network,
}

/// <summary>
/// One --allow rule: a DNS name, a wildcard over the names below one, or an
/// address or network; with a port, or null for every port.  Names are
/// kept in lower case without a final dot; a network's address has no host
/// bits set.
/// </summary>
internal sealed record AllowRule(AllowKind Kind, string? Name, IPAddress? Network, int PrefixLength, int? Port)
{
    /// <summary>The canonical form, which parses back to the same rule.</summary>
    public override string ToString()
    {
        string host = Kind switch
        {
            AllowKind.Name => Name!,
            AllowKind.Wildcard => "*." + Name,
            _ when Network!.AddressFamily == AddressFamily.InterNetworkV6 =>
                PrefixLength == 128 ? $"[{Network}]" : $"[{Network}/{PrefixLength}]",
            _ => PrefixLength == 32 ? Network!.ToString() : $"{Network}/{PrefixLength}",
        };
        return Port is { } port ? $"{host}:{port}" : host;
    }

    public bool AllowsPort(int port) => Port is null || Port == port;

    /// <summary>For a name rule: whether <paramref name="name"/> (lower
    /// case, no final dot) is the name, or a name below it for a wildcard.</summary>
    public bool MatchesName(string name) => Kind switch
    {
        AllowKind.Name => name == Name,
        AllowKind.Wildcard => name.Length > Name!.Length + 1 && name.EndsWith(Name, StringComparison.Ordinal)
            && name[name.Length - Name.Length - 1] == '.',
        _ => false,
    };

    /// <summary>For a network rule: whether it holds <paramref name="address"/>.</summary>
    public bool Contains(IPAddress address)
    {
        if (Kind != AllowKind.Network || address.AddressFamily != Network!.AddressFamily)
            return false;
        Span<byte> a = stackalloc byte[16];
        Span<byte> n = stackalloc byte[16];
        address.TryWriteBytes(a, out int length);
        Network.TryWriteBytes(n, out _);
        int bits = PrefixLength;
        for (int i = 0; i < length && bits > 0; i++, bits -= 8)
        {
            byte mask = bits >= 8 ? (byte)0xff : (byte)(0xff << (8 - bits));
            if ((a[i] & mask) != n[i])
                return false;
        }
        return true;
    }
}

/// <summary>
/// --allow SPEC: NAME, *.NAME, IPV4, [IPV6], IPV4/N or [IPV6/N], each with
/// an optional :PORT.  Pure: the text in, the rule out, or an
/// <see cref="AllowSpecException"/> that says what is wrong.
/// </summary>
internal static class AllowSpec
{
    public const string Syntax = "NAME, *.NAME, IPV4, [IPV6] or a CIDR, with an optional :PORT";

    private const string ForwardAdvice = "the host's own loopback services are reached with --forward PORT, not --allow";

    public static AllowRule Parse(string text)
    {
        if (text.Any(c => char.IsControl(c)))
            throw new AllowSpecException("control characters are not allowed");
        string spec = text.Trim();
        if (spec.Length == 0)
            throw new AllowSpecException($"empty spec; expected {Syntax}");

        string host;
        int? port = null;
        bool bracketed = spec.StartsWith('[');
        if (bracketed)
        {
            int close = spec.IndexOf(']');
            if (close < 0)
                throw new AllowSpecException("'[' without ']' around the IPv6 address");
            host = spec[1..close];
            string rest = spec[(close + 1)..];
            if (rest.StartsWith('/'))
            {
                // [2001:db8::]/32 as well as [2001:db8::/32]
                int colon = rest.IndexOf(':');
                host += colon < 0 ? rest : rest[..colon];
                rest = colon < 0 ? "" : rest[colon..];
            }
            if (rest.Length > 0)
            {
                if (!rest.StartsWith(':'))
                    throw new AllowSpecException($"expected ':PORT' after {spec[..(close + 1)]}");
                port = ParsePort(rest[1..]);
            }
            return NetworkRule(host, port, bracketed: true);
        }

        int first = spec.IndexOf(':');
        if (first >= 0 && spec.IndexOf(':', first + 1) >= 0)
            throw new AllowSpecException("IPv6 addresses go in brackets, as in [2001:db8::1]:443");
        if (first >= 0)
        {
            if (first == 0)
                throw new AllowSpecException($"missing a name or an address before '{spec}'");
            port = ParsePort(spec[(first + 1)..]);
            host = spec[..first];
        }
        else
        {
            host = spec;
        }
        if (host.Contains('/') || IsIPv4Like(host))
            return NetworkRule(host, port, bracketed: false);
        return NameRule(host, port);
    }

    private static int ParsePort(string text)
    {
        if (text.Length == 0)
            throw new AllowSpecException("missing PORT after ':'");
        try
        {
            return ForwardSpec.ParsePort(text, "PORT");
        }
        catch (PortSpecException e)
        {
            throw new AllowSpecException(e.Message);
        }
    }

    /// <summary>What its writer meant as an IPv4 address: a last label of
    /// digits (no top-level domain is numeric) or a hex number (0x7f.1).</summary>
    private static bool IsIPv4Like(string host)
    {
        string last = host.TrimEnd('.');
        last = last[(last.LastIndexOf('.') + 1)..];
        return (last.Length > 0 && last.All(char.IsAsciiDigit))
            || (last.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && host.Split('.').All(l => l.Length > 0 && (l.All(char.IsAsciiDigit) || l.StartsWith("0x", StringComparison.OrdinalIgnoreCase))));
    }

    private static AllowRule NetworkRule(string text, int? port, bool bracketed)
    {
        string addressText = text;
        int? prefix = null;
        int slash = text.IndexOf('/');
        if (slash >= 0)
        {
            addressText = text[..slash];
            string bits = text[(slash + 1)..];
            if (!ForwardSpec.IsNumber(bits) || bits.Length > 3)
                throw new AllowSpecException($"prefix length '/{bits}' is not a number");
            prefix = int.Parse(bits, NumberStyles.None, CultureInfo.InvariantCulture);
        }
        var address = ParseAddress(addressText, bracketed);
        int max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (prefix > max)
            throw new AllowSpecException($"prefix length /{prefix} is out of range for {(max == 32 ? "IPv4 (0-32)" : "IPv6 (0-128)")}");
        int length = prefix ?? max;
        var rule = new AllowRule(AllowKind.Network, null, Masked(address, length), length, port);
        if (!rule.Network!.Equals(address))
            throw new AllowSpecException($"'{text}' has host bits set: the network is {rule.Network}/{length}");
        if (length == max)
        {
            if (IPAddress.IsLoopback(address))
                throw new AllowSpecException($"{address} is the loopback: {ForwardAdvice}");
            if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
                throw new AllowSpecException($"{address} is not an address to connect to");
            if (AddressClass.IsMulticastOrBroadcast(address))
                throw new AllowSpecException($"{address} is a multicast or broadcast address: TCP cannot connect to it");
        }
        return rule;
    }

    private static IPAddress ParseAddress(string text, bool bracketed)
    {
        if (text.Length == 0)
            throw new AllowSpecException(bracketed ? "empty IPv6 address in brackets" : "missing an address");
        if (text.Contains('%'))
            throw new AllowSpecException($"'{text}': an IPv6 zone (%...) is not allowed");
        // IPAddress.Parse also takes "127.1" or "0x7f.1"; only dotted quads
        // and IPv6 are meant, and a leading zero would read as octal.
        bool dottedQuad = text.Split('.') is { Length: 4 } octets
            && octets.All(o => o.Length is > 0 and <= 3 && ForwardSpec.IsNumber(o) && (o.Length == 1 || o[0] != '0'));
        if (!IPAddress.TryParse(text, out var address)
            || (address.AddressFamily == AddressFamily.InterNetwork && (!dottedQuad || bracketed))
            || (address.AddressFamily == AddressFamily.InterNetworkV6 && !bracketed))
        {
            throw new AllowSpecException(bracketed
                ? $"'{text}' is not an IPv6 address"
                : $"'{text}' is not an IPv4 address (write four decimal numbers, as in 192.0.2.1; IPv6 goes in brackets)");
        }
        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }

    private static IPAddress Masked(IPAddress address, int prefix)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int length);
        bytes = bytes[..length];
        for (int i = 0; i < length; i++)
        {
            int keep = Math.Clamp(prefix - 8 * i, 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }
        return new IPAddress(bytes);
    }

    /// <summary>The longest name DNS can carry, in text without the final dot.</summary>
    public const int MaxNameLength = 253;

    private static AllowRule NameRule(string text, int? port)
    {
        string name = text.EndsWith('.') && text.Length > 1 ? text[..^1] : text;
        bool wildcard = false;
        if (name == "*")
            throw new AllowSpecException("'*' alone would allow every name: name the hosts, or use *.NAME for the names below one");
        if (name.StartsWith("*.", StringComparison.Ordinal))
        {
            wildcard = true;
            name = name[2..];
        }
        if (name.Contains('*'))
            throw new AllowSpecException("'*' only goes as a whole first label, as in *.example.org");
        if (name.Any(c => c > 0x7f))
            throw new AllowSpecException("a name must be ASCII: write an internationalised name in its xn-- form (punycode), as DNS carries it");
        if (name.Length == 0 || name.Split('.').Any(label => label.Length == 0))
            throw new AllowSpecException("empty label in the name");
        if (name.Length + (wildcard ? 2 : 0) > MaxNameLength)
            throw new AllowSpecException($"the name is {name.Length + (wildcard ? 2 : 0)} characters long; DNS names have at most {MaxNameLength}");
        string[] labels = name.Split('.');
        foreach (string label in labels)
        {
            if (label.Length > 63)
                throw new AllowSpecException($"a label of {label.Length} characters; DNS labels have at most 63");
            if (!label.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
                throw new AllowSpecException($"'{label}' is not a host name label (letters, digits, '-' and '_')");
            if (label.StartsWith('-') || label.EndsWith('-'))
                throw new AllowSpecException($"'{label}': a label cannot start or end with '-'");
        }
        name = name.ToLowerInvariant();
        if (name == "localhost" || name.EndsWith(".localhost", StringComparison.Ordinal))
            throw new AllowSpecException($"'{(wildcard ? "*." : "")}{name}' is the loopback: {ForwardAdvice}");
        if (wildcard && labels.Length < 2)
            throw new AllowSpecException($"'*.{name}' would allow every name of a top-level domain: name a domain below it");
        return new AllowRule(wildcard ? AllowKind.Wildcard : AllowKind.Name, name, null, 0, port);
    }
}

/// <summary>Where a spec came from, for error messages: "--allow", or a
/// configuration file and line, or an environment variable.</summary>
internal sealed record AllowSource(string Description, bool IsOption);

/// <summary>
/// Every --allow rule of one run: what names nonet's DNS forwards, and
/// which connections the command may make.  Immutable; the addresses that
/// DNS answers for allowed names are in <see cref="AllowedAddresses"/>.
/// </summary>
internal sealed class AllowList
{
    /// <summary>More rules than anyone writes by hand; each name lookup and
    /// each connect looks at them all.</summary>
    public const int MaxRules = 1000;

    public static readonly AllowList None = new([]);

    public IReadOnlyList<AllowRule> Rules { get; }

    public AllowList(IReadOnlyList<AllowRule> rules) => Rules = rules;

    public bool IsEmpty => Rules.Count == 0;

    /// <summary>Whether DNS answers for <paramref name="name"/> (as a query
    /// carries it, any case, a final dot or none) are forwarded.</summary>
    public bool Matches(string name) => RulesFor(name).Count > 0;

    /// <summary>The name and wildcard rules that allow
    /// <paramref name="name"/>, in the order given.</summary>
    public IReadOnlyList<AllowRule> RulesFor(string name)
    {
        string key = name.TrimEnd('.').ToLowerInvariant();
        List<AllowRule>? found = null;
        foreach (var rule in Rules)
        {
            if (rule.MatchesName(key))
                (found ??= []).Add(rule);
        }
        return found ?? (IReadOnlyList<AllowRule>)[];
    }

    /// <summary>
    /// Whether a TCP connection to <paramref name="address"/>:<paramref name="port"/>
    /// is allowed: an address rule holds the address and allows the port,
    /// or one of <paramref name="viaRulesFromDns"/> (the name rules whose
    /// DNS answers gave this address) allows the port.  Never the
    /// loopback, an unspecified, multicast or broadcast address, whatever
    /// the rules say.
    /// </summary>
    public bool Allows(IPAddress address, int port, IReadOnlyList<AllowRule>? viaRulesFromDns = null)
    {
        address = AddressClass.Normalize(address);
        if (AddressClass.IsNeverAllowed(address))
            return false;
        foreach (var rule in Rules)
        {
            if (rule.Kind == AllowKind.Network && rule.AllowsPort(port) && rule.Contains(address))
                return true;
        }
        if (viaRulesFromDns is not null)
        {
            foreach (var rule in viaRulesFromDns)
            {
                if (rule.AllowsPort(port))
                    return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Parses every spec; identical rules count once.  Throws
    /// <see cref="NonetException"/> (status 125) with one line naming the
    /// spec and where it came from.
    /// </summary>
    public static AllowList Build(IEnumerable<(string Text, AllowSource Source)> specs)
    {
        var rules = new List<AllowRule>();
        var seen = new HashSet<AllowRule>();
        foreach (var (text, source) in specs)
        {
            AllowRule rule;
            try
            {
                rule = AllowSpec.Parse(text);
            }
            catch (AllowSpecException e)
            {
                string problem = UserText.Quote(e.Message, 2 * UserText.MaxShown);
                throw new NonetException(ExitCodes.NonetFailed, source.IsOption
                    ? $"{source.Description} '{UserText.Quote(text)}': {problem}; see 'nonet --help'"
                    : $"{source.Description}: allow '{UserText.Quote(text)}': {problem}");
            }
            if (!seen.Add(rule))
                continue;
            if (rules.Count == MaxRules)
                throw new NonetException(ExitCodes.NonetFailed, $"--allow: at most {MaxRules} rules (use a wildcard or a CIDR for many)");
            rules.Add(rule);
        }
        return new AllowList(rules);
    }
}
