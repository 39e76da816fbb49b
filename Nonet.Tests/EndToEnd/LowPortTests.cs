using System.IO;
using System.Net;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// Only the network changes (issue 20): inside, the ports below
/// net.ipv4.ip_unprivileged_port_start need privilege as they do outside.
/// An ordinary user cannot bind port 1 inside, as outside; root, which
/// holds CAP_NET_BIND_SERVICE outside but no capability inside, still can.
/// A --forward to a low inner port listens there all the same: the
/// launcher binds it while it holds its capabilities.
/// </summary>
public sealed class LowPortTests(Identity identity) : EndToEndTest(identity)
{
    private const string Bind = """
        import socket, sys
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", int(sys.argv[1])))
            print("bound")
        except PermissionError:
            print("EACCES")
        """;

    private static int OutsidePortStart =>
        int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim());

    /// <summary>Root (uid 0 with its capabilities) may bind any port outside.</summary>
    private bool MayBindAnyPort => Who == Identity.Root || (Who == Identity.Caller && Harness.IsRoot);

    [Test]
    public void Binding_port_1_works_or_fails_inside_as_it_does_outside()
    {
        var outside = Harness.Run(Who, Python, ["-c", Bind, "1"]);
        var inside = Nonet(Python, "-c", Bind, "1");
        Assert.That(outside.ExitCode, Is.Zero, outside.ToString());
        Assert.That(inside.ExitCode, Is.Zero, inside.ToString());
        string expected = MayBindAnyPort || OutsidePortStart <= 1 ? "bound\n" : "EACCES\n";
        Assert.That(outside.Stdout, Is.EqualTo(expected), "outside, as this identity");
        Assert.That(inside.Stdout, Is.EqualTo(expected), "inside, the same");
    }

    [Test]
    public void The_namespace_keeps_the_callers_unprivileged_port_start()
    {
        var r = Nonet("cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout.Trim(), Is.EqualTo(MayBindAnyPort ? "0" : $"{OutsidePortStart}"),
            "the host's value, or 0 for a caller that may bind any port outside (and has no capability inside)");
    }

    [Test]
    public void A_forward_to_port_80_listens_there_though_the_command_cannot_bind_port_81()
    {
        using var host = new PortOrderTests.GreetingServer(IPAddress.Loopback, "host 8080");
        const string script = """
            import socket, subprocess, sys
            with socket.create_connection(("127.0.0.1", 80), timeout=10) as c:
                print(c.makefile().readline().strip())
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", 81))
                print("81 bound")
            except PermissionError:
                print("81 EACCES")
            """;
        var r = Nonet("--forward", $"80:{host.Port}", Python, "-c", script);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        bool lowIsFree = MayBindAnyPort || OutsidePortStart <= 81;
        Assert.That(r.Stdout, Is.EqualTo($"host 8080\n81 {(lowIsFree ? "bound" : "EACCES")}\n"), r.ToString());
        Assert.That(host.Accepted, Is.EqualTo(1));
    }
}
