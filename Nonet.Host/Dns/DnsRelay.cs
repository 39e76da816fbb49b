using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Net;

namespace Nonet.Dns;

/// <summary>One resource record, its names uncompressed (the owner, and
/// those inside the data of the types that may compress them), so that it
/// can be written into another message.</summary>
internal sealed record DnsRecord(byte[] WireName, ushort Type, ushort Class, uint Ttl, byte[] Data);

/// <summary>An upstream nameserver's answer to nonet's own query.</summary>
internal sealed record UpstreamReply(byte Rcode, bool Authoritative, bool Truncated, IReadOnlyList<DnsRecord> Answers, IReadOnlyList<DnsRecord> Authority);

/// <summary>What a relayed answer keeps: its records, the addresses in them
/// (for the allow table), and how many records were dropped.</summary>
internal sealed record FilteredAnswer(IReadOnlyList<DnsRecord> Answers, IReadOnlyList<IPAddress> Addresses, int Dropped);

/// <summary>
/// DNS for allowed names, as pure functions over spans: nonet's own
/// upstream query (a fresh id, the name in lower case, no option of the
/// client's, so the query's bytes are no channel out), the checks on the
/// upstream reply (its id and question must be nonet's), the filter that
/// drops records pointing where --allow never goes (DNS rebinding), and
/// the reply relayed to the client under the client's id.  Input from
/// upstream may be anything: every read is bounds-checked, names follow
/// compression pointers only backwards (<see cref="DnsMessage.ReadName"/>),
/// and no loop runs longer than the message.
/// </summary>
internal static class DnsRelay
{
    public const ushort TypeA = 1;
    public const ushort TypeNs = 2;
    public const ushort TypeCname = 5;
    public const ushort TypeSoa = 6;
    public const ushort TypePtr = 12;
    public const ushort TypeMx = 15;
    public const ushort TypeAaaa = 28;
    public const ushort TypeSrv = 33;
    public const ushort TypeDname = 39;
    public const ushort TypeSvcb = 64;
    public const ushort TypeHttps = 65;
    public const ushort ClassIn = 1;

    public const byte RcodeServFail = 2;

    /// <summary>What nonet's query advertises: replies up to this size come
    /// over UDP, larger ones with TC set, and nonet asks again over TCP.</summary>
    public const ushort UpstreamPayload = 1232;

    /// <summary>The largest UDP reply to a client without EDNS (RFC 1035)
    /// and with it (nonet's own advertised size).</summary>
    public const int ClientUdpLimit = 512;
    public const int ClientEdnsLimit = DnsMessage.AdvertisedPayload;

