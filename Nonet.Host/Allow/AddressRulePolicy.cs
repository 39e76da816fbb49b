using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Nonet.Allow;

/// <summary>
/// A stand-in for the allow-list (branch allow-dns: AllowList and the DNS
/// table of addresses), so that the connect hand-over can be built and
/// tested alone: address rules only, IPV4, [IPV6] or a CIDR, each with an
/// optional :PORT, separated by commas or spaces (the 'allow' setting, NONET_ALLOW).  At the
/// merge, the allow-list implements <see cref="IConnectPolicy"/> instead.
/// </summary>
internal sealed class AddressRulePolicy(IReadOnlyList<(IPAddress Network, int Prefix, int? Port)> rules) : IConnectPolicy
{
    public IReadOnlyList<(IPAddress Network, int Prefix, int? Port)> Rules { get; } = rules;

    public Verdict Decide(IPAddress address, int port)
    {
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        foreach (var (network, prefix, rulePort) in Rules)
        {
            if ((rulePort is null || rulePort == port) && Contains(network, prefix, address))
                return Verdict.Allowed;
        }
        return Verdict.Denied;
    }

    private static bool Contains(IPAddress network, int prefix, IPAddress address)
    {
        if (network.AddressFamily != address.AddressFamily)
            return false;
        byte[] a = network.GetAddressBytes(), b = address.GetAddressBytes();
        for (int bit = 0; bit < prefix; bit++)
        {
            int mask = 0x80 >> (bit % 8);
            if ((a[bit / 8] & mask) != (b[bit / 8] & mask))
                return false;
        }
        return true;
    }

    /// <summary>The rules of <paramref name="text"/>, or null with one line
    /// saying which spec is wrong.</summary>
    public static AddressRulePolicy Parse(string text)
    {
        var rules = new List<(IPAddress, int, int?)>();
        foreach (var spec in text.Split([',', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            rules.Add(ParseOne(spec) ?? throw new NonetException(ExitCodes.NonetFailed,
                $"allow: '{spec}' is not an address rule (IPV4, [IPV6] or a CIDR, with an optional :PORT)"));
        return new AddressRulePolicy(rules);
    }

    private static (IPAddress, int, int?)? ParseOne(string spec)
    {
        string host = spec;
        int? port = null;
        int colon = spec.LastIndexOf(':');
        if (spec.StartsWith('['))
        {
            int close = spec.IndexOf(']');
            if (close < 0)
                return null;
            host = spec[1..close];
            string rest = spec[(close + 1)..];
            if (rest.Length > 0)
            {
                if (!rest.StartsWith(':') || !int.TryParse(rest[1..], NumberStyles.None, CultureInfo.InvariantCulture, out int p) || p is < 1 or > 65535)
                    return null;
                port = p;
            }
        }
        else if (colon >= 0)
        {
            if (!int.TryParse(spec[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int p) || p is < 1 or > 65535)
                return null;
            host = spec[..colon];
            port = p;
        }
        int slash = host.IndexOf('/');
        string address = slash < 0 ? host : host[..slash];
        if (!IPAddress.TryParse(address, out var ip) || (ip.AddressFamily == AddressFamily.InterNetwork && address.Split('.').Length != 4))
            return null;
        int max = ip.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        int prefix = max;
        if (slash >= 0 && (!int.TryParse(host[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > max))
            return null;
        return (ip, prefix, port);
    }
}
