using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Threading;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// --report that can be trusted (issue 21): what the command's own run
/// listens on is not an attempt, what it names cannot forge nonet's lines,
/// and what nonet could not read, or that went another way (write() of a
/// query, DNS over TCP, paths through /proc/self, a socket made outside)
/// is still in the report.
/// </summary>
public sealed class ReportTrustTests(Identity identity) : EndToEndTest(identity)
{
    private const string Helpers = """
        import ctypes, os, socket, struct, sys
        libc = ctypes.CDLL(None, use_errno=True)
        def query(name, qtype=1, qid=0x4242):
            q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
            for label in name.split("."):
                q += bytes([len(label)]) + label.encode()
            return q + b"\0" + struct.pack(">HH", qtype, 1)

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

    /// <summary>A Unix socket listening outside, in a directory of the identity's, reachable by it.</summary>
    private (Socket Server, string Directory, string Path) OutsideListener(string name = "x.sock")
    {
        string dir = Harness.TempDirectory(Who);
        string path = Path.Combine(dir, name);
        var server = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        server.Bind(new UnixDomainSocketEndPoint(path));
        server.Listen();
        File.SetUnixFileMode(path, (UnixFileMode)0x1ff);
        return (server, dir, path);
    }

    [Test]
    public void A_unix_socket_that_the_run_listens_on_is_not_reported_and_one_outside_is()
    {
        var (server, _, outsidePath) = OutsideListener();
        using var _server = server;
        const string script = """
            import os, socket, sys
            inside = os.path.join(sys.argv[1], "x.sock")
            listener = socket.socket(socket.AF_UNIX); listener.bind(inside); listener.listen()
            socket.socket(socket.AF_UNIX).connect(inside)
            # a listener of a child process, and a datagram socket
            import time
            pid = os.fork()
            if pid == 0:
                l2 = socket.socket(socket.AF_UNIX); l2.bind(inside + "2"); l2.listen(); time.sleep(10); os._exit(0)
            for _ in range(500):
                try:
                    socket.socket(socket.AF_UNIX).connect(inside + "2"); break
                except OSError:
                    time.sleep(0.01)
            d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); d.bind(inside + "d")
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"hi", inside + "d")
            socket.socket(socket.AF_UNIX).connect(sys.argv[2])
            os.kill(pid, 9)
            print("ok")
            """;
        string file = ReportFile();
        var r = Nonet("--report", "--report-file", file, Python, "-c", script, Harness.TempDirectory(Who), outsidePath);
        Assert.That(r.Stdout, Does.EndWith("ok\n"), r.ToString());
        var lines = Lines(file);
        Assert.That(lines.Select(l => l.GetProperty("path").GetString()), Is.EqualTo(new[] { outsidePath }), File.ReadAllText(file) + r);
        Assert.That(r.Stderr, Does.Contain("report: 1 connection to path-based Unix sockets"), r.ToString());
    }

    [Test]
    public void A_unix_path_through_proc_self_dev_fd_thread_self_or_a_threads_own_directory_is_resolved_as_the_caller_sees_it()
    {
        var (server, dir, _) = OutsideListener();
        using var _server = server;
        const string script = """
            import ctypes, os, socket, sys, threading
            fd = os.open(sys.argv[1], os.O_PATH)
            for p in (f"/proc/self/fd/{fd}/x.sock", f"/dev/fd/{fd}/x.sock", f"/proc/thread-self/fd/{fd}/x.sock", f"//proc/./self/fd/{fd}/x.sock"):
                socket.socket(socket.AF_UNIX).connect(p)
            def elsewhere():
                assert ctypes.CDLL(None, use_errno=True).unshare(0x200) == 0  # CLONE_FS: this thread's own directory
                os.chdir(sys.argv[1])
                socket.socket(socket.AF_UNIX).connect("x.sock")
            os.chdir("/")
            t = threading.Thread(target=elsewhere); t.start(); t.join()
            print("ok", fd)
            """;
        string file = ReportFile();
        var r = Nonet("--report", "--report-file", file, Python, "-c", script, dir);
        Assert.That(r.Stdout, Does.StartWith("ok "), r.ToString());
        int fd = int.Parse(r.Stdout.Split(' ')[1]);
        Assert.That(Lines(file).Select(l => l.GetProperty("path").GetString()), Is.EqualTo(new[]
        {
            $"/proc/self/fd/{fd}/x.sock", $"/dev/fd/{fd}/x.sock", $"/proc/thread-self/fd/{fd}/x.sock", $"//proc/./self/fd/{fd}/x.sock", "x.sock",
        }), File.ReadAllText(file) + r);
    }

    [Test]
    public void The_commands_names_and_paths_cannot_add_erase_or_hide_lines_on_the_terminal()
    {
        const string forged = "\r\n\u001b[2K\u001b[1A\u001b[8m";
        var (server, _, path) = OutsideListener("s" + forged);
        using var _server = server;
        const string script = """
            import ctypes, socket, sys
            ctypes.CDLL(None).prctl(15, sys.argv[2].encode(), 0, 0, 0)  # PR_SET_NAME
            try:
                socket.socket().connect(("192.0.2.1", 80))
            except OSError:
                pass
            socket.socket(socket.AF_UNIX).connect(sys.argv[1])
            """;
        string file = ReportFile();
        string tmuxSocket = Path.Combine(Harness.TempDirectory(Who), "tmux");
        var noOuter = new Dictionary<string, string?> { ["TMUX"] = null, ["TMUX_PANE"] = null, ["LC_ALL"] = "C" };
        try
        {
            var started = Harness.Run(Who, "tmux", ["-S", tmuxSocket, "-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50",
                "/bin/sh", "-c", "echo BEGIN; \"$@\" 2>&1; echo END; exec sleep 60", "sh",
                Harness.Nonet, "--report", "--report-file", file, Python, "-c", script, path, forged], noOuter);
            Assert.That(started.ExitCode, Is.Zero, started.ToString());
            string screen = "";
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (DateTime.UtcNow < deadline)
            {
                screen = Harness.Run(Who, "tmux", ["-S", tmuxSocket, "capture-pane", "-p", "-S", "-"], noOuter).Stdout;
                if (screen.Contains("END\n"))
                    break;
                Thread.Sleep(100);
            }
            var lines = screen.Split('\n');
            int begin = Array.IndexOf(lines, "BEGIN"), end = Array.IndexOf(lines, "END");
            Assert.That(begin, Is.GreaterThanOrEqualTo(0).And.LessThan(end), screen);
            var shown = lines[(begin + 1)..end];
            string escaped = @"\x0d\x0a\x1b[2K\x1b[1A\x1b[8m";
            Assert.That(shown, Has.Length.EqualTo(5), screen);
            Assert.That(shown[0], Is.EqualTo("nonet: report: 1 attempt to reach outside the namespace, to 1 destination:"), screen);
            Assert.That(shown[1], Does.Match($@"^nonet:   tcp +192\.0\.2\.1:80 +1x  pid \d+ {Regex.Escape(escaped)}$"), screen);
            Assert.That(shown[2], Is.EqualTo("nonet: report: 1 connection to path-based Unix sockets (these reach the host's services):"), screen);
            Assert.That(shown[3], Does.Match($@"^nonet:   unix +{Regex.Escape(Path.GetDirectoryName(path)! + "/s" + escaped)} +1x  pid \d+ {Regex.Escape(escaped)}$"), screen);
            Assert.That(shown[4], Is.EqualTo("nonet: report: to allow what was denied: --allow 192.0.2.1:80"), screen);
            // The JSON lines are valid and keep the bytes.
            var json = Lines(file);
            Assert.That(json.Select(l => l.GetProperty("command").GetString()), Is.EqualTo(new[] { forged, forged }));
            Assert.That(json[1].GetProperty("path").GetString(), Is.EqualTo(path));
        }
        finally
        {
            Harness.Run(Who, "tmux", ["-S", tmuxSocket, "kill-server"], noOuter);
        }
    }

    [Test]
    public void A_process_nonet_cannot_read_is_recorded_with_its_pid_and_call()
    {
        // An exec-only copy of python3 whose group is not mapped inside:
        // the kernel makes the process non-dumpable to nonet (would_dump()),
        // unless nonet is root.
        string group = SupplementaryGroup();
        string dir = Harness.TempDirectory(Who);
        string python = Path.Combine(dir, "python3");
        var copy = Harness.Run(Who, "cp", [Python, python]);
        Assert.That(copy.ExitCode, Is.Zero, copy.ToString());
        var chgrp = Harness.Run(Who, "chgrp", [group, python]);
        Assert.That(chgrp.ExitCode, Is.Zero, chgrp.ToString());
        File.SetUnixFileMode(python, UnixFileMode.UserExecute | UnixFileMode.GroupExecute);
        const string script = """
            import os, socket
            try:
                socket.socket().connect(("192.0.2.5", 81))
            except OSError as e:
                print(os.getpid(), e.errno)
            """;
        string file = ReportFile();
        var r = Nonet("--report", "--report-file", file, python, "-c", script);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var fields = r.Stdout.Trim().Split(' ');
        Assert.That(fields[1], Is.EqualTo("101"), r.ToString());
        var line = Lines(file).Single();
        Assert.That(line.GetProperty("pid").GetInt32(), Is.EqualTo(int.Parse(fields[0])));
        Assert.That(line.GetProperty("call").GetString(), Is.EqualTo("connect"));
        if (Who == Identity.Root)
        {
            Assert.That(line.GetProperty("address").GetString(), Is.EqualTo("192.0.2.5"), "root reads any process");
        }
        else
        {
            Assert.That(line.GetProperty("note").GetString(), Is.EqualTo("destination unreadable"));
            Assert.That(r.Stderr, Does.Match($@"nonet:   \? +destination unreadable  1×  pid {fields[0]} python3\n"), r.ToString());
        }
        Assert.That(r.Stderr, Does.StartWith("nonet: report: 1 attempt to reach outside the namespace, to 1 destination:\n"), r.ToString());
    }

    /// <summary>A group the identity belongs to besides its own: not mapped inside.</summary>
    private string SupplementaryGroup()
    {
        if (Who == Identity.Unprivileged)
        {
            Harness.Run(Identity.Root, "groupadd", ["-f", "nonettest-extra"]);
            var add = Harness.Run(Identity.Root, "usermod", ["-aG", "nonettest-extra", Harness.UnprivilegedUser]);
            Assert.That(add.ExitCode, Is.Zero, add.ToString());
            return "nonettest-extra";
        }
        if (Who == Identity.Root)
            return "daemon";
        var groups = Harness.Run(Who, "id", ["-G"]).Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).ToList();
        if (groups.Count == 0)
            Assert.Ignore("needs a supplementary group (or root, which makes one)");
        return groups[0].Trim();
    }

    [Test]
    public void An_attempt_while_nonet_has_no_descriptor_left_is_recorded_as_uninspected()
    {
        // Forwarded connections hold two of nonet's descriptors each: the
        // command opens more than nonet's limit allows, then tries outside.
        using var outside = new TcpListener(IPAddress.Loopback, 0);
        outside.Start(4096);
        int port = ((IPEndPoint)outside.LocalEndpoint).Port;
        const string script = """
            import os, socket, sys, time
            held = []
            for _ in range(int(sys.argv[2])):
                held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
            time.sleep(1)  # nonet accepts them all, until it runs out
            try:
                socket.socket().connect(("192.0.2.44", 443))
            except OSError as e:
                print(os.getpid(), e.errno, flush=True)
            """;
        string file = ReportFile();
        var r = Harness.Run(Who, "prlimit", ["--nofile=220:220", "--", Harness.Nonet, "--report", "--report-file", file,
            "--forward", $"{port}", Python, "-c", script, $"{port}", "150"]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var fields = r.Stdout.Trim().Split(' ');
        Assert.That(fields[1], Is.EqualTo("101"), r.ToString());
        // The connections to the forwarded port that nonet could not read
        // are listed as uninspected too: never fewer lines than calls.
        var lines = Lines(file);
        Assert.That(lines, Is.Not.Empty, r.ToString());
        Assert.That(lines.Select(l => (l.GetProperty("pid").GetInt32(), l.GetProperty("call").GetString())).Distinct(),
            Is.EqualTo(new[] { (int.Parse(fields[0]), "connect") }), File.ReadAllText(file));
        var last = lines[^1];
        Assert.That(last.TryGetProperty("address", out var address) ? address.GetString() : last.GetProperty("note").GetString(),
            Is.AnyOf("192.0.2.44", "uninspected (nonet had no descriptor left)"), File.ReadAllText(file));
        Assert.That(lines.SkipLast(1).All(l => l.GetProperty("note").GetString() == "uninspected (nonet had no descriptor left)"), File.ReadAllText(file));
        Assert.That(r.Stderr, Does.Match(@"\?  +uninspected \(nonet had no descriptor left\) +\d+×  pid \d+ python3\n"), r.ToString());
    }

    [Test]
    public void An_IPv4_datagram_with_AF_UNSPEC_is_read_as_AF_INET()
    {
        const string script = Helpers + """
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            addr = struct.pack("<H", 0) + struct.pack(">H", 7) + socket.inet_aton("198.51.100.9") + bytes(8)
            r = libc.sendto(s.fileno(), b"hi", 2, 0, addr, 16)
            print(os.getpid(), r, ctypes.get_errno())
            """;
        string file = ReportFile();
        var r = Nonet("--report", "--report-file", file, Python, "-c", script);
        var fields = r.Stdout.Trim().Split(' ');
        Assert.That(fields[1..], Is.EqualTo(new[] { "-1", "101" }), r.ToString()); // ENETUNREACH: the kernel sent it as AF_INET
        var line = Lines(file).Single();
        Assert.That((line.GetProperty("protocol").GetString(), line.GetProperty("address").GetString(), line.GetProperty("port").GetInt32()),
            Is.EqualTo(("udp", "198.51.100.9", 7)));
    }

    [Test]
    public void Queries_written_with_write_or_sent_over_TCP_are_listed_with_their_names_and_process()
    {
        string ns = Nameserver();
        const string script = Helpers + """
            ns = sys.argv[1]
            family = socket.AF_INET6 if ":" in ns else socket.AF_INET
            u = socket.socket(family, socket.SOCK_DGRAM); u.connect((ns, 53))
            os.write(u.fileno(), query("written.example")); u.recv(512)
            os.writev(u.fileno(), [query("vectored.example", 28)]); u.recv(512)
            t = socket.socket(family, socket.SOCK_STREAM); t.connect((ns, 53))
            m = query("over-tcp.example"); t.sendall(struct.pack(">H", len(m)) + m); t.recv(512)
            print(os.getpid())
            """;
        string file = ReportFile();
        var r = Nonet("--report", "--report-file", file, Python, "-c", script, ns);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        int pid = int.Parse(r.Stdout.Trim());
        var lines = Lines(file);
        Assert.That(lines.Select(l => (l.GetProperty("protocol").GetString(), l.GetProperty("address").GetString(), l.GetProperty("port").GetInt32(),
                l.GetProperty("pid").GetInt32(), l.GetProperty("dns").GetProperty("name").GetString(), l.GetProperty("dns").GetProperty("type").GetString())),
            Is.EqualTo(new[]
            {
                ("udp", ns, 53, pid, "written.example", "A"),
                ("udp", ns, 53, pid, "vectored.example", "AAAA"),
                ("tcp", ns, 53, pid, "over-tcp.example", "A"),
            }), File.ReadAllText(file) + r);
        Assert.That(r.Stderr, Does.Match($@"tcp +{Regex.Escape(ns)}:53  over-tcp\.example A +1×  pid {pid} python3\n"), r.ToString());
    }

    [Test]
    public void A_socket_made_outside_that_reaches_the_hosts_loopback_is_reported_as_having_left()
    {
        var (r, line, port) = ConnectInheritedSocketToHostLoopback();
        Assert.That(r.Stdout, Is.EqualTo("connected\n"), "the inherited socket does reach the host's loopback\n" + r);
        Assert.That((line.GetProperty("protocol").GetString(), line.GetProperty("address").GetString(), line.GetProperty("port").GetInt32(), line.GetProperty("left").GetBoolean()),
            Is.EqualTo(("tcp", "127.0.0.1", port, true)));
        Assert.That(r.Stderr, Does.Contain($"127.0.0.1:{port}  (left: the host's loopback)  1×"), r.ToString());
    }

    [Test]
    public void Under_allow_a_socket_made_outside_that_is_refused_the_hosts_loopback_is_reported_as_denied()
    {
        // Under --allow nonet carries out every connect(), an inherited
        // socket's too, and refuses it the host's loopback: the report
        // still lists the attempt, as denied, and suggests nothing for it.
        var (r, line, port) = ConnectInheritedSocketToHostLoopback("--allow", "192.0.2.1:9");
        Assert.That(r.Stdout, Is.EqualTo("ENETUNREACH\n"), "the inherited socket is refused the host's loopback\n" + r);
        Assert.That((line.GetProperty("address").GetString(), line.GetProperty("port").GetInt32(), line.GetProperty("left").GetBoolean(),
                line.GetProperty("verdict").GetString()),
            Is.EqualTo(("127.0.0.1", port, true, "denied")), line.ToString());
        Assert.That(r.Stderr, Does.Contain("report: denied: 1 attempt"), r.ToString());
        Assert.That(r.Stderr, Does.Contain($"127.0.0.1:{port}  (left: the host's loopback)  1×"), r.ToString());
        Assert.That(r.Stderr, Does.Not.Contain("--allow 127.0.0.1"), r.ToString());
    }

    /// <summary>nonet --report (with <paramref name="options"/>) given a TCP
    /// socket made outside, which the command connects to a listener on the
    /// host's loopback: what it printed ("connected" or the errno's name),
    /// the report's one line, and the listener's port.</summary>
    private (RunResult Run, JsonElement Line, int Port) ConnectInheritedSocketToHostLoopback(params string[] options)
    {
        using var outside = new TcpListener(IPAddress.Loopback, 0);
        outside.Start();
        int port = ((IPEndPoint)outside.LocalEndpoint).Port;
        const string launch = """
            import os, socket, sys
            s = socket.socket(); os.set_inheritable(s.fileno(), True)
            nonet, report, python, inner, port, *options = sys.argv[1:]
            os.execv(nonet, [nonet, *options, "--report", "--report-file", report, python, "-c", inner, str(s.fileno()), port])
            """;
        const string inner = """
            import errno, socket, sys
            s = socket.socket(fileno=int(sys.argv[1]))
            try:
                s.connect(("127.0.0.1", int(sys.argv[2]))); print("connected")
            except OSError as e:
                print(errno.errorcode[e.errno])
            """;
        string file = ReportFile();
        var r = Harness.Run(Who, Python, ["-c", launch, Harness.Nonet, file, Python, inner, $"{port}", .. options]);
        var lines = Lines(file);
        Assert.That(lines, Has.Count.EqualTo(1), File.ReadAllText(file) + r);
        return (r, lines.Single(), port);
    }

    [Test]
    public void The_A_and_AAAA_lookups_of_a_name_are_one_destination_and_the_summary_is_ASCII_outside_UTF8()
    {
        const string script = """
            import socket
            try:
                socket.getaddrinfo("both.example", 443, socket.AF_UNSPEC, socket.SOCK_STREAM)
            except OSError:
                pass
            """;
        var utf8 = NonetWith(new Dictionary<string, string?> { ["LC_ALL"] = "C.UTF-8" }, "--report", Python, "-c", script);
        Assert.That(utf8.Stderr, Does.StartWith("nonet: report: 2 attempts to reach outside the namespace, to 1 destination:\n"), utf8.ToString());
        Assert.That(utf8.Stderr, Does.Match(@"both\.example A,AAAA  2×  pid \d+ python3\n"), utf8.ToString());
        var ascii = NonetWith(new Dictionary<string, string?> { ["LC_ALL"] = "C" }, "--report", Python, "-c", script);
        Assert.That(ascii.Stderr, Does.Match(@"both\.example A,AAAA  2x  pid \d+ python3\n"), ascii.ToString());
        Assert.That(ascii.Stderr.All(c => c < 0x80), Is.True, ascii.ToString());
    }
}
