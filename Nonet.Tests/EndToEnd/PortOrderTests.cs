using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// The order of a spec's ports (issue 20): the port that listens comes
/// first, as in ssh -L, kubectl port-forward and docker run -p.
/// <c>--forward INNER:[HOSTADDR:]PORT</c> listens inside on INNER;
/// <c>--publish OUTER:INNER</c> listens outside on OUTER.  A publish whose
/// inner port has nothing listening says so once, naming the port tried.
/// </summary>
public sealed class PortOrderTests(Identity identity) : EndToEndTest(identity)
{
    // Connects to each (address, port) inside and prints the first line it
    // reads, or the error's name.
    private const string Client = """
        import errno, socket, sys
        args = sys.argv[1:]
        for address, port in zip(args[::2], args[1::2]):
            try:
                with socket.create_connection((address, int(port)), timeout=10) as s:
                    print(s.makefile().readline().strip())
            except OSError as e:
                print(errno.errorcode.get(e.errno, str(e)))
        """;

    [Test]
    public void A_forward_listens_inside_on_its_first_port_and_reaches_the_host_on_its_last()
    {
        using var host = new GreetingServer(IPAddress.Loopback, "host service");
        const int inner = 5432;
        var r = Nonet("--forward", $"{inner}:{host.Port}", Python, "-c", Client,
            "127.0.0.1", $"{inner}", "::1", $"{inner}", "127.0.0.1", $"{host.Port}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("host service\nhost service\nECONNREFUSED\n"),
            "inner port 5432 leads to the host's port; the host's port number is nothing inside");
        Assert.That(host.Accepted, Is.EqualTo(2));
    }

    [Test]
    public void A_forward_with_an_address_between_its_ports_is_the_full_form()
    {
        using var host = new GreetingServer(IPAddress.IPv6Loopback, "over six");
        var r = Nonet("--forward", $"7000:[::1]:{host.Port}", Python, "-c", Client, "127.0.0.1", "7000");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("over six\n"), r.ToString());
    }

    [TestCase("127.0.0.1:5432:15432", "15432:127.0.0.1:5432")]
    [TestCase("[::1]:6379:6380", "6380:[::1]:6379")]
    public void A_forward_in_0_2_0s_order_stops_nonet_and_says_how_to_write_it(string old, string now)
    {
        string dir = Harness.TempDirectory(Who);
        var r = Nonet("--forward", old, "touch", $"{dir}/ran");
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo(
            $"nonet: --forward '{old}': the inner port comes first, as in ssh -L ([INNERPORT:][HOSTADDR:]PORT): write {now}; see 'nonet --help'\n"));
        Assert.That(System.IO.File.Exists($"{dir}/ran"), Is.False, "the command did not run");
    }

    [Test]
    public void A_publish_listens_outside_on_its_first_port_and_reaches_the_inner_server_on_its_last()
    {
        int outer = ForwardingTests.FreeHostPort();
        const int inner = 8000;
        const string server = """
            import socket, sys
            s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
            print("ready", flush=True)
            c, _ = s.accept()
            c.sendall(b"inner server\n")
            c.close()
            """;
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--publish", $"{outer}:{inner}", Python, "-c", server, $"{inner}"]);
        try
        {
            Assert.That(ForwardingTests.ReadLine(nonet), Is.EqualTo("ready"));
            using (var connection = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000 })
            {
                connection.Connect(IPAddress.Loopback, outer);
                Assert.That(ReadAll(connection), Is.EqualTo("inner server\n"));
            }
            var r = Harness.Finish(nonet);
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
            Assert.That(r.Stderr, Is.Empty, "nothing to say when the inner server answered");
        }
        finally
        {
            Stop(nonet);
        }
    }

    [Test]
    public void A_publish_with_nothing_listening_inside_says_once_per_port_which_inner_port_was_tried()
    {
        int first = ForwardingTests.FreeHostPort();
        int second = ForwardingTests.FreeHostPort();
        while (second == first)
            second = ForwardingTests.FreeHostPort();
        using var nonet = Harness.Start(Who, Harness.Nonet,
            ["--publish", $"{first}:8000", "--publish", $"{second}:8001", "sh", "-c", "echo ready; read line; echo done"]);
        try
        {
            Assert.That(ForwardingTests.ReadLine(nonet), Is.EqualTo("ready"));
            foreach (int port in new[] { first, first, first, second, second })
                Assert.That(ResetOnConnect(port), Is.True, $"a connection to host port {port} is reset");
            var r = Harness.Finish(nonet, "\n"u8.ToArray());
            Assert.That((r.ExitCode, r.Stdout), Is.EqualTo((0, "done\n")), r.ToString());
            Assert.That(r.Stderr, Is.EqualTo(
                $"nonet: --publish {first}:8000: a connection to port {first} was reset: nothing listened on port 8000 inside (said once)\n"
                + $"nonet: --publish {second}:8001: a connection to port {second} was reset: nothing listened on port 8001 inside (said once)\n"));
        }
        finally
        {
            Stop(nonet);
        }
    }

    /// <summary>Connects to 127.0.0.1:<paramref name="port"/> and reports
    /// whether the connection was reset (nonet accepts, then finds nothing
    /// inside).</summary>
    private static bool ResetOnConnect(int port)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000 };
        s.Connect(IPAddress.Loopback, port);
        try
        {
            s.Receive(new byte[16]);
            return false;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode == SocketError.ConnectionReset;
        }
    }

    private static string ReadAll(Socket s)
    {
        var all = new List<byte>();
        var buffer = new byte[256];
        int n;
        while ((n = s.Receive(buffer)) > 0)
            all.AddRange(buffer.AsSpan(0, n).ToArray());
        return Encoding.UTF8.GetString(all.ToArray());
    }

    private static void Stop(Process process)
    {
        if (!process.HasExited)
            process.Kill(entireProcessTree: true);
    }

    /// <summary>A host server on an ephemeral port that sends one line to
    /// each connection and closes it.</summary>
    internal sealed class GreetingServer : IDisposable
    {
        private readonly Socket listener;
        private int accepted;

        public GreetingServer(IPAddress address, string greeting)
        {
            listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(address, 0));
            listener.Listen(16);
            Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
            byte[] line = Encoding.UTF8.GetBytes(greeting + "\n");
            Task.Run(async () =>
            {
                while (true)
                {
                    Socket c;
                    try
                    {
                        c = await listener.AcceptAsync();
                    }
                    catch (Exception e) when (e is SocketException or ObjectDisposedException)
                    {
                        return;
                    }
                    Interlocked.Increment(ref accepted);
                    using (c)
                        c.Send(line);
                }
            });
        }

        public int Port { get; }

        public int Accepted => Volatile.Read(ref accepted);

        public void Dispose() => listener.Dispose();
    }
}