    /// <summary>nonet's query for <paramref name="question"/>: RD set, the
    /// name in lower case (so a client's choice of case carries nothing
    /// out), an OPT record with no options.</summary>
    public static byte[] Query(ushort id, DnsQuestion question)
    {
        var query = new byte[DnsMessage.HeaderSize + question.WireName.Length + 4 + 11];
        var span = query.AsSpan();
        BinaryPrimitives.WriteUInt16BigEndian(span, id);
        BinaryPrimitives.WriteUInt16BigEndian(span[2..], 0x0100);
        BinaryPrimitives.WriteUInt16BigEndian(span[4..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(span[10..], 1);
        int offset = DnsMessage.HeaderSize;
        LowerCase(question.WireName).CopyTo(span[offset..]);
        offset += question.WireName.Length;
        BinaryPrimitives.WriteUInt16BigEndian(span[offset..], question.Type);
        BinaryPrimitives.WriteUInt16BigEndian(span[(offset + 2)..], question.Class);
        offset += 4;
        span[offset] = 0; // the root
        BinaryPrimitives.WriteUInt16BigEndian(span[(offset + 1)..], DnsMessage.TypeOpt);
        BinaryPrimitives.WriteUInt16BigEndian(span[(offset + 3)..], UpstreamPayload);
        // extended rcode, version, flags and RDLENGTH: all zero
        return query;
    }

    /// <summary>The name with ASCII letters in lower case.</summary>
    public static byte[] LowerCase(ReadOnlySpan<byte> wireName)
    {
        var lower = wireName.ToArray();
        int position = 0;
        while (position < lower.Length && lower[position] != 0)
        {
            int length = lower[position];
            for (int i = position + 1; i <= position + length && i < lower.Length; i++)
            {
                if (lower[i] is >= (byte)'A' and <= (byte)'Z')
                    lower[i] += 'a' - 'A';
            }
            position += 1 + length;
        }
        return lower;
    }

    public static bool SameName(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) =>
        a.Length == b.Length && LowerCase(a).AsSpan().SequenceEqual(LowerCase(b));

    /// <summary>
    /// Reads an upstream reply to nonet's query <paramref name="id"/> for
    /// <paramref name="question"/>.  Null when it is not one: too short,
    /// not a reply, another id, opcode or question (a late or forged
    /// datagram, which is ignored); <paramref name="malformed"/> is then
    /// false.  A reply that is ours but cannot be read sets it true.
    /// </summary>
    public static UpstreamReply? ParseReply(ReadOnlySpan<byte> message, ushort id, DnsQuestion question, out bool malformed)
    {
        malformed = false;
        if (message.Length < DnsMessage.HeaderSize)
            return null;
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        if (BinaryPrimitives.ReadUInt16BigEndian(message) != id || (flags & 0x8000) == 0 || ((flags >> 11) & 0xf) != 0)
            return null;
        if (BinaryPrimitives.ReadUInt16BigEndian(message[4..]) != 1)
            return null;
        int offset = DnsMessage.HeaderSize;
        var name = DnsMessage.ReadName(message, ref offset);
        if (name is null || offset + 4 > message.Length || !SameName(name, question.WireName)
            || BinaryPrimitives.ReadUInt16BigEndian(message[offset..]) != question.Type
            || BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]) != question.Class)
            return null;
        offset += 4;
        bool truncated = (flags & 0x0200) != 0;
        byte rcode = (byte)(flags & 0xf);
        int ancount = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        int nscount = BinaryPrimitives.ReadUInt16BigEndian(message[8..]);
        var answers = new List<DnsRecord>();
        var authority = new List<DnsRecord>();
        for (int i = 0; i < ancount + nscount; i++)
        {
            var record = ReadRecord(message, ref offset);
            if (record is null)
            {
                // A truncated reply may end anywhere: nonet asks over TCP.
                if (truncated)
                    return new UpstreamReply(rcode, false, true, [], []);
                malformed = true;
                return null;
            }
            (i < ancount ? answers : authority).Add(record);
        }
        return new UpstreamReply(rcode, (flags & 0x0400) != 0, truncated, answers, authority);
    }

