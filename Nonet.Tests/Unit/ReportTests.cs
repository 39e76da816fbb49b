using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Text;
using System.Text.Json;
using CsCheck;
using Nonet.Report;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

/// <summary>The report's wire formats and decisions: socket addresses read
/// from a command's memory (malformed ones too), what counts as an
/// attempt, the JSON lines and the summary.</summary>
public sealed class ReportUnitTests
{
    private static readonly IPAddress[] Nameservers = [IPAddress.Parse("10.0.0.53"), IPAddress.Parse("127.0.0.53")];

    private static readonly SocketKind Tcp4 = new(SocketKind.AfInet, SocketKind.SockStream, 6);
    private static readonly SocketKind Tcp6 = new(SocketKind.AfInet6, SocketKind.SockStream, 6);
    private static readonly SocketKind Udp4 = new(SocketKind.AfInet, SocketKind.SockDgram, 17);
    private static readonly SocketKind Icmp4 = new(SocketKind.AfInet, SocketKind.SockDgram, 1);
    private static readonly SocketKind Icmp6Raw = new(SocketKind.AfInet6, SocketKind.SockRaw, 58);
    private static readonly SocketKind Unix = new(SocketKind.AfUnix, SocketKind.SockStream, 0);

    internal static byte[] In4(string address, int port)
    {
        var b = new byte[16];
        BitConverter.TryWriteBytes(b.AsSpan(0, 2), (ushort)SocketKind.AfInet);
        b[2] = (byte)(port >> 8);
        b[3] = (byte)port;
        IPAddress.Parse(address).TryWriteBytes(b.AsSpan(4), out _);
        return b;
    }

    internal static byte[] In6(string address, int port)
    {
        var b = new byte[28];
        BitConverter.TryWriteBytes(b.AsSpan(0, 2), (ushort)SocketKind.AfInet6);
        b[2] = (byte)(port >> 8);
        b[3] = (byte)port;
        IPAddress.Parse(address).TryWriteBytes(b.AsSpan(8), out _);
        return b;
    }

    private static byte[] Un(string path) =>
        [.. BitConverter.GetBytes((ushort)SocketKind.AfUnix), .. Encoding.UTF8.GetBytes(path), 0];

    [Test]
    public void Inet_addresses_are_read_and_mapped_ones_become_IPv4()
    {
        Assert.That(AttemptClassifier.ParseInet(In4("192.0.2.1", 80)), Is.EqualTo((IPAddress.Parse("192.0.2.1"), 80)));
        Assert.That(AttemptClassifier.ParseInet(In6("2001:db8::1", 443)), Is.EqualTo((IPAddress.Parse("2001:db8::1"), 443)));
        Assert.That(AttemptClassifier.ParseInet(In6("::ffff:192.0.2.9", 1)), Is.EqualTo((IPAddress.Parse("192.0.2.9"), 1)));
    }

    [Test]
    public void Malformed_addresses_are_no_address()
    {
        Assert.That(AttemptClassifier.ParseInet([]), Is.Null);
        Assert.That(AttemptClassifier.ParseInet(In4("192.0.2.1", 80)[..7]), Is.Null);
        Assert.That(AttemptClassifier.ParseInet(In6("2001:db8::1", 80)[..23]), Is.Null);
        Assert.That(AttemptClassifier.ParseInet([0, 0, 0, 80, 1, 2, 3, 4]), Is.Null, "AF_UNSPEC");
        Assert.That(AttemptClassifier.ParseUnixPath([1, 0]), Is.Null, "unnamed");
        Assert.That(AttemptClassifier.ParseUnixPath([1, 0, 0, (byte)'x']), Is.Null, "abstract");
        Assert.That(AttemptClassifier.ParseUnixPath([.. BitConverter.GetBytes((ushort)1), .. "/no/nul"u8]), Is.EqualTo("/no/nul"));
    }

    [Test]
    public void Random_bytes_never_throw()
    {
        Gen.Byte.Array[0, 130].Sample(bytes =>
        {
            AttemptClassifier.ParseInet(bytes);
            AttemptClassifier.ParseUnixPath(bytes);
            foreach (var kind in new[] { Tcp4, Udp4, Icmp4, Unix })
                AttemptClassifier.Classify(CallKind.SendTo, kind, bytes, true, 0, Nameservers);
        });
    }

