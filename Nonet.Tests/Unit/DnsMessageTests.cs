using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using ARSoft.Tools.Net.Dns;
using CsCheck;
using Nonet.Dns;
using NUnit.Framework;
using Theirs = ARSoft.Tools.Net.Dns.DnsMessage;

namespace Nonet.Tests.Unit;

/// <summary>nonet's DNS messages, read back by an independent implementation
/// (ARSoft.Tools.Net), and its parser fed malformed and random input.</summary>
public sealed class DnsMessageTests
{
    /// <summary>A query as a stub resolver sends it: header, one question,
    /// optionally an OPT record.</summary>
    internal static byte[] Query(string name, ushort type = 1, ushort id = 0x1234, bool edns = false, bool rd = true, int opcode = 0)
    {
        var bytes = new List<byte>();
        void U16(int v) { bytes.Add((byte)(v >> 8)); bytes.Add((byte)v); }
        U16(id);
        U16((opcode << 11) | (rd ? 0x0100 : 0));
        U16(1);
        U16(0);
        U16(0);
        U16(edns ? 1 : 0);
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }
        bytes.Add(0);
        U16(type);
        U16(1);
        if (edns)
        {
            bytes.Add(0);
            U16(41);
            U16(4096);
            U16(0);
            U16(0);
            U16(0);
        }
        return bytes.ToArray();
    }

    private static byte[] Reply(byte[] query)
    {
        var parsed = Nonet.Dns.DnsMessage.ParseQuery(query);
        Assert.That(parsed, Is.Not.Null);
        var reply = new byte[Nonet.Dns.DnsMessage.MaxReplySize];
        int length = Nonet.Dns.DnsMessage.WriteReply(parsed!, reply);
        return reply[..length];
    }

    private static Theirs Parse(byte[] reply) => Theirs.Parse(new ArraySegment<byte>(reply));

    [Test]
    public void A_query_gets_not_found_with_its_id_flags_and_question_echoed()
    {
        var theirs = Parse(Reply(Query("PkG.Example.ORG", type: 28, id: 0xbeef)));
        Assert.That(theirs.IsQuery, Is.False);
        Assert.That(theirs.TransactionID, Is.EqualTo(0xbeef));
        Assert.That(theirs.ReturnCode, Is.EqualTo(ReturnCode.NxDomain));
        Assert.That(theirs.IsRecursionDesired, Is.True);
        Assert.That(theirs.IsRecursionAllowed, Is.True);
        Assert.That(theirs.AnswerRecords, Is.Empty);
        Assert.That(theirs.Questions, Has.Count.EqualTo(1));
        // The name's case is echoed as sent (resolvers check it, "0x20").
        Assert.That(theirs.Questions[0].Name.ToString(), Is.EqualTo("PkG.Example.ORG."));
        Assert.That(theirs.Questions[0].RecordType, Is.EqualTo(RecordType.Aaaa));
        Assert.That(theirs.IsEDnsEnabled, Is.False);
    }

    [Test]
    public void An_edns_query_gets_the_extended_error_blocked_saying_why()
    {
        var theirs = Parse(Reply(Query("example.com", edns: true)));
        Assert.That(theirs.IsEDnsEnabled, Is.True);
        Assert.That(theirs.EDnsOptions!.UdpPayloadSize, Is.EqualTo(1232));
        var option = theirs.EDnsOptions.Options.Single();
        Assert.That((ushort)option.Type, Is.EqualTo(15), "RFC 8914 Extended DNS Error");
        var data = ((UnknownOption)option).Data!;
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(data), Is.EqualTo(15), "info-code Blocked");
        Assert.That(Encoding.UTF8.GetString(data, 2, data.Length - 2), Is.EqualTo("no network inside nonet"));
    }

    [Test]
    public void A_reply_or_a_runt_gets_no_answer()
    {
        var reply = Reply(Query("example.com"));
        Assert.That(Nonet.Dns.DnsMessage.ParseQuery(reply), Is.Null, "nonet never answers an answer");
        Assert.That(Nonet.Dns.DnsMessage.ParseQuery(new byte[11]), Is.Null);
        Assert.That(Nonet.Dns.DnsMessage.ParseQuery([]), Is.Null);
    }

    [TestCase(2, ReturnCode.NotImplemented)] // STATUS
    [TestCase(5, ReturnCode.NotImplemented)] // UPDATE
    public void Another_opcode_gets_not_implemented(int opcode, ReturnCode expected)
    {
        var theirs = Parse(Reply(Query("example.com", opcode: opcode)));
        Assert.That(theirs.ReturnCode, Is.EqualTo(expected));
        Assert.That(theirs.Questions, Is.Empty);
    }

    private static byte[] WithQuestionCount(byte[] query, int count)
    {
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(4), (ushort)count);
        return query;
    }

    public static IEnumerable<TestCaseData> Malformed()
    {
        yield return new TestCaseData(WithQuestionCount(Query("example.com"), 0)).SetName("no question");
        yield return new TestCaseData(WithQuestionCount(Query("example.com"), 2)).SetName("two questions, one there");
        yield return new TestCaseData(Query("example.com")[..20]).SetName("truncated inside a label");
        yield return new TestCaseData(Query("example.com")[..^3]).SetName("truncated type and class");
        // A compression pointer to itself, and one pointing forward.
        var loop = Query("a")[..12].Concat(new byte[] { 0xc0, 12, 0, 1, 0, 1 }).ToArray();
        yield return new TestCaseData(loop).SetName("compression pointer loop");
        var forward = Query("a")[..12].Concat(new byte[] { 0xc0, 20, 0, 1, 0, 1, 1, (byte)'x', 0 }).ToArray();
        yield return new TestCaseData(forward).SetName("compression pointer forward");
        yield return new TestCaseData(Query(string.Join('.', Enumerable.Repeat(new string('a', 63), 5)))).SetName("name over 255 bytes");
        yield return new TestCaseData(Query("a")[..12].Concat(new byte[] { 0x40, 0, 0, 1, 0, 1 }).ToArray()).SetName("extended label type");
    }

    [TestCaseSource(nameof(Malformed))]
    public void A_malformed_query_gets_format_error(byte[] query)
    {
        var theirs = Parse(Reply(query));
        Assert.That(theirs.ReturnCode, Is.EqualTo(ReturnCode.FormatError));
        Assert.That(theirs.TransactionID, Is.EqualTo(0x1234));
    }

    [Test]
    public void A_backward_compression_pointer_is_followed_and_a_loop_is_refused()
    {
        // "x", then a pointer back to offset 6 (ANCOUNT's high byte, zero:
        // the root): legal, if odd.
        var back = Query("a")[..12].Concat(new byte[] { 1, (byte)'x', 0xc0, 6, 0, 1, 0, 1 }).ToArray();
        var parsed = Nonet.Dns.DnsMessage.ParseQuery(back);
        Assert.That(parsed?.Rcode, Is.EqualTo(Nonet.Dns.DnsMessage.RcodeNxDomain));
        Assert.That(parsed!.Question!.Name, Is.EqualTo("x"));
        // "x", then a pointer to that "x": a loop.
        var loop = Query("a")[..12].Concat(new byte[] { 1, (byte)'x', 0xc0, 12, 0, 1, 0, 1 }).ToArray();
        Assert.That(Nonet.Dns.DnsMessage.ParseQuery(loop)?.Rcode, Is.EqualTo(Nonet.Dns.DnsMessage.RcodeFormErr));
    }

    [TestCase("example.com", "example.com")]
    [TestCase("", ".")]
    public void Names_show_as_dig_shows_them(string name, string shown)
    {
        Assert.That(Nonet.Dns.DnsMessage.ParseQuery(Query(name))!.Question!.Name, Is.EqualTo(shown));
    }

    [Test]
    public void Control_characters_in_a_name_are_escaped()
    {
        var query = Query("a")[..12].Concat(new byte[] { 3, 0x1b, (byte)'.', (byte)'\\', 0, 0, 1, 0, 1 }).ToArray();
        Assert.That(Nonet.Dns.DnsMessage.ParseQuery(query)!.Question!.Name, Is.EqualTo(@"\027\.\\"));
    }

    [Test]
    public void Any_bytes_at_all_parse_without_throwing_and_any_reply_reads_back()
    {
        Gen.Byte.Array[0, 600].Sample(bytes =>
        {
            var parsed = Nonet.Dns.DnsMessage.ParseQuery(bytes);
            if (parsed is null)
                return bytes.Length < 12 || (bytes[2] & 0x80) != 0;
            var reply = new byte[Nonet.Dns.DnsMessage.MaxReplySize];
            int length = Nonet.Dns.DnsMessage.WriteReply(parsed, reply);
            var theirs = Parse(reply[..length]);
            return !theirs.IsQuery && theirs.TransactionID == BinaryPrimitives.ReadUInt16BigEndian(bytes);
        }, iter: 20_000);
    }

    [Test]
    public void Mutated_queries_parse_without_throwing()
    {
        // Random bytes rarely get past the header; flipping bytes of real
        // queries reaches the name, compression and EDNS code.
        var genQuery = Gen.Select(Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-."].Array[1, 80].Select(c => new string(c)), Gen.UShort, Gen.Bool,
            (name, type, edns) => Query(name, type, edns: edns));
        Gen.Select(genQuery, Gen.Int[0, 1000].Array[1, 8], Gen.Byte.Array[8]).Sample((query, positions, values) =>
        {
            for (int i = 0; i < positions.Length; i++)
                query[positions[i] % query.Length] = values[i];
            var parsed = Nonet.Dns.DnsMessage.ParseQuery(query);
            if (parsed is not null)
                Nonet.Dns.DnsMessage.WriteReply(parsed, new byte[Nonet.Dns.DnsMessage.MaxReplySize]);
        }, iter: 20_000);
    }

    [Test]
    public void Every_well_formed_question_is_echoed_exactly()
    {
        var label = Gen.Char["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"].Array[1, 63].Select(c => new string(c));
        var name = label.Array[1, 4].Select(labels => string.Join('.', labels)).Where(n => n.Length <= 250);
        Gen.Select(name, Gen.UShort, Gen.Bool).Sample((n, type, edns) =>
        {
            var theirs = Parse(Reply(Query(n, type, edns: edns)));
            return theirs.ReturnCode == ReturnCode.NxDomain
                && theirs.Questions.Single().Name.ToString() == n + "."
                && (ushort)theirs.Questions.Single().RecordType == type
                && theirs.IsEDnsEnabled == edns;
        }, iter: 5_000);
    }
}
