using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// --forward and --publish (forwarding-spec.md), through real sockets: the
/// host side of each connection is this test process, the inside is python3
/// run by nonet.  Every port on the host is an ephemeral one, so fixtures can
/// run side by side.
/// </summary>
public sealed class ForwardingTests(Identity identity) : EndToEndTest(identity)
{
    // ---- forward: inside clients reach host servers --------------------------

    [TestCase("127.0.0.1", "{0}", 0)]
    [TestCase("127.0.0.1", "15432:{0}", 15432)]
    [TestCase("127.0.0.1", "15432:127.0.0.1:{0}", 15432)]
    [TestCase("127.0.0.1", "80:{0}", 80)]
    [TestCase("::1", "[::1]:{0}", 0)]
    [TestCase("::1", "6380:[::1]:{0}", 6380)]
    public void A_host_server_is_reached_from_inside_on_both_loopback_addresses(string hostAddress, string format, int inner)
    {
        using var server = new HostServer(IPAddress.Parse(hostAddress));
        int innerPort = inner == 0 ? server.Port : inner;
        var r = Nonet("--forward", string.Format(format, server.Port), Python, "-c", Client, "127.0.0.1", $"{innerPort}", "::1", $"{innerPort}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo($"127.0.0.1 {innerPort} echo\n::1 {innerPort} echo\n"), r.ToString());
        Assert.That(server.Accepted, Is.EqualTo(2), "both connections reach the host server");
        Assert.That(r.Stderr, Is.Empty);
    }

    [Test]
    public void Only_forwarded_host_ports_are_reachable_from_inside()
    {
        using var forwarded = new HostServer(IPAddress.Loopback);
        using var other = new HostServer(IPAddress.Loopback);
        // IPv4 and IPv6 ports are chosen apart: the kernel may give the ::1
        // server the forwarded port's number, which is then reachable.
        var other6 = new HostServer(IPAddress.IPv6Loopback);
        while (other6.Port == forwarded.Port || other6.Port == other.Port)
        {
            var next = new HostServer(IPAddress.IPv6Loopback);
            other6.Dispose();
            other6 = next;
        }
        using var _ = other6;
        var r = Nonet("--forward", $"{forwarded.Port}", Python, "-c", Client,
            "127.0.0.1", $"{other.Port}", "::1", $"{other6.Port}", "127.0.0.1", $"{forwarded.Port}", "::1", $"{other.Port}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo(
            $"127.0.0.1 {other.Port} ECONNREFUSED\n::1 {other6.Port} ECONNREFUSED\n127.0.0.1 {forwarded.Port} echo\n::1 {other.Port} ECONNREFUSED\n"), r.ToString());
        Assert.That((other.Accepted, other6.Accepted, forwarded.Accepted), Is.EqualTo((0, 0, 1)));
    }

    [Test]
    public void A_forward_whose_host_service_is_down_fails_only_that_connection()
    {
        // The host port is bound but not listening: connecting to it is
        // refused, until the test makes it listen.
        using var server = new HostServer(IPAddress.Loopback, listen: false);
        const string script = """
            import errno, socket, sys
            port = int(sys.argv[1])
            def attempt():
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                        s.sendall(b"ping\n")
                        got = s.recv(100)
                        return "echo" if got == b"ping\n" else "closed cleanly" if got == b"" else f"got {got!r}"
                except OSError as e:
                    return errno.errorcode.get(e.errno, type(e).__name__) if e.errno else type(e).__name__
            print(attempt(), flush=True)
            sys.stdin.readline()
            print(attempt(), flush=True)
            sys.exit(3)
            """;
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--forward", $"{server.Port}", Python, "-c", script, $"{server.Port}"]);
        try
        {
            string first = ReadLine(nonet);
            Assert.That(first, Is.AnyOf("ECONNRESET", "ECONNREFUSED", "EPIPE"), "the inner client sees a reset or a refusal, not an answer or a clean close");
            server.Listen();
            var r = Harness.Finish(nonet, "go\n"u8.ToArray());
            Assert.That(r.Stdout, Is.EqualTo("echo\n"), "the command went on, and the forward works once the service is up\n" + r);
            Assert.That(r.ExitCode, Is.EqualTo(3), r.ToString());
        }
        finally
        {
            Stop(nonet);
        }
    }

