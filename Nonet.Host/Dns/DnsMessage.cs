using System;
using System.Buffers.Binary;
using System.Text;

namespace Nonet.Dns;

/// <summary>The one question of a query, its name in wire form
/// (uncompressed labels, the root's zero byte last) and as text.</summary>
internal sealed record DnsQuestion(byte[] WireName, ushort Type, ushort Class)
{
    /// <summary>The name as dig shows it: labels joined by dots, bytes that
    /// are not printable ASCII (and '.' or '\' inside a label) as \DDD.</summary>
    public string Name => DnsMessage.NameToText(WireName);

    /// <summary>A, AAAA, MX...: the common types by name, others as TYPEnnn
    /// (RFC 3597).</summary>
    public string TypeName => DnsMessage.TypeToText(Type);
}

/// <summary>What a message asks: the header fields a reply echoes, the
/// question when there is exactly one, and whether the sender speaks EDNS.</summary>
internal sealed record DnsQuery(ushort Id, int Opcode, bool RecursionDesired, DnsQuestion? Question, bool Edns, byte Rcode);

/// <summary>
/// DNS messages (RFC 1035, EDNS RFC 6891, Extended DNS Errors RFC 8914),
/// as far as nonet needs them: read a query, write the reply that says the
/// name does not exist.  Pure functions over spans; the input comes from the
/// command and may be anything, so every read is bounds-checked and nothing
/// here loops more than the message's length.
/// </summary>
internal static class DnsMessage
{
    public const int HeaderSize = 12;
    public const int MaxNameLength = 255;

    public const byte RcodeNoError = 0;
    public const byte RcodeFormErr = 1;
    public const byte RcodeNxDomain = 3;
    public const byte RcodeNotImp = 4;

    public const ushort TypeOpt = 41;

    /// <summary>RFC 8914 info-code 15, "Blocked": the resolver refuses to
    /// resolve by its own policy.  Its text says which policy.</summary>
    public const ushort ExtendedErrorBlocked = 15;
    public const ushort OptionExtendedError = 15;
    public const string ExtendedErrorText = "no network inside nonet";

    /// <summary>The UDP payload size nonet's replies advertise (the DNS Flag
    /// Day 2020 value); they are far smaller.</summary>
    public const ushort AdvertisedPayload = 1232;

    /// <summary>A reply is the header, the question (a name of at most 255
    /// bytes) and the OPT record: always under this.</summary>
    public const int MaxReplySize = HeaderSize + MaxNameLength + 4 + 11 + 6 + 32;

