using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;

namespace Nonet.Allow;

/// <summary>
/// Which addresses --allow never reaches, and which a DNS answer may not
/// point at (DNS rebinding: a name of the attacker's that answers with the
/// host's loopback or the cloud metadata address).  Pure.
/// </summary>
internal static class AddressClass
{
    /// <summary>What nonet adds to "lo" inside under --allow, so that
    /// getaddrinfo(AI_ADDRCONFIG) sees an address of each family (RFC 7600's
    /// and RFC 6666's, which lead nowhere outside).</summary>
    public static readonly IPAddress InsideIPv4 = IPAddress.Parse("192.0.0.8");
    public static readonly IPAddress InsideIPv6 = IPAddress.Parse("100::8");

    /// <summary>An IPv4-mapped IPv6 address as the IPv4 address it is.</summary>
    public static IPAddress Normalize(IPAddress address) =>
        address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>Never a destination under --allow, whatever the rules say:
    /// the loopback, "this host" (0.0.0.0/8, ::), multicast, and the
    /// reserved and broadcast 240.0.0.0/4.</summary>
    public static bool IsNeverAllowed(IPAddress address)
    {
        address = Normalize(address);
        if (IPAddress.IsLoopback(address) || IsMulticastOrBroadcast(address))
            return true;
        if (address.AddressFamily == AddressFamily.InterNetwork)
            return FirstByte(address) == 0;
        return address.Equals(IPAddress.IPv6Any);
    }

    public static bool IsMulticastOrBroadcast(IPAddress address)
    {
        address = Normalize(address);
        if (address.AddressFamily == AddressFamily.InterNetwork)
            return FirstByte(address) >= 224;
        return address.IsIPv6Multicast;
    }

    /// <summary>
    /// Whether a DNS answer's address is dropped: what is never allowed, and
    /// also link-local (169.254.0.0/16, where the cloud metadata service is,
    /// and fe80::/10), any IPv4-mapped or IPv4-compatible IPv6 form (no name
    /// needs one; ::ffff:127.0.0.1 is the loopback), the addresses nonet
    /// puts on "lo" inside, and <paramref name="hostAddresses"/> (the
    /// host's own, where its services listen).
    /// </summary>
    public static bool IsRebinding(IPAddress address, IReadOnlySet<IPAddress> hostAddresses)
    {
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            Span<byte> b = stackalloc byte[16];
            address.TryWriteBytes(b, out _);
            // ::/96 (IPv4-compatible, deprecated) and ::ffff:0:0/96 (mapped).
            if (b[..10].IndexOfAnyExcept((byte)0) < 0 && ((b[10] == 0 && b[11] == 0) || (b[10] == 0xff && b[11] == 0xff)))
                return true;
            if (address.IsIPv6LinkLocal || address.IsIPv6SiteLocal)
                return true;
        }
        else if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> b = stackalloc byte[4];
            address.TryWriteBytes(b, out _);
            if (b[0] == 169 && b[1] == 254)
                return true;
        }
        else
        {
            return true;
        }
        return IsNeverAllowed(address) || address.Equals(InsideIPv4) || address.Equals(InsideIPv6)
            || hostAddresses.Contains(WithoutScope(address));
    }

    public static IPAddress WithoutScope(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0
            ? new IPAddress(address.GetAddressBytes())
            : address;

    private static int FirstByte(IPAddress v4)
    {
        Span<byte> b = stackalloc byte[4];
        v4.TryWriteBytes(b, out _);
        return b[0];
    }
}