    public static IEnumerable<TestCaseData> Decisions()
    {
        TestCaseData Case(string name, CallKind call, SocketKind kind, byte[] address, bool named, string? expected) =>
            new TestCaseData((int)call, kind.Domain, kind.Type, kind.Protocol, address, named, expected).SetName(name);
        yield return Case("TCP connect outside", CallKind.Connect, Tcp4, In4("192.0.2.1", 80), true, "tcp 192.0.2.1:80");
        yield return Case("TCP connect to IPv6 outside", CallKind.Connect, Tcp6, In6("2001:db8::1", 22), true, "tcp [2001:db8::1]:22");
        yield return Case("TCP connect to 127.0.0.1", CallKind.Connect, Tcp4, In4("127.0.0.1", 80), true, null);
        yield return Case("TCP connect to 127.9.9.9", CallKind.Connect, Tcp4, In4("127.9.9.9", 80), true, null);
        yield return Case("TCP connect to ::1", CallKind.Connect, Tcp6, In6("::1", 80), true, null);
        yield return Case("TCP connect to ::ffff:127.0.0.1", CallKind.Connect, Tcp6, In6("::ffff:127.0.0.1", 80), true, null);
        yield return Case("TCP connect to 0.0.0.0", CallKind.Connect, Tcp4, In4("0.0.0.0", 80), true, null);
        yield return Case("TCP send on a connected socket", CallKind.SendTo, Tcp4, In4("192.0.2.1", 80), false, null);
        yield return Case("TCP connect to a nameserver's port 53 (its queries count, as answered)", CallKind.Connect, Tcp4, In4("127.0.0.53", 53), true, null);
        yield return Case("TCP connect to a nameserver's other port", CallKind.Connect, Tcp4, In4("10.0.0.53", 80), true, "tcp 10.0.0.53:80");
        yield return Case("UDP datagram outside", CallKind.SendTo, Udp4, In4("198.51.100.1", 9), true, "udp 198.51.100.1:9");
        yield return Case("UDP connect outside", CallKind.Connect, Udp4, In4("198.51.100.1", 9), true, "udp 198.51.100.1:9");
        yield return Case("UDP connect to a nameserver", CallKind.Connect, Udp4, In4("10.0.0.53", 53), true, null);
        yield return Case("UDP datagram to a connected nameserver", CallKind.SendMsg, Udp4, In4("10.0.0.53", 53), false, "udp 10.0.0.53:53");
        yield return Case("UDP datagram to a loopback nameserver", CallKind.SendMmsg, Udp4, In4("127.0.0.53", 53), true, "udp 127.0.0.53:53");
        yield return Case("UDP datagram to the loopback", CallKind.SendTo, Udp4, In4("127.0.0.1", 53), true, null);
        yield return Case("UDP datagram without peer", CallKind.SendTo, Udp4, [], false, null);
        yield return Case("ICMP echo", CallKind.SendTo, Icmp4, In4("192.0.2.7", 0), true, "icmp 192.0.2.7");
        yield return Case("ICMPv6 raw", CallKind.SendTo, Icmp6Raw, In6("2001:db8::7", 0), true, "icmpv6 2001:db8::7");
        yield return Case("ICMP to the loopback", CallKind.SendTo, Icmp4, In4("127.0.0.1", 0), true, null);
        yield return Case("Unix path", CallKind.Connect, Unix, Un("/run/dbus/system_bus_socket"), true, "unix /run/dbus/system_bus_socket");
        yield return Case("Unix abstract", CallKind.Connect, Unix, [1, 0, 0, (byte)'x', (byte)'y'], true, null);
        yield return Case("Unix send on a connected socket", CallKind.SendMsg, Unix, Un("/run/x"), false, null);
    }

    [TestCaseSource(nameof(Decisions))]
    public void What_counts_as_an_attempt(int call, int domain, int type, int protocol, byte[] address, bool named, string? expected)
    {
        var d = AttemptClassifier.Classify((CallKind)call, new SocketKind(domain, type, protocol), address, named, 0, Nameservers);
        Assert.That(d is null ? null : $"{d.Protocol} {d.Show()}", Is.EqualTo(expected));
    }

    [Test]
    public void Loopback_addresses_are_decided_without_the_socket()
    {
        Assert.That(AttemptClassifier.StaysInside(In4("127.0.0.1", 80), Nameservers), Is.True);
        Assert.That(AttemptClassifier.StaysInside(In6("::1", 80), Nameservers), Is.True);
        Assert.That(AttemptClassifier.StaysInside(In4("127.0.0.53", 80), Nameservers), Is.True);
        Assert.That(AttemptClassifier.StaysInside(In4("127.0.0.53", 53), Nameservers), Is.False, "a lookup");
        Assert.That(AttemptClassifier.StaysInside(In4("192.0.2.1", 80), Nameservers), Is.False);
        Assert.That(AttemptClassifier.StaysInside(Un("/run/x"), Nameservers), Is.False);
        Assert.That(AttemptClassifier.StaysInside([], Nameservers), Is.False);
    }

    [Test]
    public void TCP_fast_open_counts_at_sendto()
    {
        var d = AttemptClassifier.Classify(CallKind.SendTo, Tcp4, In4("192.0.2.1", 443), true, 0x20000000, Nameservers);
        Assert.That(d?.Show(), Is.EqualTo("192.0.2.1:443"));
    }