    [Test]
    public void A_reply_after_the_client_half_closes_comes_back_through_a_forward()
    {
        using var server = new HostServer(IPAddress.Loopback, replyAfterEof: true);
        const string script = """
            import socket, sys
            with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
                s.sendall(b"x" * 100000)
                s.shutdown(socket.SHUT_WR)
                reply = b""
                while chunk := s.recv(4096):
                    reply += chunk
                print(reply.decode().strip())
            """;
        var r = Nonet("--forward", $"{server.Port}", Python, "-c", script, $"{server.Port}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("received 100000\n"), r.ToString());
    }

    [Test]
    public void A_hundred_concurrent_connections_through_a_forward_are_all_served()
    {
        using var server = new HostServer(IPAddress.Loopback);
        // Every connection is open before any sends, and none closes before
        // every one has had its echo: a relay that serves one connection at a
        // time cannot pass.
        const string script = """
            import socket, sys, threading
            port, n = int(sys.argv[1]), int(sys.argv[2])
            opened, echoed = threading.Barrier(n), threading.Barrier(n)
            results = [None] * n
            def one(i):
                try:
                    payload = f"[connection {i:03d}]".encode() * 1000
                    with socket.create_connection(("127.0.0.1" if i % 2 else "::1", port), timeout=20) as s:
                        opened.wait(timeout=20)
                        s.sendall(payload)
                        got = bytearray()
                        while len(got) < len(payload):
                            chunk = s.recv(65536)
                            if not chunk:
                                break
                            got += chunk
                        results[i] = "ok" if got == payload else f"wrong echo ({len(got)} bytes)"
                        echoed.wait(timeout=20)
                except Exception as e:
                    results[i] = results[i] or repr(e)
                    opened.abort()
                    echoed.abort()
            threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            bad = [f"{i}: {r}" for i, r in enumerate(results) if r != "ok"]
            print(n - len(bad), "ok")
            print("\n".join(bad[:10]))
            """;
        var r = Nonet("--forward", $"{server.Port}", Python, "-c", script, $"{server.Port}", "100");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout.Trim(), Is.EqualTo("100 ok"), r.ToString());
        Assert.That(server.Accepted, Is.EqualTo(100));
    }

    [Test]
    public void Sixty_four_megabytes_cross_a_forward_intact_both_ways()
    {
        using var server = new HostServer(IPAddress.Loopback);
        // The host server echoes; the inside sends from one thread while it
        // reads from another, so both directions carry 64 MB at once.
        const string script = """
            import hashlib, os, socket, sys, threading
            port, size = int(sys.argv[1]), int(sys.argv[2])
            data = os.urandom(size)
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            sender = threading.Thread(target=s.sendall, args=(data,))
            sender.start()
            h, got = hashlib.sha256(), 0
            while got < size:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                got += len(chunk)
            sender.join()
            s.close()
            print(hashlib.sha256(data).hexdigest(), h.hexdigest(), got)
            """;
        var r = Harness.Run(Who, Harness.Nonet, ["--forward", $"{server.Port}", Python, "-c", script, $"{server.Port}", $"{LargeSize}"],
            timeout: TimeSpan.FromSeconds(45));
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var fields = r.Stdout.Split(' ', StringSplitOptions.TrimEntries);
        Assert.That(fields, Has.Length.EqualTo(3), r.ToString());
        Assert.That(fields[2], Is.EqualTo($"{LargeSize}"), "bytes echoed back inside");
        Assert.That(fields[1], Is.EqualTo(fields[0]), "host to inside: what came back is what was sent");
        WaitUntil(() => !server.Finished.IsEmpty, "the host side of the connection is closed");
        Assert.That(server.Finished.Single(), Is.EqualTo(new Received(LargeSize, fields[0], Reset: false)), "inside to host: the host received what was sent");
    }

