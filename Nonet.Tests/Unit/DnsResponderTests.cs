using System;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using DnsClient;
using Nonet.Dns;
using Nonet.Runtime;
using Nonet.Forwarding;
using Nonet.Launch;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

/// <summary>
/// nonet's responder on real sockets (on the host's loopback, in this test
/// process), asked by an independent client (DnsClient) and by hostile
/// peers: it answers at once, over UDP and TCP, and nothing a peer sends
/// makes it stop answering the others.
/// </summary>
[NonParallelizable]
public sealed class DnsResponderTests
{
    private DnsResponder responder = null!;
    private EventLoop loop = null!;
    private Thread thread = null!;
    private volatile bool stop;
    private int udpPort;
    private int tcpPort;

    [SetUp]
    public void Start()
    {
        // Sockets made here and handed over, as the launcher's child does.
        var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        udpPort = ((IPEndPoint)udp.LocalEndPoint!).Port;
        var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        tcp.Listen(64);
        tcpPort = ((IPEndPoint)tcp.LocalEndPoint!).Port;
        udp.Blocking = false;
        tcp.Blocking = false;

        responder = new DnsResponder();
        responder.Take(new InsideSocket(InsideSocketKind.DnsUdp, 0, 4, (int)udp.SafeHandle.DangerousGetHandle()));
        responder.Take(new InsideSocket(InsideSocketKind.DnsTcp, 0, 4, (int)tcp.SafeHandle.DangerousGetHandle()));
        // The responder owns the descriptors now.
        udp.SafeHandle.SetHandleAsInvalid();
        tcp.SafeHandle.SetHandleAsInvalid();
        loop = new EventLoop();
        responder.Attach(loop);
        stop = false;
        thread = new Thread(() =>
        {
            while (!stop)
                loop.RunOnce(50);
        }) { IsBackground = true };
        thread.Start();
    }

    [TearDown]
    public void Stop()
    {
        stop = true;
        thread.Join();
        responder.Dispose();
        loop.Dispose();
    }

    private LookupClient Client(bool tcp) => new(new LookupClientOptions(new NameServer(IPAddress.Loopback, tcp ? tcpPort : udpPort))
    {
        UseCache = false,
        UseTcpOnly = tcp,
        Retries = 0,
        Timeout = TimeSpan.FromSeconds(2),
        ThrowDnsErrors = false,
        ContinueOnDnsError = false,
    });

    [TestCase(false, QueryType.A)]
    [TestCase(false, QueryType.AAAA)]
    [TestCase(true, QueryType.A)]
    [TestCase(true, QueryType.MX)]
    public void A_lookup_is_answered_not_found_at_once(bool tcp, QueryType type)
    {
        var watch = Stopwatch.StartNew();
        var response = Client(tcp).Query("pkg.example.org", type);
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)));
        Assert.That(response.Header.ResponseCode, Is.EqualTo(DnsHeaderResponseCode.NotExistentDomain), response.ErrorMessage);
        Assert.That(response.Answers, Is.Empty);
        Assert.That(response.Questions.Single().QueryName.Value, Is.EqualTo("pkg.example.org."));
        Assert.That(responder.Tally.Names, Is.EqualTo(new[] { "pkg.example.org" }));
    }

    [Test]
    public void Several_queries_on_one_tcp_connection_are_each_answered()
    {
        using var tcp = new TcpClient();
        tcp.Connect(IPAddress.Loopback, tcpPort);
        var stream = tcp.GetStream();
        stream.ReadTimeout = 2000;
        // Three framed queries in one write, the last split in two.
        var frames = Enumerable.Range(0, 3).SelectMany(i => Framed(DnsMessageTests.Query($"n{i}.example", id: (ushort)i))).ToArray();
        stream.Write(frames, 0, frames.Length - 5);
        Thread.Sleep(50);
        stream.Write(frames, frames.Length - 5, 5);
        for (int i = 0; i < 3; i++)
        {
            var reply = ReadFramed(stream);
            Assert.That(reply[0] << 8 | reply[1], Is.EqualTo(i));
            Assert.That(reply[3] & 0xf, Is.EqualTo(3), "NXDOMAIN");
        }
        Assert.That(responder.Tally.Queries, Is.EqualTo(3));
    }

    [Test]
    public void A_flood_of_garbage_does_not_stop_the_answers()
    {
        using var flood = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var random = new Random(7);
        var junk = new byte[1500];
        var target = new IPEndPoint(IPAddress.Loopback, udpPort);
        for (int i = 0; i < 20_000; i++)
        {
            random.NextBytes(junk);
            junk[2] &= 0x7f; // queries, not replies: each one is parsed
            flood.SendTo(junk.AsSpan(0, 12 + random.Next(junk.Length - 12)), target);
        }
        var watch = Stopwatch.StartNew();
        var response = Client(tcp: false).Query("after.example", QueryType.A);
        Assert.That(response.Header.ResponseCode, Is.EqualTo(DnsHeaderResponseCode.NotExistentDomain), response.ErrorMessage);
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)));
    }

    [Test]
    public void Peers_that_hold_connections_open_cannot_lock_others_out()
    {
        // Each announces 65535 bytes and sends three: the responder waits
        // for the rest, but never for more than its connection limit.
        var holders = Enumerable.Range(0, DnsResponder.MaxTcpConnections + 10).Select(_ =>
        {
            var c = new TcpClient();
            c.Connect(IPAddress.Loopback, tcpPort);
            c.GetStream().Write([0xff, 0xff, 1, 2, 3]);
            return c;
        }).ToList();
        try
        {
            var response = Client(tcp: true).Query("still.example", QueryType.A);
            Assert.That(response.Header.ResponseCode, Is.EqualTo(DnsHeaderResponseCode.NotExistentDomain), response.ErrorMessage);
            // The oldest holders were closed to make room: an end of file,
            // or a reset, since the responder closed with their bytes unread.
            Assert.That(Closed(holders[0]), Is.True, "the oldest holder must be closed");
        }
        finally
        {
            holders.ForEach(h => h.Dispose());
        }
    }

    [Test]
    public void A_frame_too_short_for_a_header_ends_the_connection()
    {
        using var tcp = new TcpClient();
        tcp.Connect(IPAddress.Loopback, tcpPort);
        var stream = tcp.GetStream();
        stream.ReadTimeout = 2000;
        stream.Write([0, 3, 1, 2, 3]);
        Assert.That(Closed(tcp), Is.True);
        Assert.That(Client(tcp: true).Query("next.example", QueryType.A).Header.ResponseCode,
            Is.EqualTo(DnsHeaderResponseCode.NotExistentDomain));
    }

    private static bool Closed(TcpClient client)
    {
        var stream = client.GetStream();
        stream.ReadTimeout = 2000;
        try
        {
            return stream.Read(new byte[1]) == 0;
        }
        catch (System.IO.IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
        {
            return true;
        }
    }

    private static byte[] Framed(byte[] message) =>
        new[] { (byte)(message.Length >> 8), (byte)message.Length }.Concat(message).ToArray();

    private static byte[] ReadFramed(System.IO.Stream stream)
    {
        var length = new byte[2];
        stream.ReadExactly(length);
        var reply = new byte[length[0] << 8 | length[1]];
        stream.ReadExactly(reply);
        return reply;
    }
}
