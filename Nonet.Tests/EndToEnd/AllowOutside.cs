using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// The "outside" of the connect hand-over's tests: a network namespace made
/// for the test, joined to the host's by a veth pair (10.213.N.0/24 and
/// fd00:213:N::/64, N chosen free at random, so that the DNS tests' own
/// outside at 10.213.0.0/24 never collides), with listeners there
/// (AllowPrograms/outside_server.py), and a listener on the host's own
/// 127.0.0.1 that must stay out of reach.  Nothing is ever sent anywhere
/// else.  Making it needs root: for an ordinary caller the tests that need
/// it are ignored, as other root-only tests are.
/// </summary>
public sealed class AllowOutside : IDisposable
{
    public const int HttpPort = 8080;
    public const int OtherHttpPort = 8081;
    public const int CountPort = 7000;
    public const int UdpPort = 7001;
    public const int ClosedPort = 9;

    private readonly string netns;
    private readonly string hostVeth;
    private readonly Process server;
    private readonly TcpListener hostLoopback;
    private readonly Socket hostAbstract;
    private int hostLoopbackAccepts;
    private int hostAbstractAccepts;

    /// <summary>10.213.N.2: the address tests allow.</summary>
    public string Allowed => $"10.213.{Subnet}.2";

    /// <summary>10.213.N.3: an outside address no test allows.</summary>
    public string Forbidden => $"10.213.{Subnet}.3";

    /// <summary>10.213.N.99: an address nobody answers (a black hole).</summary>
    public string Silent => $"10.213.{Subnet}.99";

    public string AllowedV6 => $"fd00:213:{Subnet}::2";

    public string ForbiddenV6 => $"fd00:213:{Subnet}::3";

    public string SilentV6 => $"fd00:213:{Subnet}::99";

    public int Subnet { get; }

    /// <summary>The host's 127.0.0.1 listener's port.</summary>
    public int HostLoopbackPort { get; }

    /// <summary>The host's abstract Unix socket name (without its leading NUL).</summary>
    public string HostAbstractName { get; } = "nonet-allow-test-" + Guid.NewGuid().ToString("N")[..12];

    public int HostLoopbackAccepts => Volatile.Read(ref hostLoopbackAccepts);

    public int HostAbstractAccepts => Volatile.Read(ref hostAbstractAccepts);

    /// <summary>A directory every identity can read: the test programs, built.</summary>
    public string Programs { get; }

    public string Probe => Path.Combine(Programs, "allow_probe");