    private static DnsRecord? ReadRecord(ReadOnlySpan<byte> message, ref int offset)
    {
        var owner = DnsMessage.ReadName(message, ref offset);
        if (owner is null || offset + 10 > message.Length)
            return null;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
        ushort @class = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]);
        uint ttl = BinaryPrimitives.ReadUInt32BigEndian(message[(offset + 4)..]);
        int length = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
        int start = offset + 10;
        int end = start + length;
        if (end > message.Length)
            return null;
        offset = end;
        var data = ReadData(message, type, start, end);
        return data is null ? null : new DnsRecord(owner, type, @class, ttl, data);
    }

    /// <summary>A record's data, with the names that RFC 1035 lets a server
    /// compress written out in full; null if they run outside the data.</summary>
    private static byte[]? ReadData(ReadOnlySpan<byte> message, ushort type, int start, int end)
    {
        int fixedBefore, names, fixedAfter;
        switch (type)
        {
            case TypeCname or TypeNs or TypePtr or TypeDname:
                (fixedBefore, names, fixedAfter) = (0, 1, 0);
                break;
            case TypeMx:
                (fixedBefore, names, fixedAfter) = (2, 1, 0);
                break;
            case TypeSrv:
                (fixedBefore, names, fixedAfter) = (6, 1, 0);
                break;
            case TypeSoa:
                (fixedBefore, names, fixedAfter) = (0, 2, 20);
                break;
            default:
                return message[start..end].ToArray();
        }
        if (start + fixedBefore > end)
            return null;
        var data = new List<byte>(end - start + 32);
        foreach (byte b in message.Slice(start, fixedBefore))
            data.Add(b);
        int offset = start + fixedBefore;
        for (int i = 0; i < names; i++)
        {
            var name = DnsMessage.ReadName(message[..end], ref offset);
            if (name is null)
                return null;
            data.AddRange(name);
        }
        if (offset + fixedAfter != end)
            return null;
        foreach (byte b in message.Slice(offset, fixedAfter))
            data.Add(b);
        return [.. data];
    }

    /// <summary>
    /// The answer records worth relaying for <paramref name="question"/>:
    /// those owned by the name asked or by a name its CNAME records lead
    /// to (others are not part of this answer), minus every address record,
    /// and every HTTPS or SVCB record with an address hint, for which
    /// <paramref name="isRebinding"/> is true.  The addresses kept are
    /// returned for the allow table.
    /// </summary>
    public static FilteredAnswer Filter(UpstreamReply reply, DnsQuestion question, Func<IPAddress, bool> isRebinding)
    {
        // The CNAME chain, each step at most once: a loop ends when no new
        // name is found, and there are at most as many steps as records.
        var chain = new List<byte[]> { LowerCase(question.WireName) };
        bool grew = true;
        while (grew)
        {
            grew = false;
            foreach (var record in reply.Answers)
            {
                if (record.Type == TypeCname && InChain(chain, record.WireName) && !InChain(chain, record.Data))
                {
                    chain.Add(LowerCase(record.Data));
                    grew = true;
                }
            }
        }

        var kept = new List<DnsRecord>();
        var addresses = new List<IPAddress>();
        int dropped = 0;
        foreach (var record in reply.Answers)
        {
            if (!InChain(chain, record.WireName))
            {
                dropped++;
                continue;
            }
            var found = record.Class == ClassIn ? AddressesIn(record) : [];
            if (found is null || found.Exists(a => isRebinding(a)))
            {
                dropped++;
                continue;
            }
            kept.Add(record);
            addresses.AddRange(found);
        }
        return new FilteredAnswer(kept, addresses, dropped);
    }

    private static bool InChain(List<byte[]> chain, byte[] name) => chain.Exists(c => SameName(c, name));

    /// <summary>The addresses a record carries: an A or AAAA record's, an
    /// HTTPS or SVCB record's ipv4hint and ipv6hint (RFC 9460); null for
    /// one whose data is malformed.</summary>
    public static List<IPAddress>? AddressesIn(DnsRecord record)
    {
        switch (record.Type)
        {
            case TypeA:
                return record.Data.Length == 4 ? [new IPAddress(record.Data)] : null;
            case TypeAaaa:
                return record.Data.Length == 16 ? [new IPAddress(record.Data)] : null;
            case TypeHttps or TypeSvcb:
                return SvcbHints(record.Data);
            default:
                return [];
        }
    }

    private static List<IPAddress>? SvcbHints(ReadOnlySpan<byte> data)
    {
        var hints = new List<IPAddress>();
        if (data.Length < 3)
            return null;
        int offset = 2;
        // The target name: never compressed (RFC 9460 section 2.2).
        while (true)
        {
            if (offset >= data.Length)
                return null;
            int label = data[offset];
            if (label == 0)
            {
                offset++;
                break;
            }
            if (label > 63)
                return null;
            offset += 1 + label;
        }
        while (offset < data.Length)
        {
            if (offset + 4 > data.Length)
                return null;
            ushort key = BinaryPrimitives.ReadUInt16BigEndian(data[offset..]);
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[(offset + 2)..]);
            offset += 4;
            if (offset + length > data.Length)
                return null;
            int size = key == 4 ? 4 : key == 6 ? 16 : 0;
            if (size > 0)
            {
                if (length % size != 0)
                    return null;
                for (int i = 0; i < length; i += size)
                    hints.Add(new IPAddress(data.Slice(offset + i, size)));
            }
            offset += length;
        }
        return hints;
    }

    /// <summary>
    /// Writes the reply to the client's <paramref name="query"/>: its id,
    /// RD and question as it sent them, RA set, the upstream's rcode and AA,
    /// <paramref name="answers"/> and <paramref name="authority"/> with
    /// uncompressed names, and an OPT record (no options) to a sender of
    /// EDNS.  When it would exceed <paramref name="limit"/> bytes, the
    /// records are left out and TC is set, so that the client asks again
    /// over TCP.  Returns the bytes.
    /// </summary>
    public static byte[] WriteRelayed(DnsQuery query, byte rcode, bool authoritative,
        IReadOnlyList<DnsRecord> answers, IReadOnlyList<DnsRecord> authority, int limit)
    {
        var question = query.Question!;
        int size = DnsMessage.HeaderSize + question.WireName.Length + 4 + (query.Edns ? 11 : 0);
        int recordsSize = 0;
        foreach (var r in answers)
            recordsSize += r.WireName.Length + 10 + r.Data.Length;
        foreach (var r in authority)
            recordsSize += r.WireName.Length + 10 + r.Data.Length;
        bool fits = size + recordsSize <= limit && answers.Count + authority.Count <= ushort.MaxValue;
        if (fits)
            size += recordsSize;

        var reply = new byte[size];
        var span = reply.AsSpan();
        int flags = 0x8000 | (query.RecursionDesired ? 0x0100 : 0) | 0x0080 | (authoritative ? 0x0400 : 0) | (fits ? 0 : 0x0200) | (rcode & 0xf);
        BinaryPrimitives.WriteUInt16BigEndian(span, query.Id);
        BinaryPrimitives.WriteUInt16BigEndian(span[2..], (ushort)flags);
        BinaryPrimitives.WriteUInt16BigEndian(span[4..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(span[6..], (ushort)(fits ? answers.Count : 0));
        BinaryPrimitives.WriteUInt16BigEndian(span[8..], (ushort)(fits ? authority.Count : 0));
        BinaryPrimitives.WriteUInt16BigEndian(span[10..], (ushort)(query.Edns ? 1 : 0));
        int offset = DnsMessage.HeaderSize;
        question.WireName.CopyTo(span[offset..]);
        offset += question.WireName.Length;
        BinaryPrimitives.WriteUInt16BigEndian(span[offset..], question.Type);
        BinaryPrimitives.WriteUInt16BigEndian(span[(offset + 2)..], question.Class);
        offset += 4;
        if (fits)
        {
            foreach (var r in answers)
                offset = WriteRecord(span, offset, r);
            foreach (var r in authority)
                offset = WriteRecord(span, offset, r);
        }
        if (query.Edns)
        {
            span[offset] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(span[(offset + 1)..], DnsMessage.TypeOpt);
            BinaryPrimitives.WriteUInt16BigEndian(span[(offset + 3)..], DnsMessage.AdvertisedPayload);
        }
        return reply;
    }

    private static int WriteRecord(Span<byte> span, int offset, DnsRecord r)
    {
        r.WireName.CopyTo(span[offset..]);
        offset += r.WireName.Length;
        BinaryPrimitives.WriteUInt16BigEndian(span[offset..], r.Type);
        BinaryPrimitives.WriteUInt16BigEndian(span[(offset + 2)..], r.Class);
        BinaryPrimitives.WriteUInt32BigEndian(span[(offset + 4)..], r.Ttl);
        BinaryPrimitives.WriteUInt16BigEndian(span[(offset + 8)..], (ushort)r.Data.Length);
        offset += 10;
        r.Data.CopyTo(span[offset..]);
        return offset + r.Data.Length;
    }

    /// <summary>SERVFAIL for the client's query: the upstream said nothing
    /// usable in time.</summary>
    public static byte[] ServerFailure(DnsQuery query) =>
        WriteRelayed(query, RcodeServFail, false, [], [], int.MaxValue);
}
