using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using System.Threading;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// The "outside" for --allow's tests, and nothing else: a network namespace
/// the test makes, joined to the host's by a veth pair, with the test's own
/// addresses (10.213.N.1 and fd00:213::N:1 on the host's side, 10.213.N.2
/// and fd00:213::N:2 on the far side; N differs per instance and per test
/// process, so that runs in other checkouts do not collide), a stub
/// nameserver there (outside.py, answering from <see cref="Zone"/>) and TCP
/// listeners there.  The far side has no other interface and no route, so
/// nothing it does reaches any other address.
///
/// Only root can make it (as root the harness also runs nonet as the
/// ordinary account, which then reaches it from the host's namespace like
/// anyone); for an ordinary caller <see cref="Create"/> ignores the test
/// with the reason.
///
/// nonet reads the host's /etc/resolv.conf, which names the machine's real
/// nameserver: <see cref="Run"/> runs nonet in a mount namespace of its
/// own (unshare -m, as root, before setpriv for the ordinary account) where
/// a resolv.conf naming the stub is bind-mounted over /etc/resolv.conf.
/// nonet has no setting or variable for another file, on purpose: a way
/// to point nonet at other nameservers would be one more thing to attack.
/// </summary>
public sealed class Outside : IDisposable
{
    private static int counter;

    private readonly string directory;
    private readonly string hostLink = "";
    private readonly Process? stub;
    private bool disposed;

    public string Namespace { get; } = "";

    /// <summary>The host's side of the veth pair (one of the host's own
    /// addresses while the test runs).</summary>
    public IPAddress HostV4 { get; }
    public IPAddress HostV6 { get; }

    /// <summary>The far side: the stub nameserver and the listeners.</summary>
    public IPAddress V4 { get; }
    public IPAddress V6 { get; }

    /// <summary>The TCP ports listening on <see cref="V4"/> and
    /// <see cref="V6"/>; each connection reads "outside ADDR PORT\n".</summary>
    public IReadOnlyList<int> Ports { get; }

    /// <summary>The stub's answers (see outside.py); written by
    /// <see cref="SetZone"/>, read at every query.</summary>
    public string ZoneFile => Path.Combine(directory, "zone.json");

    /// <summary>Every query the stub got, one JSON object per line.</summary>
    public string QueryLog => Path.Combine(directory, "queries.jsonl");

    /// <summary>A resolv.conf naming only the stub (IPv4).</summary>
    public string ResolvConf => Path.Combine(directory, "resolv.conf");

    /// <summary>Makes the namespace, the link and the stub, or ignores the
    /// calling test for a caller that is not root.</summary>
    public static Outside Create(params int[] ports)
    {
        if (!Harness.IsRoot)
            Assert.Ignore("ignored because only root can make the test's outside network namespace (a veth pair into the host's); CI runs as root");
        return new Outside(ports.Length == 0 ? [8080] : ports);
    }

