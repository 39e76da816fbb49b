using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Sockets;

namespace Nonet.Forwarding;

/// <summary>A malformed --forward or --publish value; the message says what is wrong with it.</summary>
internal sealed class PortSpecException(string message) : Exception(message);

/// <summary>
/// --forward [HOSTADDR:]PORT[:INNERPORT]: inside, 127.0.0.1:InnerPort and
/// [::1]:InnerPort accept connections, each relayed to HostAddress:HostPort
/// in the caller's network namespace.
/// </summary>
internal sealed record ForwardSpec(IPAddress HostAddress, int HostPort, int InnerPort)
{
    public const string Syntax = "[HOSTADDR:]PORT[:INNERPORT]";

    public static ForwardSpec Parse(string text)
    {
        string rest = text.Trim();
        IPAddress address = IPAddress.Loopback;
        bool bracketed = rest.StartsWith('[');
        if (bracketed)
        {
            int close = rest.IndexOf(']');
            if (close < 0)
                throw new PortSpecException("'[' without ']' around the IPv6 address");
            address = ParseAddress(rest[1..close], bracketed: true);
            if (!rest[(close + 1)..].StartsWith(':'))
                throw new PortSpecException($"a port must follow {rest[..(close + 1)]}");
            rest = rest[(close + 2)..];
        }
        string[] parts = rest.Split(':');
        if (!bracketed)
        {
            if (parts.Length > 3 || rest.Contains("::"))
                throw new PortSpecException("IPv6 addresses go in brackets, as in [::1]:5432");
            if (parts.Length == 1 && parts[0].Contains('.'))
                throw new PortSpecException($"a port must follow {parts[0]}");
            if (parts.Length == 3 || (parts.Length == 2 && !IsNumber(parts[0])))
            {
                address = ParseAddress(parts[0], bracketed: false);
                parts = parts[1..];
            }
        }
        if (parts.Length > 2)
            throw new PortSpecException($"expected {Syntax}");
        int hostPort = ParsePort(parts[0], "PORT");
        int innerPort = parts.Length == 2 ? ParsePort(parts[1], "INNERPORT") : hostPort;
        return new ForwardSpec(address, hostPort, innerPort);
    }

    /// <summary>The canonical form, which parses back to the same spec.</summary>
    public override string ToString() => $"{Format(HostAddress)}:{HostPort}:{InnerPort}";

    public string Describe() =>
        $"inside 127.0.0.1:{InnerPort} and [::1]:{InnerPort} -> host {Format(HostAddress)}:{HostPort}";

    public static string Format(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();

    private static IPAddress ParseAddress(string text, bool bracketed)
    {
        if (text.Length == 0)
            throw new PortSpecException("empty HOSTADDR");
        if (!bracketed && text.Contains(':'))
            throw new PortSpecException("IPv6 addresses go in brackets, as in [::1]:5432");
        // IPAddress.Parse also takes "1" or "0x7f.1"; only dotted quads and IPv6 are meant.
        // A leading zero would make IPAddress read the octet as octal (010 is 8).
        bool dottedQuad = text.Split('.') is { Length: 4 } octets
            && octets.All(o => o.Length is > 0 and <= 3 && IsNumber(o) && (o.Length == 1 || o[0] != '0'));
        if (!IPAddress.TryParse(text, out var address)
            || (address.AddressFamily == AddressFamily.InterNetwork && (!dottedQuad || bracketed))
            || (address.AddressFamily == AddressFamily.InterNetworkV6 && (!bracketed || address.ScopeId != 0)))
        {
            throw new PortSpecException(bracketed
                ? $"'{text}' is not an IPv6 address"
                : $"'{text}' is not an IP address (HOSTADDR must be an IPv4 address or an IPv6 address in brackets; host names are not looked up)");
        }
        if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
            throw new PortSpecException($"'{text}' is not an address to connect to");
        return address;
    }

    internal static bool IsNumber(string text) => text.Length > 0 && text.All(char.IsAsciiDigit);

    internal static int ParsePort(string text, string what)
    {
        if (text.Length == 0)
            throw new PortSpecException($"missing {what}");
        if (!IsNumber(text))
            throw new PortSpecException($"{what} '{text}' is not a number");
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
            throw new PortSpecException($"port {text} is out of range (1-65535)");
        return port;
    }
}

/// <summary>
/// --publish [INNERPORT:]PORT: the host's 127.0.0.1:HostPort accepts
/// connections, each relayed to the command's server on InnerPort inside.
/// </summary>
internal sealed record PublishSpec(int InnerPort, int HostPort)
{
    public const string Syntax = "[INNERPORT:]PORT";

