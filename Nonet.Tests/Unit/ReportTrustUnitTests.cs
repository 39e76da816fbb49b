using System;
using System.IO;
using System.Linq;
using System.Net;
using System.Text;
using System.Text.Json;
using Nonet.Interop;
using Nonet.Report;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

/// <summary>The host's side of a trustworthy --report that needs no
/// namespace: foreign (i386, x32) calls, the caller's paths, sock_diag's
/// answers, and the escaping of what the command names.</summary>
public sealed class ReportTrustUnitTests
{
    private const uint I386 = ForeignCalls.AuditArchI386;
    private const uint X8664 = ForeignCalls.AuditArchX8664;

    [TestCase(I386, 102, 3ul, "i386 socketcall connect")]
    [TestCase(I386, 102, 11ul, "i386 socketcall sendto")]
    [TestCase(I386, 102, 16ul, "i386 socketcall sendmsg")]
    [TestCase(I386, 362, 0ul, "i386 connect")]
    [TestCase(I386, 369, 0ul, "i386 sendto")]
    [TestCase(I386, 370, 0ul, "i386 sendmsg")]
    [TestCase(I386, 345, 0ul, "i386 sendmmsg")]
    [TestCase(X8664, 0x40000000 | 42, 0ul, "x32 connect")]
    [TestCase(X8664, 0x40000000 | 44, 0ul, "x32 sendto")]
    [TestCase(X8664, 0x40000000 | 518, 0ul, "x32 sendmsg")]
    [TestCase(X8664, 0x40000000 | 538, 0ul, "x32 sendmmsg")]
    [TestCase(ForeignCalls.AuditArchArm, 283, 0ul, "arm syscall 283")]
    public void Foreign_calls_are_named(uint arch, int nr, ulong first, string name)
    {
        Assert.That(ForeignCalls.Name(arch, nr, first, X8664), Is.EqualTo(name));
    }

    [Test]
    public void Native_calls_are_not_foreign()
    {
        Assert.That(ForeignCalls.Name(X8664, 42, 0, X8664), Is.Null);
        Assert.That(ForeignCalls.Name(ForeignCalls.AuditArchAarch64, 203, 0, ForeignCalls.AuditArchAarch64), Is.Null);
        Assert.That(ForeignCalls.Name(X8664, 203, 0, ForeignCalls.AuditArchAarch64), Is.EqualTo("arch 0xc000003e syscall 203"));
    }

    private static unsafe Seccomp.Notification Notification(uint arch, int nr, ulong first = 0)
    {
        var n = new Seccomp.Notification { Id = 7, Pid = (uint)Environment.ProcessId, Nr = nr, Arch = arch };
        n.Args[0] = first;
        return n;
    }

