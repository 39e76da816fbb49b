using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// --report and --report-file: every attempt to reach outside, by any
/// process of the command's, is listed with its process, while the command
/// sees its calls fail at once exactly as without the option.
/// </summary>
public sealed class ReportTests(Identity identity) : EndToEndTest(identity)
{
    /// <summary>Prints "PID ELAPSED ERRNO" after one attempt.</summary>
    private const string Attempt = """
        import os, socket, sys, time
        kind, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        start = time.monotonic()
        err = 0
        try:
            if kind == "tcp":
                socket.socket(family, socket.SOCK_STREAM).connect((address, port))
            elif kind == "udp":
                socket.socket(family, socket.SOCK_DGRAM).sendto(b"hello", (address, port))
            elif kind == "icmp":
                socket.socket(family, socket.SOCK_DGRAM, socket.IPPROTO_ICMP).sendto(b"\x08\0\0\0\0\1\0\1", (address, 0))
            elif kind == "dns":
                socket.getaddrinfo(address, port, socket.AF_INET)
        except OSError as e:
            err = e.errno
        print(os.getpid(), time.monotonic() - start, err, flush=True)
        """;

    private string ReportFile() => Path.Combine(Harness.TempDirectory(Who), "report.jsonl");

    private static List<JsonElement> Lines(string file) =>
        File.ReadAllLines(file).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    private static string Nameserver()
    {
        var line = File.ReadAllLines("/etc/resolv.conf")
            .Select(l => l.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .FirstOrDefault(w => w.Length >= 2 && w[0] == "nameserver" && !w[1].Contains('%'));
        return line?[1] ?? "127.0.0.1";
    }

    public static IEnumerable<TestCaseData> Attempts()
    {
        yield return new TestCaseData("tcp", "192.0.2.1", 80, "tcp", 80).SetName("TCP to 192.0.2.1");
        yield return new TestCaseData("tcp", "2001:db8::5", 443, "tcp", 443).SetName("TCP to 2001:db8::5");
        yield return new TestCaseData("udp", "198.51.100.3", 9, "udp", 9).SetName("UDP to 198.51.100.3");
        yield return new TestCaseData("icmp", "192.0.2.7", 0, "icmp", null).SetName("ICMP echo to 192.0.2.7");
        yield return new TestCaseData("dns", "deb.debian.org", 443, "udp", 53).SetName("DNS lookup of deb.debian.org");
    }

    [TestCaseSource(nameof(Attempts))]
    public void Each_attempt_is_reported_with_its_destination_and_process_and_fails_at_once(
        string kind, string target, int port, string protocol, int? reportedPort)
    {
        string file = ReportFile();
        var r = Nonet("--report", "--report-file", file, Python, "-c", Attempt, kind, target, $"{port}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var fields = r.Stdout.Split(' ');
        int pid = int.Parse(fields[0]);
        // At once: far below any timeout (glibc's resolver waits 5 s), with
        // room for the seccomp round trips of a busy machine.
        Assert.That(double.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture), Is.LessThan(1.0), r.ToString());
        Assert.That(int.Parse(fields[2]), Is.EqualTo(kind == "dns" ? -2 : 101), r.ToString()); // EAI_NONAME, ENETUNREACH

        var lines = Lines(file);
        Assert.That(lines, Has.Count.EqualTo(1), File.ReadAllText(file) + r);
        var line = lines[0];
        Assert.That(line.GetProperty("protocol").GetString(), Is.EqualTo(protocol));
        string address = kind == "dns" ? Nameserver() : target;
        Assert.That(line.GetProperty("address").GetString(), Is.EqualTo(address));
        if (reportedPort is { } expectedPort)
            Assert.That(line.GetProperty("port").GetInt32(), Is.EqualTo(expectedPort));
        else
            Assert.That(line.TryGetProperty("port", out _), Is.False);
        Assert.That(line.GetProperty("pid").GetInt32(), Is.EqualTo(pid));
        Assert.That(line.GetProperty("command").GetString(), Is.EqualTo("python3"));
        Assert.That(line.GetProperty("time").GetString(), Does.Match(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"));
        var time = DateTime.Parse(line.GetProperty("time").GetString()!, null, System.Globalization.DateTimeStyles.AdjustToUniversal);
        Assert.That(time, Is.EqualTo(DateTime.UtcNow).Within(TimeSpan.FromMinutes(1)));
        if (kind == "dns")
        {
            Assert.That(line.GetProperty("dns").GetProperty("name").GetString(), Is.EqualTo(target));
            Assert.That(line.GetProperty("dns").GetProperty("type").GetString(), Is.EqualTo("A"));
        }
        else
        {
            Assert.That(line.TryGetProperty("dns", out _), Is.False);
        }

        string shown = kind == "dns" ? $"{address}:53  {target} A"
            : reportedPort is null ? target
            : target.Contains(':') ? $"[{target}]:{port}" : $"{target}:{port}";
        var summary = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(summary[0], Is.EqualTo("nonet: report: 1 attempt to reach outside the namespace, to 1 destination:"), r.ToString());
        Assert.That(summary[1], Does.Match($@"^nonet:   {protocol} +{System.Text.RegularExpressions.Regex.Escape(shown)}  1×  pid {pid} python3$"), r.ToString());
        // The summary ends with the --allow option for what was denied, or
        // says that --allow carries TCP only.
        string advice = kind == "dns" ? $"to allow what was denied: --allow {target}"
            : protocol != "tcp" ? $"no --allow option lets the denied {protocol} attempts through (--allow is for TCP)"
            : target.Contains(':') ? $"to allow what was denied: --allow '[{target}]:{port}'" : $"to allow what was denied: --allow {target}:{port}";
        Assert.That(summary[2], Is.EqualTo("nonet: report: " + advice), r.ToString());
        Assert.That(summary, Has.Length.EqualTo(3), r.ToString());
    }

    [Test]
    public void A_grandchilds_attempt_is_attributed_to_the_grandchild()
    {
        string file = ReportFile();
        // The shell forks python3 (the trailing command keeps it from exec'ing).
        var r = Nonet("--report", "--report-file", file, "sh", "-c", "\"$0\" -c \"$1\" tcp 192.0.2.9 8080; echo sh $$", Python, Attempt);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var output = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int grandchild = int.Parse(output[0].Split(' ')[0]);
        int shell = int.Parse(output[1].Split(' ')[1]);
        Assert.That(grandchild, Is.Not.EqualTo(shell));
        var line = Lines(file).Single();
        Assert.That(line.GetProperty("pid").GetInt32(), Is.EqualTo(grandchild));
        Assert.That(line.GetProperty("command").GetString(), Is.EqualTo("python3"));
        Assert.That(r.Stderr, Does.Contain($"192.0.2.9:8080  1×  pid {grandchild} python3"), r.ToString());
    }

    [Test]
    public void A_thousand_attempts_give_a_thousand_lines_and_one_group_of_a_thousand()
    {
        string file = ReportFile();
        const string loop = """
            import socket
            for i in range(1000):
                try:
                    socket.socket().connect(("192.0.2.1", 443))
                except OSError:
                    pass
            """;
        var r = Nonet("--report", "--report-file", file, Python, "-c", loop);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var lines = Lines(file);
        Assert.That(lines, Has.Count.EqualTo(1000));
        Assert.That(lines.All(l => l.GetProperty("address").GetString() == "192.0.2.1" && l.GetProperty("port").GetInt32() == 443));
        Assert.That(r.Stderr, Does.StartWith("nonet: report: 1000 attempts to reach outside the namespace, to 1 destination:\n"), r.ToString());
        Assert.That(r.Stderr, Does.Match(@"tcp +192\.0\.2\.1:443  1000×  pid \d+ python3\n"), r.ToString());
    }

    [Test]
    public void No_attempt_gives_an_empty_file_and_one_line_none()
    {
        string file = ReportFile();
        File.WriteAllText(file, "old content\n");
        if (Who == Identity.Unprivileged)
            Harness.Run(Identity.Caller, "chown", [Harness.UnprivilegedUser, file]);
        var r = Nonet("--report", "--report-file", file, "true");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(File.ReadAllBytes(file), Is.Empty);
        Assert.That(r.Stderr, Is.EqualTo("nonet: report: none (no attempt to reach outside the namespace)\n"));
    }

    [Test]
    public void The_file_is_created_with_mode_0600()
    {
        string file = ReportFile();
        var r = Nonet("--report-file", file, "true");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(File.GetUnixFileMode(file), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        Assert.That(r.Stderr, Is.Empty, "--report-file alone prints no summary");
    }

    [Test]
    public void Loopback_traffic_and_forwarded_connections_are_not_attempts()
    {
        using var outside = new TcpListener(IPAddress.Loopback, 0);
        outside.Start();
        int forwarded = ((IPEndPoint)outside.LocalEndpoint).Port;
        var accepted = outside.AcceptTcpClientAsync();
        const string loopback = """
            import socket, sys
            for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                server = socket.socket(family); server.bind((host, 0)); server.listen()
                client = socket.socket(family); client.connect(server.getsockname()[:2])
                peer, _ = server.accept(); client.sendall(b"ping"); client.send(b"x"); assert peer.recv(5)
                u = socket.socket(family, socket.SOCK_DGRAM); u.bind((host, 0))
                socket.socket(family, socket.SOCK_DGRAM).sendto(b"hi", u.getsockname()[:2]); assert u.recv(2) == b"hi"
            f = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); f.sendall(b"through")
            print("ok")
            """;
        string file = ReportFile();
        var r = Nonet("--report", "--report-file", file, "--forward", $"{forwarded}", Python, "-c", loopback, $"{forwarded}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("ok\n"));
        Assert.That(accepted.Wait(TimeSpan.FromSeconds(5)), Is.True, "the forwarded connection arrived");
        accepted.Result.Dispose();
        Assert.That(File.ReadAllBytes(file), Is.Empty);
        Assert.That(r.Stderr, Is.EqualTo("nonet: report: none (no attempt to reach outside the namespace)\n"));
    }

    [Test]
    public void The_commands_own_listener_does_not_receive_a_connection_made_to_an_outside_address()
    {
        const string script = """
            import errno, socket
            server = socket.socket(); server.bind(("0.0.0.0", 0)); server.listen(); server.setblocking(False)
            port = server.getsockname()[1]
            try:
                socket.socket().connect(("192.0.2.1", port)); print("connected")
            except OSError as e:
                print(errno.errorcode[e.errno])
            try:
                server.accept(); print("accepted")
            except BlockingIOError:
                print("nothing", port)
            """;
        string file = ReportFile();
        var r = Nonet("--report", "--report-file", file, Python, "-c", script);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var output = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(output[0], Is.EqualTo("ENETUNREACH"), r.ToString());
        Assert.That(output[1], Does.StartWith("nothing "), r.ToString());
        int port = int.Parse(output[1].Split(' ')[1]);
        Assert.That(Lines(file).Single().GetProperty("port").GetInt32(), Is.EqualTo(port));
    }

    [Test]
    public void An_attempt_right_before_SIGKILL_is_in_the_file_and_the_summary()
    {
        const string script = """
            import os, signal, socket
            try:
                socket.socket().connect(("192.0.2.66", 22))
            except OSError:
                pass
            os.kill(os.getpid(), signal.SIGKILL)
            """;
        string file = ReportFile();
        var r = Nonet("--report", "--report-file", file, Python, "-c", script);
        Assert.That(r.ExitCode, Is.EqualTo(137), r.ToString());
        Assert.That(Lines(file).Single().GetProperty("address").GetString(), Is.EqualTo("192.0.2.66"));
        Assert.That(r.Stderr, Does.Match(@"tcp +192\.0\.2\.66:22  1×  pid \d+ python3\n"), r.ToString());
    }

    [Test]
    public void The_report_is_complete_when_nonet_gets_SIGTERM()
    {
        const string script = """
            import socket, time
            for port in (1, 2, 3):
                try:
                    socket.socket().connect(("192.0.2.77", port))
                except OSError:
                    pass
            print("ready", flush=True)
            time.sleep(30)
            """;
        string file = ReportFile();
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--report", "--report-file", file, Python, "-c", script]);
        var read = nonet.StandardOutput.ReadLineAsync();
        Assert.That(read.Wait(TimeSpan.FromSeconds(20)), Is.True, "the command started");
        Assert.That(read.Result, Is.EqualTo("ready"));
        Harness.Run(Identity.Caller, "kill", ["-TERM", nonet.Id.ToString()]);
        var r = Harness.Finish(nonet);
        Assert.That(r.ExitCode, Is.EqualTo(128 + 15), r.ToString());
        Assert.That(Lines(file).Select(l => l.GetProperty("port").GetInt32()), Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(r.Stderr, Does.StartWith("nonet: report: 3 attempts to reach outside the namespace, to 3 destinations:\n"), r.ToString());
    }

    [Test]
    public void A_connection_to_a_path_based_unix_socket_is_listed_in_its_own_section()
    {
        string dir = Harness.TempDirectory(Who);
        string path = Path.Combine(dir, "service.sock");
        using var server = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        server.Bind(new UnixDomainSocketEndPoint(path));
        server.Listen();
        File.SetUnixFileMode(path, (UnixFileMode)0x1ff);
        string file = ReportFile();
        var r = Nonet("--report", "--report-file", file, Python, "-c",
            "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1]); socket.socket(socket.AF_UNIX).bind('\\0nonet-abstract')", path);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var line = Lines(file).Single();
        Assert.That(line.GetProperty("protocol").GetString(), Is.EqualTo("unix"));
        Assert.That(line.GetProperty("path").GetString(), Is.EqualTo(path));
        Assert.That(line.TryGetProperty("address", out _), Is.False);
        Assert.That(r.Stderr, Does.Contain("nonet: report: 1 connection to path-based Unix sockets"), r.ToString());
        Assert.That(r.Stderr, Does.Match($@"  unix +{System.Text.RegularExpressions.Regex.Escape(path)}  1×  pid \d+ python3\n"), r.ToString());
    }

    [Test]
    public void Io_uring_is_refused_so_that_nothing_bypasses_the_report()
    {
        const string script = """
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            params = ctypes.create_string_buffer(120)
            fd = libc.syscall(425, 1, params)
            print(fd, ctypes.get_errno())
            """;
        var r = Nonet("--report", Python, "-c", script);
        Assert.That(r.Stdout, Is.EqualTo("-1 38\n"), r.ToString()); // ENOSYS
    }

    [Test]
    public void The_command_holds_nothing_of_the_reports_and_ends_with_the_same_status()
    {
        string file = ReportFile();
        // (Descriptors that the test runner leaks into its children differ
        // from run to run: what matters is that none is nonet's.)
        const string script = "for fd in /proc/$$/fd/*; do readlink $fd; done; kill -USR1 $$";
        var plain = Nonet("sh", "-c", script);
        var reported = Nonet("--report", "--report-file", file, "sh", "-c", script);
        Assert.That(plain.ExitCode, Is.EqualTo(128 + 10), plain.ToString());
        Assert.That(reported.ExitCode, Is.EqualTo(plain.ExitCode), reported.ToString());
        Assert.That(reported.Stdout, Does.Not.Contain("seccomp").And.Not.Contain("socket:").And.Not.Contain(file), reported.ToString());
    }

    [Test]
    public void A_report_file_in_a_missing_directory_stops_nonet_before_the_command()
    {
        string dir = Harness.TempDirectory(Who);
        string file = Path.Combine(dir, "missing", "report.jsonl");
        string marker = Path.Combine(dir, "ran");
        var r = Nonet("--report-file", file, "touch", marker);
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo($"nonet: cannot write the report to {file}: No such file or directory\n"));
        Assert.That(File.Exists(marker), Is.False);
    }

    [Test]
    public void Report_settings_come_from_the_configuration_and_show_in_print_config()
    {
        string file = ReportFile();
        var env = new Dictionary<string, string?> { ["NONET_REPORT"] = "on", ["NONET_REPORT_FILE"] = file };
        var shown = NonetWith(env, "--print-config");
        Assert.That(shown.Stdout, Does.Contain("# from environment NONET_REPORT\nreport = on\n"), shown.ToString());
        Assert.That(shown.Stdout, Does.Contain($"# from environment NONET_REPORT_FILE\nreport-file = {file}\n"), shown.ToString());
        var r = NonetWith(env, Python, "-c", Attempt, "udp", "198.51.100.200", "5");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(Lines(file).Single().GetProperty("address").GetString(), Is.EqualTo("198.51.100.200"));
        Assert.That(r.Stderr, Does.Contain("198.51.100.200:5  1×"), r.ToString());
    }
}