    private Outside(int[] ports)
    {
        Ports = ports;
        directory = Path.Combine(Path.GetTempPath(), "nonet-outside-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        File.SetUnixFileMode(directory, (UnixFileMode)0b111_101_101);

        // N from this process and a counter; a link name that exists means
        // another run holds N: take the next.
        int n = (Environment.ProcessId * 7 + Interlocked.Increment(ref counter)) % 250 + 1;
        string? error = null;
        for (int tries = 0; tries < 250; tries++, n = n % 250 + 1)
        {
            var r = Root("ip", "link", "add", $"nt213h{n}", "type", "veth", "peer", "name", $"nt213o{n}");
            if (r.ExitCode == 0)
            {
                error = null;
                break;
            }
            error = r.ToString();
        }
        if (error is not null)
            Assert.Fail("cannot make a veth pair for the outside: " + error);
        hostLink = $"nt213h{n}";
        Namespace = $"nonet-outside-{Environment.ProcessId}-{n}";
        HostV4 = IPAddress.Parse($"10.213.{n}.1");
        V4 = IPAddress.Parse($"10.213.{n}.2");
        HostV6 = IPAddress.Parse($"fd00:213::{n:x}:1");
        V6 = IPAddress.Parse($"fd00:213::{n:x}:2");
        try
        {
            Must("ip", "netns", "add", Namespace);
            Must("ip", "link", "set", $"nt213o{n}", "netns", Namespace);
            Must("ip", "addr", "add", $"{HostV4}/24", "dev", hostLink);
            Must("ip", "-6", "addr", "add", $"{HostV6}/112", "dev", hostLink, "nodad");
            Must("ip", "link", "set", hostLink, "up");
            Must("ip", "netns", "exec", Namespace, "ip", "link", "set", "lo", "up");
            Must("ip", "netns", "exec", Namespace, "ip", "addr", "add", $"{V4}/24", "dev", $"nt213o{n}");
            Must("ip", "netns", "exec", Namespace, "ip", "-6", "addr", "add", $"{V6}/112", "dev", $"nt213o{n}", "nodad");
            Must("ip", "netns", "exec", Namespace, "ip", "link", "set", $"nt213o{n}", "up");

            File.WriteAllText(ResolvConf, $"nameserver {V4}\noptions timeout:5 attempts:1\n");
            File.WriteAllText(QueryLog, "");
            SetZone([]);
            foreach (var path in new[] { ResolvConf, QueryLog, ZoneFile })
                File.SetUnixFileMode(path, (UnixFileMode)0b110_100_100);

            var psi = new ProcessStartInfo("ip")
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { "netns", "exec", Namespace, "/usr/bin/python3", Path.Combine(Harness.RepositoryRoot, "Nonet.Tests/EndToEnd/outside.py"), ZoneFile, QueryLog })
                psi.ArgumentList.Add(a);
            foreach (int port in ports)
            {
                psi.ArgumentList.Add($"{V4},{port}");
                psi.ArgumentList.Add($"{V6},{port}");
            }
            psi.Environment["OUTSIDE_DNS"] = $"{V4},{V6}";
            stub = Process.Start(psi)!;
            var ready = stub.StandardOutput.ReadLineAsync();
            if (!ready.Wait(TimeSpan.FromSeconds(20)) || ready.Result != "ready")
                Assert.Fail("the outside's stub did not start: " + (stub.HasExited ? stub.StandardError.ReadToEnd() : "no 'ready' in 20 s"));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The stub's answers: name to {"A": [...], "AAAA": [...],
    /// "CNAME": ..., "HTTPS": [{"v4": [...], "v6": [...]}], "behaviour": ...}.</summary>
    public void SetZone(JsonObject zone)
    {
        string temporary = ZoneFile + ".new";
        File.WriteAllText(temporary, zone.ToJsonString());
        File.SetUnixFileMode(temporary, (UnixFileMode)0b110_100_100);
        File.Move(temporary, ZoneFile, overwrite: true);
    }

    /// <summary>One name's entry in the stub's zone: its addresses, a
    /// CNAME (with <paramref name="loop"/>, its target points back), HTTPS
    /// records with address hints, or a behaviour (silent, garbage,
    /// mismatch-id, mismatch-question, compression-loop, servfail,
    /// truncate: TC over UDP, many: 1,000 A records).</summary>
    public static JsonObject Entry(string[]? a = null, string[]? aaaa = null, string? cname = null, bool loop = false,
        string? behaviour = null, params (string[] V4, string[] V6)[] https)
    {
        var entry = new JsonObject();
        if (a is not null)
            entry["A"] = new JsonArray([.. a.Select(x => (JsonNode)x)]);
        if (aaaa is not null)
            entry["AAAA"] = new JsonArray([.. aaaa.Select(x => (JsonNode)x)]);
        if (cname is not null)
            entry["CNAME"] = cname;
        if (loop)
            entry["loop"] = true;
        if (behaviour is not null)
            entry["behaviour"] = behaviour;
        if (https.Length > 0)
        {
            entry["HTTPS"] = new JsonArray([.. https.Select(h => (JsonNode)new JsonObject
            {
                ["v4"] = new JsonArray([.. h.V4.Select(x => (JsonNode)x)]),
                ["v6"] = new JsonArray([.. h.V6.Select(x => (JsonNode)x)]),
            })]);
        }
        return entry;
    }

    /// <summary>The queries the stub got so far.</summary>
    public IReadOnlyList<JsonObject> Queries() =>
        File.ReadAllLines(QueryLog).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();

    /// <summary>
    /// Runs nonet (with <paramref name="nonetArguments"/>) as
    /// <paramref name="who"/>, with /etc/resolv.conf naming the stub (or
    /// <paramref name="resolvConf"/>'s text), in a mount namespace of its
    /// own so that nothing else on the machine sees the change.
    /// </summary>
    public RunResult Run(Identity who, IEnumerable<string> nonetArguments, string? resolvConf = null,
        IDictionary<string, string?>? environment = null, TimeSpan? timeout = null, string? workingDirectory = null)
    {
        string file = ResolvConf;
        if (resolvConf is not null)
        {
            file = Path.Combine(directory, "resolv-" + Guid.NewGuid().ToString("N")[..8] + ".conf");
            File.WriteAllText(file, resolvConf);
            File.SetUnixFileMode(file, (UnixFileMode)0b110_100_100);
        }
        var env = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>());
        var command = new List<string> { "--mount", "--propagation", "private", "sh", "-c", "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"", file };
        if (who == Identity.Unprivileged)
        {
            command.AddRange(["setpriv", $"--reuid={Harness.UnprivilegedUser}", $"--regid={Harness.UnprivilegedUser}", "--init-groups", "--"]);
            env["HOME"] = Harness.Home(who);
            env["USER"] = env["LOGNAME"] = Harness.UnprivilegedUser;
        }
        command.Add(Harness.Nonet);
        command.AddRange(nonetArguments);
        return Harness.Run(Identity.Root, "unshare", command, env, workingDirectory: workingDirectory, timeout: timeout);
    }

    private static RunResult Root(params string[] args) =>
        Harness.Run(Identity.Root, args[0], args[1..], timeout: TimeSpan.FromSeconds(20));

    private static void Must(params string[] args)
    {
        var r = Root(args);
        if (r.ExitCode != 0)
            Assert.Fail($"{string.Join(' ', args)}: {r}");
    }

    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        if (stub is { HasExited: false })
        {
            stub.Kill(entireProcessTree: true);
            stub.WaitForExit(10_000);
        }
        stub?.Dispose();
        // Deleting one end of a veth pair deletes both; deleting the
        // namespace ends what still runs in it.
        if (hostLink.Length > 0)
            Root("ip", "link", "del", hostLink);
        if (Namespace is { Length: > 0 })
            Root("ip", "netns", "del", Namespace);
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A listener on the host's own 127.0.0.1 (or ::1), which
/// --allow must never let the command reach: it counts what it accepts.</summary>
public sealed class HostLoopbackListener : IDisposable
{
    private readonly TcpListener listener;
    private readonly Thread thread;
    private int accepted;

    public HostLoopbackListener(IPAddress? address = null)
    {
        listener = new TcpListener(address ?? IPAddress.Loopback, 0);
        listener.Start();
        thread = new Thread(Accept) { IsBackground = true };
        thread.Start();
    }

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    public int Accepted => Volatile.Read(ref accepted);

    private void Accept()
    {
        try
        {
            while (true)
            {
                using var client = listener.AcceptTcpClient();
                Interlocked.Increment(ref accepted);
                client.GetStream().Write("host loopback\n"u8);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
        }
    }

    public void Dispose() => listener.Stop();
}
