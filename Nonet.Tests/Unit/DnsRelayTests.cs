using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Text;
using Nonet.Allow;
using Nonet.Dns;
using NUnit.Framework;
using Theirs = ARSoft.Tools.Net.Dns.DnsMessage;

namespace Nonet.Tests.Unit;

/// <summary>--allow's DNS relay as pure functions: nonet's own upstream
/// query, the checks on what comes back, the rebinding filter, and the
/// relayed reply, read back by an independent implementation (ARSoft).</summary>
public sealed class DnsRelayTests
{
    private static readonly DnsQuestion Question = new(Wire("allowed.example"), 1, 1);

    private static byte[] Wire(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }
        bytes.Add(0);
        return [.. bytes];
    }

    /// <summary>An upstream reply, written by hand so that a test can put
    /// anything in it: each answer's owner is a pointer to the question's
    /// name (offset 12), as servers compress it.</summary>
    private sealed class Reply
    {
        private readonly List<byte> bytes = [];
        private int answers;

        public Reply(ushort id, string name = "allowed.example", ushort type = 1, int flags = 0x8180)
        {
            U16(id);
            U16(flags);
            U16(1);
            U16(0);
            U16(0);
            U16(0);
            bytes.AddRange(Wire(name));
            U16(type);
            U16(1);
        }

        private void U16(int v)
        {
            bytes.Add((byte)(v >> 8));
            bytes.Add((byte)v);
        }

        public Reply Answer(ushort type, byte[] data, byte[]? owner = null)
        {
            if (owner is null)
            {
                U16(0xc00c);
            }
            else
            {
                bytes.AddRange(owner);
            }
            U16(type);
            U16(1);
            U16(0);
            U16(60);
            U16(data.Length);
            bytes.AddRange(data);
            answers++;
            bytes[6] = (byte)(answers >> 8);
            bytes[7] = (byte)answers;
            return this;
        }

        public Reply A(string address, byte[]? owner = null) => Answer(1, IPAddress.Parse(address).GetAddressBytes(), owner);

        public Reply Aaaa(string address) => Answer(28, IPAddress.Parse(address).GetAddressBytes());

        /// <summary>The current length: where the next byte goes.</summary>
        public int Length => bytes.Count;

        public byte[] Bytes => [.. bytes];
    }

    private static UpstreamReply Parse(byte[] reply, ushort id = 0x4242)
    {
        var parsed = DnsRelay.ParseReply(reply, id, Question, out bool malformed);
        Assert.That(malformed, Is.False);
        Assert.That(parsed, Is.Not.Null);
        return parsed!;
    }

    private static readonly HashSet<IPAddress> HostAddresses = [IPAddress.Parse("192.0.2.2"), IPAddress.Parse("fd00::2")];

    private static bool Rebinding(IPAddress address) => AddressClass.IsRebinding(address, HostAddresses);

    [Test]
    public void Nonets_query_has_its_own_id_the_name_in_lower_case_and_no_options()
    {
        var query = DnsRelay.Query(0xbeef, new DnsQuestion(Wire("AlLoWeD.Example"), 28, 1));
        var theirs = Theirs.Parse(new ArraySegment<byte>(query));
        Assert.That(theirs.TransactionID, Is.EqualTo(0xbeef));
        Assert.That(theirs.IsRecursionDesired, Is.True);
        Assert.That(theirs.Questions.Single().Name.ToString(), Is.EqualTo("allowed.example."));
        Assert.That((int)theirs.Questions.Single().RecordType, Is.EqualTo(28));
        Assert.That(theirs.IsEDnsEnabled, Is.True);
        Assert.That(theirs.EDnsOptions!.Options, Is.Empty);
        Assert.That(theirs.EDnsOptions.UdpPayloadSize, Is.EqualTo(DnsRelay.UpstreamPayload));
    }

    [Test]
    public void A_reply_with_another_id_question_or_no_qr_bit_is_not_ours_and_ignored()
    {
        Assert.That(DnsRelay.ParseReply(new Reply(0x4243).A("10.213.0.2").Bytes, 0x4242, Question, out bool m1), Is.Null);
        Assert.That(m1, Is.False);
        Assert.That(DnsRelay.ParseReply(new Reply(0x4242, "other.example").A("10.213.0.2").Bytes, 0x4242, Question, out bool m2), Is.Null);
        Assert.That(m2, Is.False);
        Assert.That(DnsRelay.ParseReply(new Reply(0x4242, type: 28).Bytes, 0x4242, Question, out _), Is.Null);
        Assert.That(DnsRelay.ParseReply(new Reply(0x4242, flags: 0x0100).Bytes, 0x4242, Question, out _), Is.Null, "a query, not a reply");
        Assert.That(DnsRelay.ParseReply(new byte[5], 0x4242, Question, out _), Is.Null);
        Assert.That(DnsRelay.ParseReply(new Reply(0x4242, "ALLOWED.example").A("10.213.0.2").Bytes, 0x4242, Question, out _), Is.Not.Null,
            "names compare without case");
    }

    [Test]
    public void A_reply_of_ours_that_cannot_be_read_is_malformed()
    {
        var full = new Reply(0x4242).A("10.213.0.2").Bytes;
        for (int cut = full.Length - 1; cut > 33; cut--)
        {
            Assert.That(DnsRelay.ParseReply(full[..cut], 0x4242, Question, out bool malformed), Is.Null, $"cut at {cut}");
            Assert.That(malformed, Is.True, $"cut at {cut}");
        }
    }

    [Test]
    public void A_compression_loop_or_a_forward_pointer_is_malformed_not_a_hang()
    {
        var reply = new Reply(0x4242);
        int here = reply.Length;
        reply.Answer(1, [10, 213, 0, 2], owner: [(byte)(0xc0 | (here >> 8)), (byte)here]); // points at itself
        Assert.That(DnsRelay.ParseReply(reply.Bytes, 0x4242, Question, out bool malformed), Is.Null);
        Assert.That(malformed, Is.True);

        var forward = new Reply(0x4242);
        forward.Answer(1, [10, 213, 0, 2], owner: [0xc0, 0xff]);
        Assert.That(DnsRelay.ParseReply(forward.Bytes, 0x4242, Question, out malformed), Is.Null);
        Assert.That(malformed, Is.True);

        // a CNAME whose target is a pointer loop in its own data
        var inData = new Reply(0x4242);
        int dataStart = inData.Length + 2 + 10;
        inData.Answer(5, [(byte)(0xc0 | (dataStart >> 8)), (byte)dataStart]);
        Assert.That(DnsRelay.ParseReply(inData.Bytes, 0x4242, Question, out malformed), Is.Null);
        Assert.That(malformed, Is.True);
    }

    [Test]
    public void A_truncated_reply_says_so_even_when_cut_mid_record()
    {
        var full = new Reply(0x4242, flags: 0x8380).A("10.213.0.2").A("10.213.0.3").Bytes;
        var parsed = DnsRelay.ParseReply(full[..^3], 0x4242, Question, out bool malformed);
        Assert.That(malformed, Is.False);
        Assert.That(parsed!.Truncated, Is.True);
    }

    [Test]
    public void Records_pointing_where_allow_never_goes_are_dropped_and_the_rest_kept()
    {
        var reply = new Reply(0x4242)
            .A("10.213.0.2").A("127.0.0.1").A("127.1.2.3").A("169.254.169.254").A("0.0.0.0").A("224.0.0.1").A("255.255.255.255")
            .A("192.0.2.2").A("192.0.0.8")
            .Aaaa("fd00:213::2").Aaaa("::1").Aaaa("::ffff:127.0.0.1").Aaaa("::ffff:10.213.0.2").Aaaa("::127.0.0.1").Aaaa("fe80::1")
            .Aaaa("ff02::1").Aaaa("::").Aaaa("fd00::2").Aaaa("100::8").Aaaa("fec0::1");
        var filtered = DnsRelay.Filter(Parse(reply.Bytes), Question, Rebinding);
        Assert.That(filtered.Addresses.Select(a => a.ToString()), Is.EqualTo(new[] { "10.213.0.2", "fd00:213::2" }));
        Assert.That(filtered.Answers, Has.Count.EqualTo(2));
        Assert.That(filtered.Dropped, Is.EqualTo(18));
    }

    [Test]
    public void Https_and_svcb_hints_count_as_addresses_and_a_bad_hint_drops_the_record()
    {
        static byte[] Svcb(params string[] hints)
        {
            var data = new List<byte> { 0, 1, 0 }; // priority 1, target "."
            foreach (var family in new[] { System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.AddressFamily.InterNetworkV6 })
            {
                var addresses = hints.Select(IPAddress.Parse).Where(a => a.AddressFamily == family).SelectMany(a => a.GetAddressBytes()).ToArray();
                if (addresses.Length == 0)
                    continue;
                data.AddRange([0, (byte)(family == System.Net.Sockets.AddressFamily.InterNetwork ? 4 : 6), (byte)(addresses.Length >> 8), (byte)addresses.Length]);
                data.AddRange(addresses);
            }
            return [.. data];
        }
        var question = new DnsQuestion(Wire("allowed.example"), 65, 1);
        var reply = new Reply(0x4242, type: 65).Answer(65, Svcb("10.213.0.2", "fd00:213::2")).Answer(65, Svcb("10.213.0.3", "127.0.0.1")).Answer(65, [0, 1]);
        var parsed = DnsRelay.ParseReply(reply.Bytes, 0x4242, question, out _)!;
        var filtered = DnsRelay.Filter(parsed, question, Rebinding);
        Assert.That(filtered.Addresses.Select(a => a.ToString()), Is.EqualTo(new[] { "10.213.0.2", "fd00:213::2" }));
        Assert.That(filtered.Answers, Has.Count.EqualTo(1));
        Assert.That(filtered.Dropped, Is.EqualTo(2), "the bad hint's record and the malformed one");
    }

    [Test]
    public void Only_the_cname_chain_from_the_question_counts_and_a_cname_loop_ends()
    {
        var reply = new Reply(0x4242)
            .Answer(5, Wire("b.example"))
            .Answer(5, Wire("allowed.example"), owner: Wire("b.example")) // a loop back
            .A("10.213.0.2", owner: Wire("b.example"))
            .A("10.213.0.9", owner: Wire("unrelated.example"));
        var filtered = DnsRelay.Filter(Parse(reply.Bytes), Question, Rebinding);
        Assert.That(filtered.Addresses.Select(a => a.ToString()), Is.EqualTo(new[] { "10.213.0.2" }));
        Assert.That(filtered.Answers, Has.Count.EqualTo(3));
        Assert.That(filtered.Dropped, Is.EqualTo(1));
    }

    [Test]
    public void The_relayed_reply_has_the_clients_id_question_and_uncompressed_records()
    {
        var clientQuery = DnsMessage.ParseQuery(DnsMessageTests.Query("AlLoWeD.example", id: 0x1111, edns: true))!;
        var reply = new Reply(0x4242).Answer(5, [0xc0, 0x0c]).A("10.213.0.2", owner: [0xc0, 0x0c]);
        var upstream = Parse(reply.Bytes);
        var filtered = DnsRelay.Filter(upstream, Question, Rebinding);
        var relayed = DnsRelay.WriteRelayed(clientQuery, upstream.Rcode, upstream.Authoritative, filtered.Answers, upstream.Authority, 512);
        var theirs = Theirs.Parse(new ArraySegment<byte>(relayed));
        Assert.That(theirs.TransactionID, Is.EqualTo(0x1111));
        Assert.That(theirs.Questions.Single().Name.ToString(), Is.EqualTo("AlLoWeD.example."));
        Assert.That(theirs.ReturnCode, Is.EqualTo(ARSoft.Tools.Net.Dns.ReturnCode.NoError));
        Assert.That(theirs.AnswerRecords.Select(r => r.ToString()), Has.Some.Contains("10.213.0.2"));
        Assert.That(theirs.AnswerRecords, Has.Count.EqualTo(2));
        Assert.That(theirs.IsEDnsEnabled, Is.True);
        Assert.That(theirs.EDnsOptions!.Options, Is.Empty);
    }

    [Test]
    public void A_thousand_records_pass_over_tcp_and_set_tc_over_udp()
    {
        var reply = new Reply(0x4242);
        for (int i = 0; i < 1000; i++)
            reply.A($"10.213.{i / 250}.{i % 250 + 1}");
        var upstream = Parse(reply.Bytes);
        Assert.That(upstream.Answers, Has.Count.EqualTo(1000));
        var filtered = DnsRelay.Filter(upstream, Question, Rebinding);
        Assert.That(filtered.Addresses, Has.Count.EqualTo(1000));
        var clientQuery = DnsMessage.ParseQuery(DnsMessageTests.Query("allowed.example"))!;

        var tcp = DnsRelay.WriteRelayed(clientQuery, 0, false, filtered.Answers, [], ushort.MaxValue);
        Assert.That(Theirs.Parse(new ArraySegment<byte>(tcp)).AnswerRecords, Has.Count.EqualTo(1000));
        var udp = DnsRelay.WriteRelayed(clientQuery, 0, false, filtered.Answers, [], DnsRelay.ClientUdpLimit);
        Assert.That(udp.Length, Is.LessThanOrEqualTo(DnsRelay.ClientUdpLimit));
        var theirs = Theirs.Parse(new ArraySegment<byte>(udp));
        Assert.That(theirs.IsTruncated, Is.True);
        Assert.That(theirs.AnswerRecords, Is.Empty);
    }

    [Test]
    public void Servfail_echoes_the_clients_query()
    {
        var clientQuery = DnsMessage.ParseQuery(DnsMessageTests.Query("allowed.example", id: 0x2222))!;
        var theirs = Theirs.Parse(new ArraySegment<byte>(DnsRelay.ServerFailure(clientQuery)));
        Assert.That(theirs.TransactionID, Is.EqualTo(0x2222));
        Assert.That(theirs.ReturnCode, Is.EqualTo(ARSoft.Tools.Net.Dns.ReturnCode.ServerFailure));
        Assert.That(theirs.Questions.Single().Name.ToString(), Is.EqualTo("allowed.example."));
    }

    [Test]
    public void Random_bytes_from_upstream_never_throw()
    {
        var random = new Random(22);
        var valid = new Reply(0x4242).Answer(5, Wire("b.example")).A("10.213.0.2").Aaaa("fd00:213::2").Bytes;
        for (int i = 0; i < 20_000; i++)
        {
            var bytes = (byte[])valid.Clone();
            for (int flips = random.Next(1, 6); flips > 0; flips--)
                bytes[random.Next(2, bytes.Length)] = (byte)random.Next(256); // the id stays ours
            var parsed = DnsRelay.ParseReply(bytes[..random.Next(0, bytes.Length + 1)], 0x4242, Question, out _);
            if (parsed is not null)
            {
                var filtered = DnsRelay.Filter(parsed, Question, Rebinding);
                var clientQuery = DnsMessage.ParseQuery(DnsMessageTests.Query("allowed.example"))!;
                DnsRelay.WriteRelayed(clientQuery, parsed.Rcode, parsed.Authoritative, filtered.Answers, parsed.Authority, 512);
            }
        }
    }

    [Test]
    public void The_hosts_file_gives_addresses_for_allowed_names_but_not_rebinding_ones()
    {
        string hosts = "127.0.0.1 localhost\n127.0.1.1 myhost\n10.213.0.7 Mirror.Example mirror # local mirror\n"
            + "fe80::1%eth0 linklocal.example\n::ffff:127.0.0.1 mapped.example\n169.254.169.254 metadata.example\nnot-an-address bad.example\n";
        var list = new AllowList([AllowSpec.Parse("mirror.example"), AllowSpec.Parse("myhost"), AllowSpec.Parse("mapped.example"), AllowSpec.Parse("metadata.example")]);
        var table = new AllowedAddresses(list);
        table.RecordHostsFile(hosts, HostAddresses);
        Assert.That(table.IsAllowed(IPAddress.Parse("10.213.0.7"), 443), Is.True);
        Assert.That(table.NameFor(IPAddress.Parse("10.213.0.7")), Is.EqualTo("mirror.example"));
        Assert.That(table.IsAllowed(IPAddress.Parse("127.0.1.1"), 443), Is.False);
        Assert.That(table.IsAllowed(IPAddress.Parse("127.0.0.1"), 443), Is.False);
        Assert.That(table.IsAllowed(IPAddress.Parse("169.254.169.254"), 80), Is.False);
        Assert.That(table.Count, Is.EqualTo(1));
    }
}