    [Test]
    public void Data_the_command_sent_just_before_exiting_reaches_the_host_through_a_forward()
    {
        using var server = new HostServer(IPAddress.Loopback, replyAfterEof: true);
        // The command exits the moment its last write returns: what is still
        // in flight is nonet's to deliver.
        const string script = """
            import hashlib, os, socket, sys
            data = os.urandom(8 << 20)
            print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
            s.sendall(data)
            os._exit(0)
            """;
        var r = Nonet("--forward", $"{server.Port}", Python, "-c", script, $"{server.Port}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        WaitUntil(() => !server.Finished.IsEmpty, "the host side of the connection is closed");
        var received = server.Finished.Single();
        Assert.That($"{received.Bytes} {received.Sha256}\n", Is.EqualTo(r.Stdout), "the host received everything the command sent");
        Assert.That(received.Reset, Is.False);
    }

    [Test]
    public void No_connection_is_cut_short_silently_when_the_command_exits()
    {
        // The command makes connections faster than nonet relays them, sends
        // 16 KiB on each and exits at once, so that nonet meets the exit with
        // connections under way.  A connection may then be refused or reset,
        // but one that the host sees end with a clean close must have
        // brought all that was sent: a clean close after less would pass for
        // a complete, shorter stream.  The moment is a race, hence a few runs.
        const string script = """
            import os, socket, sys
            port, n = int(sys.argv[1]), int(sys.argv[2])
            connections = []
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(b"x" * 16384)
                connections.append(s)
            os._exit(0)
            """;
        for (int run = 0; run < 4; run++)
        {
            using var server = new HostServer(IPAddress.Loopback, replyAfterEof: true);
            var r = Nonet("--forward", $"{server.Port}", Python, "-c", script, $"{server.Port}", "200");
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
            WaitUntil(() => server.Finished.Count == server.Accepted, "every connection the host accepted has ended");
            var cut = server.Finished.Where(f => !f.Reset && f.Bytes != 16384).Select(f => f.Bytes).ToList();
            Assert.That(cut, Is.Empty,
                $"run {run + 1}: {cut.Count} of the {server.Accepted} connections the host accepted closed cleanly after fewer than the 16384 bytes sent (bytes: {string.Join(", ", cut.Distinct())})");
        }
    }

    // ---- publish: the host reaches servers inside ----------------------------

    [TestCase(0)]
    [TestCase(18000)]
    public void A_server_inside_is_reached_from_the_host_through_publish(int inner)
    {
        int port = FreeHostPort();
        int innerPort = inner == 0 ? port : inner;
        string spec = inner == 0 ? $"{port}" : $"{port}:{inner}";
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--publish", spec, Python, "-c", InnerServer, "127.0.0.1", $"{innerPort}", "line"]);
        try
        {
            using (var connection = ConnectToPublished(port, nonet))
            {
                connection.Send("ping\n"u8);
                Assert.That(ReadToEnd(connection), Is.EqualTo("inner got ping\n"));
            }
            var r = Harness.Finish(nonet);
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
        }
        finally
        {
            Stop(nonet);
        }
    }

    [Test]
    public void A_publish_reaches_an_inner_server_that_listens_only_on_ipv6()
    {
        int port = FreeHostPort();
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--publish", $"{port}:8000", Python, "-c", InnerServer, "::1", "8000", "line"]);
        try
        {
            using (var connection = ConnectToPublished(port, nonet))
            {
                connection.Send("over six\n"u8);
                Assert.That(ReadToEnd(connection), Is.EqualTo("inner got over six\n"));
            }
            var r = Harness.Finish(nonet);
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
        }
        finally
        {
            Stop(nonet);
        }
    }

    [Test]
    public void A_published_port_answers_on_ipv6_loopback_too()
    {
        // curl http://localhost:PORT may try ::1 first.
        int port = FreeHostPort();
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--publish", $"{port}", Python, "-c", InnerServer, "127.0.0.1", $"{port}", "line"]);
        try
        {
            using (var connection = ConnectToPublished(port, nonet, IPAddress.IPv6Loopback))
            {
                connection.Send("from six\n"u8);
                Assert.That(ReadToEnd(connection), Is.EqualTo("inner got from six\n"));
            }
            var r = Harness.Finish(nonet);
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
        }
        finally
        {
            Stop(nonet);
        }
    }

    [Test]
    public void A_publish_whose_port_is_taken_on_ipv6_loopback_stops_nonet()
    {
        int port = FreeHostPort();
        using var taken = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = false };
        taken.Bind(new IPEndPoint(IPAddress.IPv6Loopback, port));
        taken.Listen(1);
        string dir = Harness.TempDirectory(Who);
        var r = Nonet("--publish", $"{port}", "touch", $"{dir}/ran");
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo($"nonet: cannot publish port {port}: [::1]:{port} is already in use\n"));
        Assert.That(File.Exists($"{dir}/ran"), Is.False);
    }

    [Test]
    public void A_host_connection_to_a_publish_with_no_inner_server_is_reset()
    {
        int port = FreeHostPort();
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--publish", $"{port}", "sh", "-c", "echo ready; read line; echo done"]);
        try
        {
            Assert.That(ReadLine(nonet), Is.EqualTo("ready"));
            // The host listener exists before the command starts.
            using (var connection = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000 })
            {
                connection.Connect(IPAddress.Loopback, port);
                var error = Assert.Throws<SocketException>(() => connection.Receive(new byte[16]),
                    "the connection is reset, not closed cleanly as if the server had answered");
                Assert.That(error!.SocketErrorCode, Is.EqualTo(SocketError.ConnectionReset));
            }
            var r = Harness.Finish(nonet, "\n"u8.ToArray());
            Assert.That((r.ExitCode, r.Stdout), Is.EqualTo((0, "done\n")), r.ToString());
        }
        finally
        {
            Stop(nonet);
        }
    }

    [Test]
    public void A_reply_after_the_host_half_closes_comes_back_through_a_publish()
    {
        int port = FreeHostPort();
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--publish", $"{port}", Python, "-c", InnerServer, "127.0.0.1", $"{port}", "eof"]);
        try
        {
            using (var connection = ConnectToPublished(port, nonet))
            {
                connection.Send(new byte[100_000]);
                connection.Shutdown(SocketShutdown.Send);
                Assert.That(ReadToEnd(connection), Is.EqualTo("received 100000\n"));
            }
            var r = Harness.Finish(nonet);
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
        }
        finally
        {
            Stop(nonet);
        }
    }

    [Test]
    public void Sixty_four_megabytes_cross_a_publish_intact_both_ways()
    {
        int port = FreeHostPort();
        byte[] data = RandomNumberGenerator.GetBytes(LargeSize);
        string sent = Convert.ToHexStringLower(SHA256.HashData(data));
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--publish", $"{port}", Python, "-c", InnerServer, "127.0.0.1", $"{port}", "echo"]);
        try
        {
            string received;
            long count = 0;
            using (var connection = ConnectToPublished(port, nonet))
            {
                connection.ReceiveTimeout = 30_000;
                using var stream = new NetworkStream(connection);
                var sender = Task.Run(() => stream.Write(data));
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[1 << 20];
                int n;
                while (count < LargeSize && (n = stream.Read(buffer)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                    count += n;
                }
                Assert.That(sender.Wait(TimeSpan.FromSeconds(30)), Is.True, "sending 64 MB");
                received = Convert.ToHexStringLower(hash.GetHashAndReset());
            }
            var r = Harness.Finish(nonet, timeout: TimeSpan.FromSeconds(30));
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
            Assert.That((count, received), Is.EqualTo(((long)LargeSize, sent)), "inside to host: the echo is what was sent");
            Assert.That(r.Stdout, Is.EqualTo($"{LargeSize} {sent}\n"), "host to inside: the inner server received what was sent");
        }
        finally
        {
            Stop(nonet);
        }
    }

    [Test]
    public void Fifty_concurrent_host_connections_through_a_publish_are_all_served()
    {
        const int count = 50;
        int port = FreeHostPort();
        const string server = """
            import socket, sys, threading
            port, n = int(sys.argv[1]), int(sys.argv[2])
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            s.listen(128)
            def serve(c):
                with c:
                    c.sendall(b"hello\n")
                    while chunk := c.recv(65536):
                        c.sendall(chunk)
            threads = []
            for _ in range(n):
                threads.append(threading.Thread(target=serve, args=(s.accept()[0],)))
                threads[-1].start()
            for t in threads:
                t.join()
            """;
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--publish", $"{port}", Python, "-c", server, $"{port}", $"{count}"]);
        var connections = new List<Socket>();
        try
        {
            // All are open, each greeted by its own server thread, before any
            // sends: a relay that serves one connection at a time cannot pass.
            for (int i = 0; i < count; i++)
                connections.Add(ConnectToPublished(port, nonet));
            var echoed = connections.AsParallel().WithDegreeOfParallelism(count).Select((c, i) =>
            {
                byte[] payload = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat($"[connection {i:D3}]", 1000)));
                c.Send(payload);
                var got = new byte[payload.Length];
                int n = 0;
                while (n < got.Length && c.Receive(got, n, got.Length - n, SocketFlags.None) is var k && k > 0)
                    n += k;
                return got.AsSpan(0, n).SequenceEqual(payload);
            }).ToList();
            Assert.That(echoed, Has.Count.EqualTo(count).And.All.True);
            foreach (var c in connections)
                c.Dispose();
            var r = Harness.Finish(nonet);
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
        }
        finally
        {
            connections.ForEach(c => c.Dispose());
            Stop(nonet);
        }
    }

    [Test]
    public void Data_the_command_sent_just_before_exiting_reaches_the_host_through_a_publish()
    {
        int port = FreeHostPort();
        const string server = """
            import hashlib, os, socket, sys
            data = os.urandom(8 << 20)
            print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
            s = socket.socket()
            s.bind(("127.0.0.1", int(sys.argv[1])))
            s.listen(1)
            c, _ = s.accept()
            c.sendall(b"hello\n" + data)
            os._exit(0)
            """;
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--publish", $"{port}", Python, "-c", server, $"{port}"]);
        try
        {
            string expected = ReadLine(nonet);
            using var connection = ConnectToPublished(port, nonet);
            using var stream = new NetworkStream(connection);
            byte[] data;
            using (var all = new MemoryStream())
            {
                stream.CopyTo(all);
                data = all.ToArray();
            }
            Assert.That($"{data.Length} {Convert.ToHexStringLower(SHA256.HashData(data))}", Is.EqualTo(expected),
                "the host received everything the command sent");
            var r = Harness.Finish(nonet);
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
        }
        finally
        {
            Stop(nonet);
        }
    }

    [Test]
    public void A_busy_host_port_stops_nonet_before_the_command_runs()
    {
        using var busy = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        busy.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        busy.Listen();
        int port = ((IPEndPoint)busy.LocalEndPoint!).Port;
        string dir = Harness.TempDirectory(Who);
        var r = Nonet("--publish", $"{port}", "touch", $"{dir}/ran");
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        AssertOneLineError(r);
        Assert.That(r.Stderr, Does.Contain($"{port}"), "the message names the port");
        Assert.That(File.Exists($"{dir}/ran"), Is.False, "the command did not run");
    }

    // ---- specifications -------------------------------------------------------

    [TestCase("--forward", "70000")]
    [TestCase("--forward", "65536")]
    [TestCase("--forward", "0")]
    [TestCase("--forward", "abc")]
    [TestCase("--forward", "")]
    [TestCase("--forward", "5432:")]
    [TestCase("--forward", ":5432")]
    [TestCase("--forward", "5432:99999")]
    [TestCase("--forward", "::1:5432")]
    [TestCase("--forward", "[::1]")]
    [TestCase("--forward", "[::1:5432")]
    [TestCase("--forward", "localhost:5432")]
    [TestCase("--forward", "example.com:80:8080")]
    [TestCase("--forward", "15432:127.0.0.1:5432:1")]
    [TestCase("--forward", "127.0.0.1:5432:15432")]
    [TestCase("--forward", "300.1.1.1:80")]
    [TestCase("--publish", "70000")]
    [TestCase("--publish", "0")]
    [TestCase("--publish", "http")]
    [TestCase("--publish", "127.0.0.1:8080")]
    [TestCase("--publish", "[::1]:8080")]
    [TestCase("--publish", "8080:")]
    [TestCase("--publish", "1:2:3")]
    public void A_malformed_spec_gives_125_and_one_line(string option, string spec)
    {
        string dir = Harness.TempDirectory(Who);
        var r = Nonet(option, spec, "touch", $"{dir}/ran");
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        AssertOneLineError(r);
        Assert.That(r.Stderr, Does.Contain(option), "the message names the option");
        if (spec.Length > 0)
            Assert.That(r.Stderr, Does.Contain(spec), "the message names the spec");
        Assert.That(File.Exists($"{dir}/ran"), Is.False, "the command did not run");
    }

    [TestCase("--forward")]
    [TestCase("--publish")]
    public void An_option_without_its_spec_gives_125_and_one_line(string option)
    {
        var r = Nonet(option);
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        AssertOneLineError(r);
        Assert.That(r.Stderr, Does.Contain(option));
    }

    [TestCase("--forward 5000 --forward 5000:5001", "5000")]
    [TestCase("--forward 5000 --forward [::1]:5000", "5000")]
    [TestCase("--publish {0} --publish {0}:9000", "{0}")]
    [TestCase("--forward 5000 --publish {0}:5000", "5000")]
    public void Conflicting_specs_give_125_naming_the_port(string options, string named)
    {
        int port = FreeHostPort();
        string dir = Harness.TempDirectory(Who);
        var r = Nonet([.. string.Format(options, port).Split(' '), "touch", $"{dir}/ran"]);
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        AssertOneLineError(r);
        Assert.That(r.Stderr, Does.Contain(string.Format(named, port)), "the message names the port");
        Assert.That(File.Exists($"{dir}/ran"), Is.False, "the command did not run");
    }

    [Test]
    public void Identical_duplicate_specs_are_merged_silently()
    {
        using var server = new HostServer(IPAddress.Loopback);
        var r = Nonet("--forward", $"{server.Port}", "--forward", $"{server.Port}:127.0.0.1:{server.Port}", "--forward", $"{server.Port}",
            Python, "-c", Client, "127.0.0.1", $"{server.Port}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo($"127.0.0.1 {server.Port} echo\n"));
        Assert.That(r.Stderr, Is.Empty);
    }

    // ---- configuration --------------------------------------------------------

    [Test]
    public void The_forward_key_of_the_config_file_works_and_options_add_to_it()
    {
        using var a = new HostServer(IPAddress.Loopback);
        using var b = new HostServer(IPAddress.IPv6Loopback);
        using var c = new HostServer(IPAddress.Loopback);
        string xdg = WriteConfig($"# forwards\nforward = {a.Port}, 7000:[::1]:{b.Port}\n");
        var r = NonetWith(new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg },
            "--forward", $"{c.Port}", Python, "-c", Client, "127.0.0.1", $"{a.Port}", "::1", "7000", "127.0.0.1", $"{c.Port}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo($"127.0.0.1 {a.Port} echo\n::1 7000 echo\n127.0.0.1 {c.Port} echo\n"), r.ToString());
        Assert.That(r.Stderr, Is.Empty);
    }

    [Test]
    public void NONET_FORWARD_overrides_the_config_file()
    {
        using var fromFile = new HostServer(IPAddress.Loopback);
        using var fromEnvironment = new HostServer(IPAddress.Loopback);
        string xdg = WriteConfig($"forward = {fromFile.Port}\n");
        var r = NonetWith(new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg, ["NONET_FORWARD"] = $"{fromEnvironment.Port}" },
            Python, "-c", Client, "127.0.0.1", $"{fromFile.Port}", "127.0.0.1", $"{fromEnvironment.Port}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo($"127.0.0.1 {fromFile.Port} ECONNREFUSED\n127.0.0.1 {fromEnvironment.Port} echo\n"), r.ToString());
    }

    [Test]
    public void The_publish_key_of_the_config_file_works()
    {
        int port = FreeHostPort();
        string xdg = WriteConfig($"publish = {port}:8000\n");
        using var nonet = Harness.Start(Who, Harness.Nonet, [Python, "-c", InnerServer, "127.0.0.1", "8000", "line"],
            new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg });
        try
        {
            using (var connection = ConnectToPublished(port, nonet))
            {
                connection.Send("configured\n"u8);
                Assert.That(ReadToEnd(connection), Is.EqualTo("inner got configured\n"));
            }
            var r = Harness.Finish(nonet);
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
        }
        finally
        {
            Stop(nonet);
        }
    }

    [TestCase("forward", "x")]
    [TestCase("forward", "5432, localhost:80")]
    [TestCase("publish", "70000")]
    public void A_malformed_spec_in_the_config_file_names_file_and_line(string key, string value)
    {
        string xdg = WriteConfig($"# settings\nshell = /bin/sh\n{key} = {value}\n");
        string dir = Harness.TempDirectory(Who);
        var r = NonetWith(new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg }, "touch", $"{dir}/ran");
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        AssertOneLineError(r);
        Assert.That(r.Stderr, Does.StartWith($"nonet: {xdg}/nonet/config:3: {key}"));
        Assert.That(File.Exists($"{dir}/ran"), Is.False, "the command did not run");
    }

    [Test]
    public void Print_config_shows_the_forwarding_settings_and_their_sources()
    {
        int port = FreeHostPort();
        string xdg = WriteConfig($"forward = 5432\npublish = {port}\n");
        var env = new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg };
        var text = Harness.Run(Who, Harness.Nonet, ["--print-config"], env);
        Assert.That(text.ExitCode, Is.Zero, text.ToString());
        Assert.That(text.Stdout, Does.Contain($"# from {xdg}/nonet/config:1\nforward = 5432\n"));
        Assert.That(text.Stdout, Does.Contain($"# from {xdg}/nonet/config:2\npublish = {port}\n"));

        var json = Harness.Run(Who, Harness.Nonet, ["--forward", "[::1]:6379", "--print-config", "--json"], env);
        Assert.That(json.ExitCode, Is.Zero, json.ToString());
        using var doc = JsonDocument.Parse(json.Stdout);
        var settings = doc.RootElement.GetProperty("settings");
        Assert.That(settings.GetProperty("publish").GetProperty("source").GetString(), Is.EqualTo($"{xdg}/nonet/config:2"));
        Assert.That(doc.RootElement.GetProperty("forwards").GetArrayLength(), Is.EqualTo(2), "the configured forward and the option's");
        Assert.That(doc.RootElement.GetProperty("publishes").GetArrayLength(), Is.EqualTo(1));
    }

    [Test]
    public void Self_test_checks_forwarding()
    {
        var r = Nonet("--self-test", "--json");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        using var json = JsonDocument.Parse(r.Stdout);
        var check = json.RootElement.GetProperty("checks").EnumerateArray()
            .SingleOrDefault(c => c.GetProperty("id").GetString() == "forwarding");
        Assert.That(check.ValueKind, Is.EqualTo(JsonValueKind.Object), "a check with id 'forwarding'");
        Assert.That(check.GetProperty("status").GetString(), Is.EqualTo("PASS"), check.ToString());
    }

    // ---- what the command sees, and what is left afterwards ------------------

    [TestCase("exit 0", 0)]
    [TestCase("exit 7", 7)]
    [TestCase("exit 255", 255)]
    [TestCase("kill -TERM $$", 143)]
    public void The_commands_status_is_nonets_with_forwarding_active(string script, int status)
    {
        using var server = new HostServer(IPAddress.Loopback);
        var r = Nonet("--forward", $"{server.Port}", "--publish", $"{FreeHostPort()}", "sh", "-c", script);
        Assert.That(r.ExitCode, Is.EqualTo(status), r.ToString());
        Assert.That(r.Stderr, Is.Empty);
    }

    [Test]
    public void The_command_sees_only_its_own_file_descriptors_with_forwarding_active()
    {
        using var server = new HostServer(IPAddress.Loopback);
        string dir = Harness.TempDirectory(Who);
        string options = $"--forward {server.Port} --forward 7000:[::1]:{server.Port} --publish {FreeHostPort()} --publish {FreeHostPort()}:8000";
        string script = $"exec 5</dev/null; \"$NONET\" ls -l /proc/self/fd > {dir}/out; mv {dir}/out {dir}/plain; "
            + $"\"$NONET\" {options} ls -l /proc/self/fd > {dir}/out; mv {dir}/out {dir}/forwarding; "
            + $"for f in plain forwarding; do awk 'NR>1 {{print $9, $10, $11}}' {dir}/$f; echo ---; done";
        var r = Shell(script);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var parts = System.Text.RegularExpressions.Regex.Replace(r.Stdout, @"/proc/\d+/fd", "/proc/PID/fd").Split("---\n");
        Assert.That(parts[1], Is.EqualTo(parts[0]), "the same descriptors with and without forwarding");
        Assert.That(parts[1], Does.Not.Contain("socket:"));
        Assert.That(parts[0], Does.Contain("5 -> /dev/null"));
    }

    [TestCase("exit")]
    [TestCase("SIGKILL to the command")]
    [TestCase("SIGKILL to nonet")]
    public void Nothing_of_the_forwarding_outlives_nonet(string ending)
    {
        using var server = new HostServer(IPAddress.Loopback);
        int port = FreeHostPort();
        // The command holds a relayed connection each way when it ends.
        const string script = """
            import os, socket, sys
            forward, inner = int(sys.argv[1]), int(sys.argv[2])
            listener = socket.socket()
            listener.bind(("127.0.0.1", inner))
            listener.listen(4)
            out = socket.create_connection(("127.0.0.1", forward), timeout=10)
            out.sendall(b"x")
            assert out.recv(1) == b"x"
            print(os.readlink("/proc/self/ns/net"), os.getpid(), flush=True)
            conn, _ = listener.accept()
            conn.sendall(b"hello\n")
            sys.stdin.readline()
            """;
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--forward", $"{server.Port}", "--publish", $"{port}:8000", Python, "-c", script, $"{server.Port}", "8000"]);
        try
        {
            var line = ReadLine(nonet).Split(' ');
            string netns = line[0];
            Assert.That(netns, Does.Match(@"^net:\[\d+\]$"));
            Assert.That(netns, Is.Not.EqualTo(new FileInfo("/proc/self/ns/net").LinkTarget), "the command runs in its own network namespace");
            using var published = ConnectToPublished(port, nonet);
            // While nonet runs, both checks below see something: they can fail.
            Assert.That(HostListenersOn(port), Is.Not.Empty, "nonet listens on the published port while it runs");
            int pid = int.Parse(line[1]);
            Assert.That(ProcessesInNetworkNamespace(netns), Does.Contain(pid));

            if (ending == "exit")
            {
                nonet.StandardInput.Write('\n');
                nonet.StandardInput.Flush();
            }
            else
            {
                Kill(ending == "SIGKILL to the command" ? pid : nonet.Id);
            }
            Assert.That(nonet.WaitForExit(20_000), Is.True, "nonet exits");
            // Looked at the moment nonet is gone, not when its output closes:
            // a helper that outlived nonet would hold that output open.
            if (ending == "SIGKILL to nonet")
                WaitUntil(() => ProcessesInNetworkNamespace(netns).Count == 0, "the command's namespace empties after nonet's SIGKILL");
            Assert.That(HostListenersOn(port), Is.Empty, "no listener is left on the published port");
            Assert.That(ProcessesInNetworkNamespace(netns), Is.Empty, "no process is left in the command's network namespace");
            var r = Harness.Finish(nonet);
            Assert.That(r.ExitCode, Is.EqualTo(ending == "exit" ? 0 : 137), r.ToString());
            WaitUntil(() => server.Finished.Count == 1, "the forwarded connection is closed on the host side");
            Assert.That(ClosedByPeer(published), Is.True, "the published connection is closed on the host side");
        }
        finally
        {
            Stop(nonet);
        }
    }

    // ---- helpers ---------------------------------------------------------------

    private const int LargeSize = 64 << 20;

    /// <summary>For each HOST PORT pair in argv: connect, send a line, expect
    /// it echoed.  Prints "HOST PORT echo", or the errno name of the failure.</summary>
    private const string Client = """
        import errno, socket, sys
        for host, port in zip(sys.argv[1::2], sys.argv[2::2]):
            try:
                with socket.create_connection((host, int(port)), timeout=10) as s:
                    message = f"hello from inside over {host}\n".encode()
                    s.sendall(message)
                    got = b""
                    while len(got) < len(message):
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        got += chunk
                    result = "echo" if got == message else f"wrong reply {got!r}"
            except OSError as e:
                result = errno.errorcode.get(e.errno, type(e).__name__) if e.errno else type(e).__name__
            print(host, port, result, flush=True)
        """;

    /// <summary>Listens on ADDRESS PORT inside, accepts one connection and
    /// greets it with "hello\n"; then "line": answers one line; "eof": reads to
    /// the end, then says how much came; "echo": echoes to the end, then prints
    /// the byte count and SHA-256 of what it received.</summary>
    private const string InnerServer = """
        import hashlib, socket, sys
        address, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        s = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
        s.bind((address, port))
        s.listen(16)
        c, _ = s.accept()
        c.sendall(b"hello\n")
        h, total = hashlib.sha256(), 0
        if mode == "line":
            c.sendall(b"inner got " + c.makefile("rb").readline())
        else:
            while chunk := c.recv(1 << 16):
                h.update(chunk)
                total += len(chunk)
                if mode == "echo":
                    c.sendall(chunk)
            if mode == "eof":
                c.sendall(f"received {total}\n".encode())
            else:
                print(total, h.hexdigest())
        c.close()
        """;

    private string WriteConfig(string text)
    {
        string xdg = Harness.TempDirectory(Who);
        var r = Shell($"mkdir -p {xdg}/nonet && cat > {xdg}/nonet/config", stdin: Encoding.UTF8.GetBytes(text));
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        return xdg;
    }

    private static void AssertOneLineError(RunResult r)
    {
        Assert.That(r.Stderr, Does.StartWith("nonet: "), r.ToString());
        Assert.That(r.Stderr, Does.EndWith("\n"), r.ToString());
        Assert.That(r.Stderr.TrimEnd('\n'), Does.Not.Contain("\n"), "one line");
        Assert.That(r.Stderr, Does.Not.Contain("   at ").And.Not.Contain("Exception"), "no stack trace");
    }

    /// <summary>A port on 127.0.0.1 that was free a moment ago.</summary>
    internal static int FreeHostPort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    /// <summary>Connects to a published port until the inner server's
    /// greeting arrives: before nonet listens the connection is refused, and
    /// before the inner server listens it is reset.</summary>
    private static Socket ConnectToPublished(int port, Process nonet, IPAddress? address = null)
    {
        address ??= IPAddress.Loopback;
        var deadline = DateTime.UtcNow.AddSeconds(15);
        var failures = new List<string>();
        while (true)
        {
            var s = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000 };
            try
            {
                s.Connect(address, port);
                string greeting = ReadLine(s);
                if (greeting == "hello")
                    return s;
                failures.Add($"'{greeting}' instead of the greeting");
            }
            catch (SocketException e)
            {
                failures.Add(e.SocketErrorCode.ToString());
            }
            s.Dispose();
            if (nonet.HasExited)
                Assert.Fail($"nonet exited ({nonet.ExitCode}) before the published port answered: {nonet.StandardError.ReadToEnd()}");
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"no greeting through published port {port} within 15 s: {string.Join(", ", failures.Distinct())}");
            Thread.Sleep(20);
        }
    }

    private static string ReadLine(Socket s)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (s.Receive(one) == 1 && one[0] != '\n')
            line.Add(one[0]);
        return Encoding.UTF8.GetString(line.ToArray());
    }

    /// <summary>Whether the peer has closed (or reset) the connection within 5 s.</summary>
    private static bool ClosedByPeer(Socket s)
    {
        s.ReceiveTimeout = 5000;
        try
        {
            return s.Receive(new byte[16]) == 0;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode == SocketError.ConnectionReset;
        }
    }

    private static string ReadToEnd(Socket s)
    {
        var all = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = s.Receive(buffer)) > 0)
            all.Write(buffer, 0, n);
        return Encoding.UTF8.GetString(all.ToArray());
    }

    internal static string ReadLine(Process process)
    {
        var read = process.StandardOutput.ReadLineAsync();
        if (!read.Wait(TimeSpan.FromSeconds(20)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("no line from the command within 20 s");
        }
        if (read.Result is null)
        {
            process.WaitForExit(5000);
            Assert.Fail($"the command's output ended early: {process.StandardError.ReadToEnd()}");
        }
        return read.Result!;
    }

    private static void Stop(Process process)
    {
        if (!process.HasExited)
            process.Kill(entireProcessTree: true);
    }

    private static void Kill(int pid)
    {
        var r = Harness.Run(Identity.Caller, "kill", ["-s", "KILL", $"{pid}"]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
    }

    private static void WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail("within 5 s: " + what);
            Thread.Sleep(20);
        }
    }

    /// <summary>Sockets in LISTEN state (0A) on a port, in this process's
    /// network namespace: the host's.</summary>
    private static List<string> HostListenersOn(int port)
    {
        string suffix = $":{port:X4}";
        return new[] { "/proc/net/tcp", "/proc/net/tcp6" }
            .SelectMany(file => File.ReadLines(file).Skip(1)
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f[1].EndsWith(suffix, StringComparison.Ordinal) && f[3] == "0A")
                .Select(f => $"{file}: {f[1]} {f[3]}"))
            .ToList();
    }

    /// <summary>The processes whose /proc/PID/ns/net is <paramref name="netns"/>.</summary>
    private static List<int> ProcessesInNetworkNamespace(string netns)
    {
        var found = new List<int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
                continue;
            try
            {
                if (new FileInfo(Path.Combine(dir, "ns", "net")).LinkTarget == netns)
                    found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone, or not ours to look at.
            }
        }
        return found;
    }

    /// <summary>What one connection brought to a <see cref="HostServer"/>, and
    /// whether it ended with a reset (or error) rather than a close.</summary>
    private sealed record Received(long Bytes, string Sha256, bool Reset);

    /// <summary>
    /// A TCP server in the test process, on the caller's side of nonet.  It
    /// echoes, or (<c>replyAfterEof</c>) reads to the end and then says how
    /// many bytes came.  Each finished connection leaves a <see cref="Received"/>.
    /// </summary>
    private sealed class HostServer : IDisposable
    {
        private readonly Socket listener;
        private readonly bool replyAfterEof;
        private int accepted;

        public HostServer(IPAddress address, bool listen = true, bool replyAfterEof = false)
        {
            this.replyAfterEof = replyAfterEof;
            listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(address, 0));
            Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
            if (listen)
                Listen();
        }

        public int Port { get; }

        public int Accepted => Volatile.Read(ref accepted);

        public ConcurrentQueue<Received> Finished { get; } = new();

        public void Listen()
        {
            listener.Listen(1024);
            Task.Run(AcceptLoop);
        }

        public void Dispose() => listener.Dispose();

        private async Task AcceptLoop()
        {
            while (true)
            {
                Socket connection;
                try
                {
                    connection = await listener.AcceptAsync();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    return;
                }
                Interlocked.Increment(ref accepted);
                _ = Task.Run(() => Serve(connection));
            }
        }

        private async Task Serve(Socket connection)
        {
            using var stream = new NetworkStream(connection, ownsSocket: true);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 16];
            long total = 0;
            bool reset = false;
            try
            {
                int n;
                while ((n = await stream.ReadAsync(buffer)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                    total += n;
                    if (!replyAfterEof)
                        await stream.WriteAsync(buffer.AsMemory(0, n));
                }
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                reset = true;
            }
            try
            {
                if (!reset && replyAfterEof)
                    await stream.WriteAsync(Encoding.ASCII.GetBytes($"received {total}\n"));
                if (!reset)
                    connection.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                // The client need not wait for the answer.
            }
            Finished.Enqueue(new Received(total, Convert.ToHexStringLower(hash.GetHashAndReset()), reset));
        }
    }
}