    /// <summary>
    /// Reads a message sent to nonet's nameserver.  Null for what must get no
    /// reply at all: shorter than a header, or itself a reply (QR set), so
    /// that nothing can make nonet answer answers.  Otherwise the query,
    /// with the rcode its reply carries: NXDOMAIN for a good question,
    /// FORMERR for a malformed one, NOTIMP for an opcode other than QUERY.
    /// </summary>
    public static DnsQuery? ParseQuery(ReadOnlySpan<byte> message)
    {
        if (message.Length < HeaderSize)
            return null;
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(message);
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        if ((flags & 0x8000) != 0)
            return null;
        int opcode = (flags >> 11) & 0xf;
        bool rd = (flags & 0x0100) != 0;
        int qdcount = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        int ancount = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        int nscount = BinaryPrimitives.ReadUInt16BigEndian(message[8..]);
        int arcount = BinaryPrimitives.ReadUInt16BigEndian(message[10..]);

        if (opcode != 0)
            return new DnsQuery(id, opcode, rd, null, false, RcodeNotImp);
        if (qdcount != 1)
            return new DnsQuery(id, opcode, rd, null, false, RcodeFormErr);

        int offset = HeaderSize;
        byte[]? name = ReadName(message, ref offset);
        if (name is null || offset + 4 > message.Length)
            return new DnsQuery(id, opcode, rd, null, false, RcodeFormErr);
        var question = new DnsQuestion(name,
            BinaryPrimitives.ReadUInt16BigEndian(message[offset..]),
            BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]));
        offset += 4;

        // An OPT record in the additional section means the sender reads
        // EDNS options, the Extended DNS Error among them.  Records before
        // it are skipped; a malformed tail only means "no EDNS".
        bool edns = false;
        int records = ancount + nscount + arcount;
        for (int i = 0; i < records && !edns; i++)
        {
            if (ReadName(message, ref offset) is null || offset + 10 > message.Length)
                break;
            ushort type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
            int rdlength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
            offset += 10 + rdlength;
            if (offset > message.Length)
                break;
            edns = type == TypeOpt && i >= ancount + nscount;
        }
        return new DnsQuery(id, opcode, rd, question, edns, RcodeNxDomain);
    }

    /// <summary>
    /// Reads a domain name at <paramref name="offset"/>, following
    /// compression pointers only backwards (so a loop is impossible), and
    /// returns it uncompressed; <paramref name="offset"/> moves past the
    /// name where it is stored.  Null if it is malformed or too long.
    /// </summary>
    public static byte[]? ReadName(ReadOnlySpan<byte> message, ref int offset)
    {
        Span<byte> name = stackalloc byte[MaxNameLength];
        int length = 0;
        int position = offset;
        int end = -1; // where the name ends in the message, once a pointer is taken
        int lowestJump = position;
        while (true)
        {
            if (position >= message.Length)
                return null;
            byte label = message[position];
            if ((label & 0xc0) == 0xc0)
            {
                if (position + 1 >= message.Length)
                    return null;
                int target = ((label & 0x3f) << 8) | message[position + 1];
                if (target >= lowestJump)
                    return null;
                if (end < 0)
                    end = position + 2;
                lowestJump = target;
                position = target;
                continue;
            }
            if ((label & 0xc0) != 0) // 0x40 and 0x80: extended label types, obsolete
                return null;
            if (length + 1 + label > MaxNameLength)
                return null;
            if (position + 1 + label > message.Length)
                return null;
            name[length++] = label;
            if (label == 0)
                break;
            message.Slice(position + 1, label).CopyTo(name[length..]);
            length += label;
            position += 1 + label;
        }
        offset = end >= 0 ? end : position + 1;
        return name[..length].ToArray();
    }

    /// <summary>
    /// Writes nonet's reply to <paramref name="query"/> into
    /// <paramref name="reply"/> (at least <see cref="MaxReplySize"/> bytes)
    /// and returns its length: the query's id, opcode and RD echoed, RA set,
    /// the question echoed when there is one, no answer; and, to a sender of
    /// EDNS, an OPT record carrying the Extended DNS Error "Blocked" with the
    /// text <see cref="ExtendedErrorText"/>.
    /// </summary>
    public static int WriteReply(DnsQuery query, Span<byte> reply)
    {
        int flags = 0x8000 | (query.Opcode << 11) | (query.RecursionDesired ? 0x0100 : 0) | 0x0080 | query.Rcode;
        BinaryPrimitives.WriteUInt16BigEndian(reply, query.Id);
        BinaryPrimitives.WriteUInt16BigEndian(reply[2..], (ushort)flags);
        BinaryPrimitives.WriteUInt16BigEndian(reply[4..], (ushort)(query.Question is null ? 0 : 1));
        BinaryPrimitives.WriteUInt16BigEndian(reply[6..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(reply[8..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(reply[10..], (ushort)(query.Edns ? 1 : 0));
        int offset = HeaderSize;
        if (query.Question is { } q)
        {
            q.WireName.CopyTo(reply[offset..]);
            offset += q.WireName.Length;
            BinaryPrimitives.WriteUInt16BigEndian(reply[offset..], q.Type);
            BinaryPrimitives.WriteUInt16BigEndian(reply[(offset + 2)..], q.Class);
            offset += 4;
        }
        if (query.Edns)
        {
            int textLength = Encoding.ASCII.GetByteCount(ExtendedErrorText);
            reply[offset++] = 0; // the root name
            BinaryPrimitives.WriteUInt16BigEndian(reply[offset..], TypeOpt);
            BinaryPrimitives.WriteUInt16BigEndian(reply[(offset + 2)..], AdvertisedPayload);
            BinaryPrimitives.WriteUInt32BigEndian(reply[(offset + 4)..], 0); // extended rcode, version 0, no flags
            BinaryPrimitives.WriteUInt16BigEndian(reply[(offset + 8)..], (ushort)(4 + 2 + textLength));
            offset += 10;
            BinaryPrimitives.WriteUInt16BigEndian(reply[offset..], OptionExtendedError);
            BinaryPrimitives.WriteUInt16BigEndian(reply[(offset + 2)..], (ushort)(2 + textLength));
            BinaryPrimitives.WriteUInt16BigEndian(reply[(offset + 4)..], ExtendedErrorBlocked);
            offset += 6;
            offset += Encoding.ASCII.GetBytes(ExtendedErrorText, reply[offset..]);
        }
        return offset;
    }

    public static string NameToText(ReadOnlySpan<byte> wireName)
    {
        if (wireName.Length <= 1)
            return ".";
        var text = new StringBuilder(wireName.Length);
        int position = 0;
        while (position < wireName.Length && wireName[position] != 0)
        {
            int length = wireName[position];
            if (text.Length > 0)
                text.Append('.');
            foreach (byte b in wireName.Slice(position + 1, Math.Min(length, wireName.Length - position - 1)))
            {
                if (b is (byte)'.' or (byte)'\\')
                    text.Append('\\').Append((char)b);
                else if (b is > 0x20 and < 0x7f)
                    text.Append((char)b);
                else
                    text.Append('\\').Append(b.ToString("D3", System.Globalization.CultureInfo.InvariantCulture));
            }
            position += 1 + length;
        }
        return text.ToString();
    }

    public static string TypeToText(ushort type) => type switch
    {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        64 => "SVCB",
        65 => "HTTPS",
        255 => "ANY",
        _ => "TYPE" + type.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
