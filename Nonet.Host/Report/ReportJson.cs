using System;
using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Nonet.Report;

/// <summary>
/// One attempt as one line of JSON, for --report-file (README.md, "Does it
/// phone home?", documents the schema).  Pure.
/// </summary>
internal static class ReportJson
{
    public static string TimeText(DateTime utc) =>
        utc.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public static string CallName(CallKind call) => call switch
    {
        CallKind.Connect => "connect",
        CallKind.SendTo => "sendto",
        CallKind.SendMsg => "sendmsg",
        CallKind.SendMmsg => "sendmmsg",
        CallKind.Write => "write",
        _ => "foreign",
    };

    public static string VerdictName(Allow.Verdict verdict) => verdict == Allow.Verdict.Allowed ? "allowed" : "denied";

    /// <summary>The line, with its newline, as UTF-8.  The command's own
    /// strings (its name, a socket's path) are JSON strings: control
    /// characters escaped by the writer, bytes that are not UTF-8 as \xNN
    /// text (<see cref="UserText.Decode"/>).</summary>
    public static byte[] Line(Attempt attempt)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            var d = attempt.Destination;
            writer.WriteStartObject();
            writer.WriteString("time", TimeText(attempt.Time));
            if (d.Note is null)
                writer.WriteString("protocol", d.Protocol);
            if (d.Path is { } path)
                writer.WriteString("path", path);
            if (d.Address is { } address)
                writer.WriteString("address", address.ToString());
            if (d.Port is { } port)
                writer.WriteNumber("port", port);
            if (d.Name is { } name)
                writer.WriteString("name", name);
            if (d.Note is { } note)
                writer.WriteString("note", note);
            if (d.Left)
                writer.WriteBoolean("left", true);
            if (attempt.Pid > 0)
                writer.WriteNumber("pid", attempt.Pid);
            writer.WriteString("command", attempt.Command);
            writer.WriteString("call", attempt.CallText ?? CallName(attempt.Call));
            if (d.DnsName is { } dnsName)
            {
                writer.WriteStartObject("dns");
                writer.WriteString("name", dnsName);
                writer.WriteString("type", d.DnsType);
                writer.WriteEndObject();
            }
            if (attempt.Verdict is { } verdict)
                writer.WriteString("verdict", VerdictName(verdict));
            writer.WriteEndObject();
        }
        var line = new byte[buffer.WrittenCount + 1];
        buffer.WrittenSpan.CopyTo(line);
        line[^1] = (byte)'\n';
        return line;
    }
}