    private AllowOutside()
    {
        Programs = Path.Combine(Path.GetTempPath(), "nonet-allow-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Programs);
        File.SetUnixFileMode(Programs, (UnixFileMode)0x1ed); // 0755
        string sources = Path.Combine(Harness.RepositoryRoot, "Nonet.Tests", "EndToEnd", "AllowPrograms");
        Must("cc", "-O2", "-Wall", "-pthread", "-o", Probe, Path.Combine(sources, "allow_probe.c"));

        // Files to serve: hello.txt and a git repository (dumb HTTP).
        string web = Path.Combine(Programs, "web");
        Directory.CreateDirectory(web);
        File.WriteAllText(Path.Combine(web, "hello.txt"), "hello from outside\n");
        string work = Path.Combine(Programs, "work");
        Must("git", "init", "-q", "-b", "main", work);
        File.WriteAllText(Path.Combine(work, "README"), "allowed\n");
        Must("git", "-C", work, "add", "README");
        Must("git", "-C", work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one");
        Must("git", "clone", "-q", "--bare", work, Path.Combine(web, "repo.git"));
        Must("git", "-C", Path.Combine(web, "repo.git"), "update-server-info");

        var random = new Random();
        for (int attempt = 0; ; attempt++)
        {
            Subnet = random.Next(100, 250);
            netns = $"nonet-allow-{Subnet}";
            hostVeth = $"nal{Subnet}h";
            if (Run("ip", "netns", "add", netns).ExitCode == 0)
                break;
            if (attempt > 20)
                throw new InvalidOperationException("no free test network namespace name");
        }
        string outsideVeth = $"nal{Subnet}o";
        Must("ip", "link", "add", hostVeth, "type", "veth", "peer", "name", outsideVeth, "netns", netns);
        Must("ip", "addr", "add", $"10.213.{Subnet}.1/24", "dev", hostVeth);
        Must("ip", "-6", "addr", "add", $"fd00:213:{Subnet}::1/64", "dev", hostVeth, "nodad");
        Must("ip", "link", "set", hostVeth, "up");
        Must("ip", "-n", netns, "link", "set", "lo", "up");
        Must("ip", "-n", netns, "addr", "add", $"{Allowed}/24", "dev", outsideVeth);
        Must("ip", "-n", netns, "addr", "add", $"{Forbidden}/24", "dev", outsideVeth);
        Must("ip", "-n", netns, "-6", "addr", "add", $"{AllowedV6}/64", "dev", outsideVeth, "nodad");
        Must("ip", "-n", netns, "-6", "addr", "add", $"{ForbiddenV6}/64", "dev", outsideVeth, "nodad");
        Must("ip", "-n", netns, "link", "set", outsideVeth, "up");

        var psi = new ProcessStartInfo("ip")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "netns", "exec", netns, "/usr/bin/python3", Path.Combine(sources, "outside_server.py"), web,
                     $"http:{Allowed}:{HttpPort}", $"http:{Allowed}:{OtherHttpPort}", $"http:[{AllowedV6}]:{HttpPort}",
                     $"http:{Forbidden}:{HttpPort}", $"http:[{ForbiddenV6}]:{HttpPort}",
                     $"count:{Allowed}:{CountPort}", $"count:{Forbidden}:{CountPort}", $"udp:{Allowed}:{UdpPort}" })
            psi.ArgumentList.Add(a);
        server = Process.Start(psi)!;
        var ready = server.StandardOutput.ReadLineAsync();
        if (!ready.Wait(TimeSpan.FromSeconds(30)) || ready.Result != "ready")
            throw new InvalidOperationException("the outside server did not start: " + server.StandardError.ReadToEnd());

        hostLoopback = new TcpListener(IPAddress.Loopback, 0);
        hostLoopback.Start(4096);
        HostLoopbackPort = ((IPEndPoint)hostLoopback.LocalEndpoint).Port;
        new Thread(() => AcceptAll(hostLoopback.Server, ref hostLoopbackAccepts)) { IsBackground = true }.Start();

        hostAbstract = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        hostAbstract.Bind(new UnixDomainSocketEndPoint("\0" + HostAbstractName));
        hostAbstract.Listen(4096);
        new Thread(() => AcceptAll(hostAbstract, ref hostAbstractAccepts)) { IsBackground = true }.Start();
    }

    private static void AcceptAll(Socket listener, ref int accepts)
    {
        try
        {
            while (true)
            {
                using var client = listener.Accept();
                Interlocked.Increment(ref accepts);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // closed at the end
        }
    }

    /// <summary>Made for a fixture, or null (with why) when this caller cannot.</summary>
    public static AllowOutside Make()
    {
        if (!Harness.IsRoot)
            Assert.Ignore("ignored because the test's outside network (a network namespace and a veth pair) needs root to make");
        return new AllowOutside();
    }

    /// <summary>How many accepts (or datagrams, "udp:ADDR:PORT") each
    /// outside listener has had, asked from the host.</summary>
    public Dictionary<string, int> Counts()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        string json = http.GetStringAsync($"http://{Allowed}:{HttpPort}/counts").Result;
        using var document = JsonDocument.Parse(json);
        return document.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
    }

    public int Count(string key) => Counts().TryGetValue(key, out int n) ? n : 0;

    private static RunResult Run(string program, params string[] args) =>
        Harness.Run(Identity.Caller, program, args, timeout: TimeSpan.FromSeconds(60));

    private static void Must(string program, params string[] args)
    {
        var r = Run(program, args);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', args)}: {r}");
    }

    public void Dispose()
    {
        try
        {
            server.StandardInput.Close();
            if (!server.WaitForExit(5000))
                server.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
        hostLoopback.Stop();
        hostAbstract.Dispose();
        Run("ip", "link", "del", hostVeth);
        Run("ip", "netns", "del", netns);
        try
        {
            Directory.Delete(Programs, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