    [Test]
    public void Only_UDP_to_a_nameservers_port_53_is_read_as_a_query()
    {
        Assert.That(AttemptClassifier.IsDnsDatagram(new Destination("udp", IPAddress.Parse("10.0.0.53"), 53, null), Nameservers), Is.True);
        Assert.That(AttemptClassifier.IsDnsDatagram(new Destination("udp", IPAddress.Parse("10.0.0.53"), 54, null), Nameservers), Is.False);
        Assert.That(AttemptClassifier.IsDnsDatagram(new Destination("tcp", IPAddress.Parse("10.0.0.53"), 53, null), Nameservers), Is.False);
        Assert.That(AttemptClassifier.IsDnsDatagram(new Destination("udp", IPAddress.Parse("192.0.2.1"), 53, null), Nameservers), Is.False);
    }

    private static Attempt At(Destination d, int pid = 42, string command = "curl") =>
        new(new DateTime(2026, 12, 1, 10, 2, 3, 45, DateTimeKind.Utc), d, pid, command, CallKind.Connect);

    [Test]
    public void A_JSON_line_has_the_documented_fields()
    {
        var line = ReportJson.Line(At(new Destination("tcp", IPAddress.Parse("2001:db8::1"), 443, null)));
        Assert.That(line[^1], Is.EqualTo((byte)'\n'));
        Assert.That(Encoding.UTF8.GetString(line), Is.EqualTo(
            "{\"time\":\"2026-12-01T10:02:03.045Z\",\"protocol\":\"tcp\",\"address\":\"2001:db8::1\",\"port\":443,\"pid\":42,\"command\":\"curl\",\"call\":\"connect\"}\n"));
    }

    [Test]
    public void A_JSON_line_for_a_lookup_names_the_question_and_ICMP_has_no_port()
    {
        var dns = JsonDocument.Parse(ReportJson.Line(At(new Destination("udp", IPAddress.Parse("10.0.0.53"), 53, null) { DnsName = "example.org", DnsType = "AAAA" }))).RootElement;
        Assert.That(dns.GetProperty("dns").GetProperty("name").GetString(), Is.EqualTo("example.org"));
        Assert.That(dns.GetProperty("dns").GetProperty("type").GetString(), Is.EqualTo("AAAA"));
        var icmp = JsonDocument.Parse(ReportJson.Line(At(new Destination("icmp", IPAddress.Parse("192.0.2.1"), null, null)))).RootElement;
        Assert.That(icmp.TryGetProperty("port", out _), Is.False);
        var unix = JsonDocument.Parse(ReportJson.Line(At(new Destination("unix", null, null, "/run/a \"b\"")))).RootElement;
        Assert.That(unix.GetProperty("path").GetString(), Is.EqualTo("/run/a \"b\""));
        Assert.That(unix.TryGetProperty("address", out _), Is.False);
    }

    [Test]
    public void No_attempt_is_one_line_none()
    {
        Assert.That(ReportSummary.Lines(new ReportTally()), Is.EqualTo(new[] { "report: none (no attempt to reach outside the namespace)" }));
    }

    [Test]
    public void Attempts_are_grouped_by_destination_with_counts_and_processes()
    {
        var tally = new ReportTally();
        var web = new Destination("tcp", IPAddress.Parse("192.0.2.1"), 80, null);
        for (int i = 0; i < 1000; i++)
            tally.Add(At(web));
        tally.Add(At(web, 43, "wget"));
        tally.Add(At(new Destination("udp", IPAddress.Parse("10.0.0.53"), 53, null) { DnsName = "example.org", DnsType = "A" }, 44, "python3"));
        tally.Add(At(new Destination("unix", null, null, "/run/dbus/system_bus_socket"), 45, "busctl"));
        Assert.That(ReportSummary.Lines(tally), Is.EqualTo(new[]
        {
            "report: 1002 attempts to reach outside the namespace, to 2 destinations:",
            "  tcp    192.0.2.1:80                 1001×  pid 42 curl, pid 43 wget",
            "  udp    10.0.0.53:53  example.org A     1×  pid 44 python3",
            "report: 1 connection to path-based Unix sockets (these reach the host's services):",
            "  unix   /run/dbus/system_bus_socket     1×  pid 45 busctl",
            "report: to allow what was denied: --allow 192.0.2.1:80 --allow example.org",
        }));
    }

    [Test]
    public void Many_processes_are_cut_and_counted()
    {
        var tally = new ReportTally();
        var d = new Destination("tcp", IPAddress.Parse("192.0.2.1"), 80, null);
        for (int pid = 1; pid <= 40; pid++)
            tally.Add(At(d, pid));
        Assert.That(ReportSummary.Lines(tally)[1], Does.EndWith("pid 1 curl, pid 2 curl, pid 3 curl (+37 more)"));
    }
}