    [Test]
    public void An_i386_or_x32_call_is_recorded_with_its_process_and_refused_with_ENOSYS()
    {
        string file = Path.Combine(Path.GetTempPath(), $"nonet-unit-{Guid.NewGuid():N}.jsonl");
        try
        {
            using var handle = File.OpenHandle(file, FileMode.Create, FileAccess.Write);
            using var recorder = new AttemptRecorder([IPAddress.Parse("10.0.0.53")], (int)handle.DangerousGetHandle());
            var i386 = Notification(I386, 102, 3);
            var x32 = Notification(ForeignCalls.Native, 0x40000000 | 42);
            Assert.That(AttemptRecorder.Verdict(i386), Is.EqualTo(Errno.ENOSYS));
            Assert.That(AttemptRecorder.Verdict(x32), Is.EqualTo(Errno.ENOSYS));
            Assert.That(AttemptRecorder.Verdict(Notification(ForeignCalls.Native, 42)), Is.Zero, "a native connect is carried out");
            recorder.Inspect(i386, listener: -1);
            recorder.Inspect(x32, listener: -1);
            handle.Close();
            var lines = File.ReadAllLines(file).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.That(lines.Select(l => (l.GetProperty("note").GetString(), l.GetProperty("call").GetString(), l.GetProperty("pid").GetInt32())),
                Is.EqualTo(new[]
                {
                    ("refused: 32-bit/x32 call", "i386 socketcall connect", Environment.ProcessId),
                    ("refused: 32-bit/x32 call", "x32 connect", Environment.ProcessId),
                }));
            Assert.That(lines.All(l => !l.TryGetProperty("protocol", out _)));
            Assert.That(recorder.Tally.Attempts, Is.EqualTo(2));
            Assert.That(ReportSummary.Lines(recorder.Tally)[0], Is.EqualTo("report: 2 attempts to reach outside the namespace, to 1 destination:"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [TestCase("/proc/self/fd/3/x.sock", "/proc/100/fd/3/x.sock")]
    [TestCase("/proc/thread-self/fd/3/x", "/proc/100/task/101/fd/3/x")]
    [TestCase("/dev/fd/4/x", "/proc/100/fd/4/x")]
    [TestCase("/dev/stderr", "/proc/100/fd/2")]
    [TestCase("//proc/./self//cwd/s", "/proc/100/cwd/s")]
    [TestCase("/run/x.sock", "/run/x.sock")]
    [TestCase("relative/x.sock", "relative/x.sock")]
    public void Names_of_the_reader_become_the_callers(string path, string rewritten)
    {
        Assert.That(CallerPaths.Rewrite(path, 100, 101), Is.EqualTo(rewritten));
    }

    [Test]
    public void Magic_links_are_split_from_the_rest()
    {
        Assert.That(CallerPaths.SplitMagicLink("/proc/100/fd/3/a/b"), Is.EqualTo(("/proc/100/fd/3", "a/b")));
        Assert.That(CallerPaths.SplitMagicLink("/proc/100/task/101/cwd/s"), Is.EqualTo(("/proc/100/task/101/cwd", "s")));
        Assert.That(CallerPaths.SplitMagicLink("/proc/100/root"), Is.EqualTo(("/proc/100/root", "")));
        Assert.That(CallerPaths.SplitMagicLink("/proc/100/status"), Is.Null);
        Assert.That(CallerPaths.SplitMagicLink("/run/x"), Is.Null);
    }

    [Test]
    public void A_sock_diag_vfs_attribute_matches_only_its_file()
    {
        // UNIX_DIAG_NAME (type 0) first, then UNIX_DIAG_VFS: inode 0x1234, dev 8:1 as the kernel's dev_t.
        byte[] attributes = [8, 0, 0, 0, (byte)'/', (byte)'x', 0, 0, 12, 0, 1, 0, 0x34, 0x12, 0, 0, 1, 0, 0x80, 0];
        Assert.That(NamespaceSockets.VfsMatches(attributes, 8, 1, 0x1234), Is.True);
        Assert.That(NamespaceSockets.VfsMatches(attributes, 8, 1, 0x1235), Is.False);
        Assert.That(NamespaceSockets.VfsMatches(attributes, 8, 2, 0x1234), Is.False);
        Assert.That(NamespaceSockets.VfsMatches(attributes[..10], 8, 1, 0x1234), Is.False, "cut short");
        Assert.That(NamespaceSockets.Split(0x801), Is.EqualTo((8u, 1u)));
    }

    [Test]
    public void The_commands_strings_are_escaped_in_the_summary_and_kept_in_JSON()
    {
        string name = UserText.Decode("a\n\u001b[2K\u001b[1A\u001b[8m"u8.ToArray().Concat(new byte[] { 0xff }).ToArray());
        Assert.That(name, Is.EqualTo("a\n\u001b[2K\u001b[1A\u001b[8m\\xff"));
        var tally = new ReportTally();
        var attempt = new Attempt(DateTime.UtcNow, new Destination("unix", null, null, "/tmp/s\r\n"), 5, name, CallKind.Connect);
        tally.Add(attempt);
        var lines = ReportSummary.Lines(tally, utf8: false);
        Assert.That(lines, Is.EqualTo(new[]
        {
            "report: 1 connection to path-based Unix sockets (these reach the host's services):",
            @"  unix   /tmp/s\x0d\x0a  1x  pid 5 a\x0a\x1b[2K\x1b[1A\x1b[8m\xff",
        }));
        var json = JsonDocument.Parse(ReportJson.Line(attempt)).RootElement;
        Assert.That(json.GetProperty("command").GetString(), Is.EqualTo(name));
        Assert.That(json.GetProperty("path").GetString(), Is.EqualTo("/tmp/s\r\n"));
        Assert.That(Encoding.UTF8.GetString(ReportJson.Line(attempt)).Count(c => c == '\n' || c == '\u001b'), Is.EqualTo(1), "one line, no raw escape");
    }

    [TestCase("C.UTF-8", null, null, true)]
    [TestCase("en_US.utf8", null, null, true)]
    [TestCase("C", "en_US.UTF-8", "en_US.UTF-8", false)]
    [TestCase(null, "de_DE.UTF-8@euro", null, true)]
    [TestCase(null, null, "POSIX", false)]
    [TestCase(null, null, "en_US.ISO-8859-1", false)]
    [TestCase(null, null, null, false)]
    public void Only_a_UTF8_locale_gets_characters_beyond_ASCII(string? all, string? ctype, string? lang, bool utf8)
    {
        string? Env(string n) => n switch { "LC_ALL" => all, "LC_CTYPE" => ctype, "LANG" => lang, _ => null };
        Assert.That(UserText.LocaleIsUtf8(Env), Is.EqualTo(utf8));
    }

    [Test]
    public void A_and_AAAA_of_one_name_are_one_destination()
    {
        var tally = new ReportTally();
        var ns = IPAddress.Parse("10.0.0.53");
        foreach (var type in new[] { "A", "AAAA", "A" })
            tally.Add(new Attempt(DateTime.UtcNow, new Destination("udp", ns, 53, null) { DnsName = "x.example", DnsType = type }, 9, "curl", CallKind.SendMmsg));
        Assert.That(ReportSummary.Lines(tally), Is.EqualTo(new[]
        {
            "report: 3 attempts to reach outside the namespace, to 1 destination:",
            "  udp    10.0.0.53:53  x.example A,AAAA  3×  pid 9 curl",
            "report: to allow what was denied: --allow x.example",
        }));
        var lookups = new Dns.DnsTally();
        foreach (var label in new[] { "a", "b", "c", "d" })
            lookups.Add(new Dns.DnsQuestion([1, (byte)label[0], 0], 1, 1));
        Assert.That(Dns.LookupHint.Line(lookups, utf8: false), Does.EndWith("(a, b, c, ...)"));
        Assert.That(Dns.LookupHint.Line(lookups, utf8: true), Does.EndWith("(a, b, c, …)"));
    }
}
