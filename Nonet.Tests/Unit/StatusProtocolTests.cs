using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Nonet.Launch;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

public sealed class StatusProtocolTests
{
    private static byte[] Record(uint magic, uint step, int err, int value)
    {
        var bytes = new byte[16];
        BitConverter.GetBytes(magic).CopyTo(bytes, 0);
        BitConverter.GetBytes(step).CopyTo(bytes, 4);
        BitConverter.GetBytes(err).CopyTo(bytes, 8);
        BitConverter.GetBytes(value).CopyTo(bytes, 12);
        return bytes;
    }

    [Test]
    public void A_record_decodes_to_its_step_errno_and_value()
    {
        var r = StatusProtocol.Decode(Record(StatusProtocol.Magic, 2, 0, 4242));
        Assert.That(r, Is.EqualTo(new StatusRecord(LauncherStep.Clone, 0, 4242)));
        Assert.That(r.Succeeded, Is.True);
        Assert.That(StatusProtocol.Decode(Record(StatusProtocol.Magic, 7, 13, 0)).Succeeded, Is.False);
    }

    [Test]
    public void A_foreign_or_truncated_record_is_rejected()
    {
        Assert.Throws<FormatException>(() => StatusProtocol.Decode(Record(0x12345678, 2, 0, 0)));
        Assert.Throws<FormatException>(() => StatusProtocol.Decode(Record(StatusProtocol.Magic, 99, 0, 0)));
        Assert.Throws<FormatException>(() => StatusProtocol.Decode(new byte[12]));
    }

    [Test]
    public void A_run_message_is_its_header_then_each_string_with_its_NUL()
    {
        byte[] message = StatusProtocol.EncodeRunMessage(["-n"u8.ToArray(), "10.0.0.1"u8.ToArray(), "/bin/true"u8.ToArray(), "true"u8.ToArray(), []]);
        byte[] strings = "-n\010.0.0.1\0/bin/true\0true\0\0"u8.ToArray();
        Assert.That(BitConverter.ToUInt32(message, 0), Is.EqualTo(StatusProtocol.Magic));
        Assert.That(BitConverter.ToUInt32(message, 4), Is.EqualTo((uint)strings.Length));
        Assert.That(message[StatusProtocol.RunHeaderSize..], Is.EqualTo(strings));
    }

    [Test]
    public void The_run_header_is_the_launchers()
    {
        string header = File.ReadAllText(Path.Combine(EndToEnd.Harness.RepositoryRoot, "launcher/status.h"));
        var fields = Regex.Match(header, @"struct nonet_run_header \{(?<body>[^}]*)\}").Groups["body"].Value;
        Assert.That(Regex.Matches(fields, @"uint32_t \w+;").Select(m => m.Value), Is.EqualTo(new[] { "uint32_t magic;", "uint32_t length;" }));
        Assert.That(StatusProtocol.RunHeaderSize, Is.EqualTo(2 * sizeof(uint)));
    }

    [Test]
    public void The_host_and_launcher_agree_on_the_protocol()
    {
        // launcher/status.h is the definition; the C# enum mirrors it.
        string header = File.ReadAllText(Path.Combine(EndToEnd.Harness.RepositoryRoot, "launcher", "status.h"));
        var steps = Regex.Matches(header, @"\bSTEP_([A-Z_]+)\s*=\s*(\d+)")
            .ToDictionary(m => m.Groups[1].Value.Replace("_", ""), m => uint.Parse(m.Groups[2].Value));
        var ours = Enum.GetValues<LauncherStep>().ToDictionary(s => s.ToString().ToUpperInvariant(), s => (uint)s);
        Assert.That(ours, Is.EquivalentTo(steps));
        Assert.That(Regex.Match(header, @"NONET_STATUS_MAGIC (0x[0-9a-f]+)u").Groups[1].Value, Is.EqualTo($"0x{StatusProtocol.Magic:x8}"));
        Assert.That(header, Does.Contain("int32_t value;"));
    }

    [TestCase(0x0000, 0)]
    [TestCase(0x0700, 7)]
    [TestCase(0xff00, 255)]
    [TestCase(0x000f, 143)]
    [TestCase(0x0089, 137)]
    public void Wait_status_maps_to_exit_code(int status, int exitCode)
    {
        Assert.That(NamespaceRunner.ExitStatusOf(status), Is.EqualTo(exitCode));
    }
}
