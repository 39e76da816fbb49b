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
/// --forward [INNERPORT:][HOSTADDR:]PORT, as ssh -L: inside,
/// 127.0.0.1:InnerPort and [::1]:InnerPort accept connections, each relayed
/// to HostAddress:HostPort in the caller's network namespace.  The port that
/// listens comes first, as in ssh, kubectl, Docker and podman.
/// </summary>
internal sealed record ForwardSpec(int InnerPort, IPAddress HostAddress, int HostPort)
{
    public const string Syntax = "[INNERPORT:][HOSTADDR:]PORT";

    public static ForwardSpec Parse(string text)
    {
        string rest = text.Trim();
        // An IPv6 HOSTADDR in brackets comes first or after INNERPORT.
        int open = rest.IndexOf('[');
        if (open == 0 || (open > 0 && rest[open - 1] == ':' && rest.IndexOf(':') == open - 1))
            return ParseBracketed(rest, open);
        string[] parts = rest.Split(':');
        if (parts.Length > 3 || rest.Contains("::"))
            throw new PortSpecException("IPv6 addresses go in brackets, as in [::1]:5432");
        // Two parts are INNERPORT:PORT when the first is a number, else
        // HOSTADDR:PORT; three are always INNERPORT:HOSTADDR:PORT.
        if (parts.Length == 3 && !IsNumber(parts[0]) && parts[0].Length > 0)
        {
            ParseAddress(parts[0], bracketed: false);
            if (IsNumber(parts[1]) && IsNumber(parts[2]))
                throw OldOrder($"{parts[2]}:{parts[0]}:{parts[1]}");
        }
        int innerPort = -1;
        IPAddress address = IPAddress.Loopback;
        if (parts.Length == 3 || (parts.Length == 2 && IsNumber(parts[0])))
        {
            innerPort = ParsePort(parts[0], "INNERPORT");
            parts = parts[1..];
        }
        if (parts.Length == 2)
            address = ParseAddress(parts[0], bracketed: false);
        if (parts[^1].Contains('.'))
            throw new PortSpecException($"a port must follow {parts[^1]}");
        int hostPort = ParsePort(parts[^1], "PORT");
        return new ForwardSpec(innerPort < 0 ? hostPort : innerPort, address, hostPort);
    }

    /// <summary>[INNERPORT:][IPV6]:PORT, the '[' at <paramref name="open"/>.</summary>
    private static ForwardSpec ParseBracketed(string text, int open)
    {
        int close = text.IndexOf(']', open);
        if (close < 0)
            throw new PortSpecException("'[' without ']' around the IPv6 address");
        string before = text[..open];
        int innerPort = before.Length > 0 ? ParsePort(before[..^1], "INNERPORT") : -1;
        var address = ParseAddress(text[(open + 1)..close], bracketed: true);
        string after = text[(close + 1)..];
        if (!after.StartsWith(':'))
            throw new PortSpecException($"a port must follow {text[open..(close + 1)]}");
        string[] ports = after[1..].Split(':');
        if (ports.Length == 2 && before.Length == 0 && IsNumber(ports[0]) && IsNumber(ports[1]))
            throw OldOrder($"{ports[1]}:{text[open..(close + 1)]}:{ports[0]}");
        if (ports.Length != 1)
            throw new PortSpecException($"expected {Syntax}");
        int hostPort = ParsePort(ports[0], "PORT");
        return new ForwardSpec(innerPort < 0 ? hostPort : innerPort, address, hostPort);
    }

    /// <summary>0.2.0 took HOSTADDR:PORT:INNERPORT; such a spec says how it
    /// reads now.</summary>
    private static PortSpecException OldOrder(string now) =>
        new($"the inner port comes first, as in ssh -L ({Syntax}): write {now}");

    /// <summary>The canonical form, which parses back to the same spec.</summary>
    public override string ToString() => $"{InnerPort}:{Format(HostAddress)}:{HostPort}";

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
/// --publish [OUTERPORT:]INNERPORT, as docker run -p: the host's
/// 127.0.0.1:HostPort (and [::1]:HostPort) accepts connections, each relayed
/// to the command's server on InnerPort inside.  HostPort is OUTERPORT,
/// default INNERPORT.
/// </summary>
internal sealed record PublishSpec(int HostPort, int InnerPort)
{
    public const string Syntax = "[OUTERPORT:]INNERPORT";

    public static PublishSpec Parse(string text)
    {
        string[] parts = text.Trim().Split(':');
        if (parts.Length > 2)
            throw new PortSpecException($"expected {Syntax} (outside, it is always 127.0.0.1 and ::1)");
        int innerPort = ForwardSpec.ParsePort(parts[^1], "INNERPORT");
        int hostPort = parts.Length == 2 ? ForwardSpec.ParsePort(parts[0], "OUTERPORT") : innerPort;
        return new PublishSpec(hostPort, innerPort);
    }

    public override string ToString() => $"{HostPort}:{InnerPort}";

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
