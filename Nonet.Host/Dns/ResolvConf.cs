using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;

namespace Nonet.Dns;

/// <summary>
/// The nameservers of a resolv.conf(5): the addresses that nonet makes
/// answer inside.  Pure: the text in, the addresses out.
/// </summary>
internal static class ResolvConf
{
    public const string DefaultPath = "/etc/resolv.conf";

    /// <summary>The launcher's limit (NONET_MAX_NAMESERVERS in status.h).</summary>
    public const int MaxNameservers = 16;

    /// <summary>
    /// Every "nameserver ADDRESS" line's address, in order, each once.  With
    /// none (or no file), glibc and c-ares ask 127.0.0.1, so that is the
    /// one.  An IPv6 address with a zone ("fe80::1%eth0") names an interface
    /// that does not exist inside, where it fails at once, and is left out.
    /// </summary>
    public static IReadOnlyList<IPAddress> Nameservers(string? text)
    {
        var found = new List<IPAddress>();
        foreach (var rawLine in (text ?? "").Split('\n'))
        {
            var line = rawLine.AsSpan().Trim();
            if (!line.StartsWith("nameserver") || line.Length <= "nameserver".Length || !char.IsWhiteSpace(line["nameserver".Length]))
                continue;
            var value = line["nameserver".Length..].Trim();
            int end = value.IndexOfAny(" \t#;");
            if (end >= 0)
                value = value[..end];
            if (value.Contains('%') || !IPAddress.TryParse(value, out var address))
                continue;
            if (address.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
                continue;
            if (address.IsIPv4MappedToIPv6)
                address = address.MapToIPv4();
            if (!found.Contains(address) && found.Count < MaxNameservers)
                found.Add(address);
        }
        if (found.Count == 0)
            found.Add(IPAddress.Loopback);
        return found;
    }
}