    public static PublishSpec Parse(string text)
    {
        string[] parts = text.Trim().Split(':');
        if (parts.Length > 2)
            throw new PortSpecException($"expected {Syntax} (the host side is always 127.0.0.1)");
        int hostPort = ForwardSpec.ParsePort(parts[^1], "PORT");
        int innerPort = parts.Length == 2 ? ForwardSpec.ParsePort(parts[0], "INNERPORT") : hostPort;
        return new PublishSpec(innerPort, hostPort);
    }

    public override string ToString() => $"{InnerPort}:{HostPort}";

    public string Describe() => $"host 127.0.0.1:{HostPort} -> inside 127.0.0.1:{InnerPort} (or [::1]:{InnerPort})";
}

/// <summary>Where a spec came from, for error messages: "--forward", or a
/// configuration file and line, or an environment variable.</summary>
internal sealed record SpecSource(string Description, bool IsOption);

/// <summary>Every forward and publish of one run, checked against each other.</summary>
internal sealed record ForwardingPlan(IReadOnlyList<ForwardSpec> Forwards, IReadOnlyList<PublishSpec> Publishes)
{
    public const int MaxEntries = 100;

    public static readonly ForwardingPlan None = new([], []);

    public bool IsEmpty => Forwards.Count == 0 && Publishes.Count == 0;

    /// <summary>Splits a configured list: specs separated by spaces or commas.</summary>
    public static IEnumerable<string> SplitList(string? value) =>
        (value ?? "").Split([' ', '\t', ','], StringSplitOptions.RemoveEmptyEntries);

    /// <summary>
    /// Parses and checks every spec.  Identical specs are merged; two that
    /// would need the same port (an inner port forwarded twice or both
    /// forwarded and published, a host port published twice) are an error.
    /// Throws <see cref="NonetException"/> with one line naming the source.
    /// </summary>
    public static ForwardingPlan Build(
        IEnumerable<(string Text, SpecSource Source)> forwards,
        IEnumerable<(string Text, SpecSource Source)> publishes)
    {
        var forwardList = new List<(ForwardSpec Spec, SpecSource Source)>();
        foreach (var (text, source) in forwards)
        {
            var spec = ParseOne(text, source, "forward", ForwardSpec.Parse);
            if (forwardList.Any(f => f.Spec == spec))
                continue;
            if (forwardList.FirstOrDefault(f => f.Spec.InnerPort == spec.InnerPort) is { Spec: not null } clash)
                throw Conflict($"inner port {spec.InnerPort} is forwarded twice ({clash.Spec.Describe()}; {spec.Describe()})");
            forwardList.Add((spec, source));
        }
        var publishList = new List<(PublishSpec Spec, SpecSource Source)>();
        foreach (var (text, source) in publishes)
        {
            var spec = ParseOne(text, source, "publish", PublishSpec.Parse);
            if (publishList.Any(p => p.Spec == spec))
                continue;
            if (publishList.FirstOrDefault(p => p.Spec.HostPort == spec.HostPort) is { Spec: not null })
                throw Conflict($"host port {spec.HostPort} is published twice");
            if (forwardList.Any(f => f.Spec.InnerPort == spec.InnerPort))
                throw Conflict($"inner port {spec.InnerPort} is both forwarded and published");
            publishList.Add((spec, source));
        }
        if (forwardList.Count > MaxEntries || publishList.Count > MaxEntries)
            throw Conflict($"at most {MaxEntries} forwards and {MaxEntries} publishes");
        return new ForwardingPlan(forwardList.Select(f => f.Spec).ToList(), publishList.Select(p => p.Spec).ToList());
    }

    private static T ParseOne<T>(string text, SpecSource source, string key, Func<string, T> parse)
    {
        try
        {
            return parse(text);
        }
        catch (PortSpecException e)
        {
            // The spec and the problem quote what the user wrote: escaped, and
            // cut short if long (a spec is a few characters).
            string problem = UserText.Quote(e.Message, 2 * UserText.MaxShown);
            string message = source.IsOption
                ? $"{source.Description} '{UserText.Quote(text)}': {problem}; see 'nonet --help'"
                : $"{source.Description}: {key} '{UserText.Quote(text)}': {problem}";
            throw new NonetException(ExitCodes.NonetFailed, message);
        }
    }

    private static NonetException Conflict(string problem) =>
        new(ExitCodes.NonetFailed, $"port forwarding: {problem}");
}
