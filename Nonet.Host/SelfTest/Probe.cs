using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Nonet.Interop;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.SelfTest;

/// <summary>
/// The self-test's inside half: nonet runs itself, through the launcher and
/// the real namespaces, as "nonet --self-test-probe TOKEN PORT".  It looks
/// at what a command sees and prints one line per check, "id STATUS
/// detail", for the host to fold into its report.  PORT is a 127.0.0.1 port
/// the host holds.  With "FORWARDED PUBLISHED" after it, the probe also
/// talks to the host's echo server through --forward FORWARDED and answers
/// one connection that the host makes through --publish PUBLISHED.
///
/// TOKEN ties the probe to the self-test that started it (see
/// <see cref="ProbeToken"/>); without it the probe does nothing at all.
/// Nor does it ever change an interface: its reconfiguration check sets lo's
/// flags to what they are, which the kernel refuses without CAP_NET_ADMIN.
/// </summary>
internal static unsafe class Probe
{
    public static readonly byte[] Argument = "--self-test-probe"u8.ToArray();

    private const ulong SIOCGIFFLAGS = 0x8913;
    private const ulong SIOCSIFFLAGS = 0x8914;
    private const short IFF_UP = 0x1;
    private const short IFF_RUNNING = 0x40;

    private static readonly List<string> lines = [];

    public static int Run(IReadOnlyList<byte[]> args)
    {
        // Before anything else: only inside the namespaces of the self-test
        // that started it.  Run by hand, on the host, it must not act.
        if (args.Count < 2 || !ProbeToken.TryParse(Encoding.ASCII.GetString(args[1]), out var token) || !token.Matches(ProbeToken.Here(1)))
        {
            StdStreams.Error("--self-test-probe is internal to 'nonet --self-test', which runs it inside nonet; run 'nonet --self-test' instead");
            return ExitCodes.NonetFailed;
        }
        args = args.Skip(1).ToList();
        int hostPort = args.Count > 1 && int.TryParse(Encoding.ASCII.GetString(args[1]), out int p) ? p : 0;
        Report("ids", "PASS", $"uid={getuid()} gid={getgid()} euid={geteuid()} egid={getegid()}");
        Check("interfaces", OnlyLoopback);
        Check("lo_up", LoopbackIsUp);
        Check("tcp4", () => TcpRoundTrip(IPAddress.Loopback));
        Check("tcp6", () => TcpRoundTrip(IPAddress.IPv6Loopback));
        Check("no_route", NoRouteOut);
        Check("separate", () => SeparateLoopback(hostPort));
        Check("home", HomeIsVisible);
        Check("caps", NoCapabilities);
        Check("reconfigure", CannotReconfigure);
        Check("dns", LookupIsAnswered);
        Check("resolver_sockets", ResolverSocketsHidden);
        Check("kernel_settings", KernelSettingsReadOnly);
        Check("allow_addfd", AddFdAnswers);
        if (args.Count > 3 && int.TryParse(Encoding.ASCII.GetString(args[2]), out int forwarded)
            && int.TryParse(Encoding.ASCII.GetString(args[3]), out int published))
        {
            Check("forward", () => ThroughForward(forwarded));
            Check("publish", () => ServePublished(published));
        }
        StdStreams.Out.Write(string.Concat(lines.Select(l => l + "\n")));
        return 0;
    }

    private static void Report(string id, string status, string detail) =>
        lines.Add($"{id} {status} {detail.ReplaceLineEndings(" ")}");

    private static void Check(string id, Func<(string Status, string Detail)> check)
    {
        try
        {
            var (status, detail) = check();
            Report(id, status, detail);
        }
        catch (Exception e)
        {
            Report(id, "FAIL", e.Message);
        }
    }

    /// <summary>--allow's hand-over (SECCOMP_IOCTL_NOTIF_ADDFD), asked of the
    /// kernel from inside, where --allow's filter goes; the host decides
    /// with the kernel's release what the line says (<see cref="AllowCheck"/>).</summary>
    private static (string, string) AddFdAnswers()
    {
        var probe = Seccomp.ProbeAddFd();
        if (probe.Supported)
            return ("PASS", "SECCOMP_IOCTL_NOTIF_ADDFD answered a seccomp listener made inside");
        string why = probe.Error switch
        {
            0 => "succeeded with no call waiting",
            Errno.EBUSY => Libc.Describe(probe.Error) + ": a seccomp listener is already in force above this process (nonet under nonet --report or --allow, or another supervisor)",
            Errno.EINVAL when probe.Call.StartsWith("seccomp", StringComparison.Ordinal) => Libc.Describe(probe.Error) + ": this kernel has no seccomp listeners (Linux 5.0)",
            Errno.EINVAL => Libc.Describe(probe.Error) + ": this kernel does not have it (Linux 5.9)",
            _ => Libc.Describe(probe.Error),
        };
        return ("FAIL", $"{probe.Call}: {why}");
    }

    private static (string, string) OnlyLoopback()
    {
        // /proc/self/net/dev lists the interfaces of the reader's own network
        // namespace (unlike /sys/class/net, which shows the mounter's).
        var names = File.ReadAllLines("/proc/self/net/dev").Skip(2)
            .Select(l => l.Split(':')[0].Trim()).Where(n => n.Length > 0).ToList();
        return names is ["lo"] ? ("PASS", "only lo") : ("FAIL", "interfaces: " + string.Join(", ", names));
    }

    private static short LoopbackFlags(int fd)
    {
        byte* ifr = stackalloc byte[40];
        new Span<byte>(ifr, 40).Clear();
        "lo"u8.CopyTo(new Span<byte>(ifr, 16));
        if (ioctl(fd, (int)SIOCGIFFLAGS, ifr) != 0)
            throw new SystemCallException("SIOCGIFFLAGS", errno);
        return *(short*)(ifr + 16);
    }

    private static (string, string) LoopbackIsUp()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        short flags = LoopbackFlags((int)socket.Handle);
        return (flags & IFF_UP) != 0 && (flags & IFF_RUNNING) != 0
            ? ("PASS", "lo is UP and RUNNING")
            : ("FAIL", $"lo flags 0x{flags:x}");
    }

    private static (string, string) CannotReconfigure()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        int fd = (int)socket.Handle;
        byte* ifr = stackalloc byte[40];
        new Span<byte>(ifr, 40).Clear();
        "lo"u8.CopyTo(new Span<byte>(ifr, 16));
        // lo's own flags, unchanged: the kernel checks CAP_NET_ADMIN before
        // it looks at them, and nothing changes even if it let them through.
        *(short*)(ifr + 16) = LoopbackFlags(fd);
        if (ioctl(fd, (int)SIOCSIFFLAGS, ifr) == 0)
            return ("FAIL", "the command may set lo's flags (it could take lo down)");
        int e = errno;
        return e is Errno.EPERM or Errno.EACCES
            ? ("PASS", "setting lo's flags is refused (" + Libc.Describe(e) + ")")
            : ("FAIL", "SIOCSIFFLAGS: " + Libc.Describe(e));
    }

    private static (string, string) TcpRoundTrip(IPAddress address)
    {
        try
        {
            using var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(address, 0));
            listener.Listen(1);
            using var client = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            client.Connect(listener.LocalEndPoint!);
            using var server = listener.Accept();
            client.Send("nonet"u8);
            var buffer = new byte[5];
            server.ReceiveTimeout = 2000;
            int got = 0;
            while (got < 5)
            {
                int n = server.Receive(buffer, got, 5 - got, SocketFlags.None);
                if (n == 0)
                    break;
                got += n;
            }
            return buffer.AsSpan(0, got).SequenceEqual("nonet"u8)
                ? ("PASS", $"connected to {listener.LocalEndPoint} and exchanged data")
                : ("FAIL", "data did not arrive");
        }
        catch (SocketException e) when (address.AddressFamily == AddressFamily.InterNetworkV6
            && e.SocketErrorCode is SocketError.AddressFamilyNotSupported or SocketError.AddressNotAvailable)
        {
            return ("SKIP", "IPv6 is disabled on this host (" + e.Message + ")");
        }
    }

    private static (string, string) NoRouteOut()
    {
        // A UDP connect() only consults the routing table; it sends nothing.
        // 192.0.2.1 and 2001:db8::1 are documentation addresses (RFC 5737, 3849).
        var results = new List<string>();
        foreach (var target in new[] { IPAddress.Parse("192.0.2.1"), IPAddress.Parse("2001:db8::1") })
        {
            using var socket = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                socket.Connect(new IPEndPoint(target, 9));
                return ("FAIL", $"a route to {target} exists");
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.NetworkUnreachable or SocketError.HostUnreachable
                or SocketError.AddressFamilyNotSupported or SocketError.AddressNotAvailable)
            {
                results.Add($"{target}: {e.Message}");
            }
        }
        return ("PASS", "no route: " + string.Join("; ", results));
    }

    private static (string, string) SeparateLoopback(int hostPort)
    {
        if (hostPort <= 0)
            return ("SKIP", "no host port given");
        var endpoint = new IPEndPoint(IPAddress.Loopback, hostPort);
        using (var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            try
            {
                client.Connect(endpoint);
                return ("FAIL", $"reached the host's listener on 127.0.0.1:{hostPort}");
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
            }
        }
        using var own = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        own.Bind(endpoint);
        own.Listen(1);
        return ("PASS", $"the host's 127.0.0.1:{hostPort} is not visible, and the command can bind the same port");
    }

    private static readonly TimeSpan ForwardingTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Inside, 127.0.0.1:PORT and [::1]:PORT reach the host's echo server.</summary>
    private static (string, string) ThroughForward(int port)
    {
        var reached = new List<string>();
        foreach (var address in new[] { IPAddress.Loopback, IPAddress.IPv6Loopback })
        {
            using var client = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            client.ReceiveTimeout = client.SendTimeout = (int)ForwardingTimeout.TotalMilliseconds;
            try
            {
                client.Connect(new IPEndPoint(address, port));
            }
            catch (SocketException e) when (address.AddressFamily == AddressFamily.InterNetworkV6
                && e.SocketErrorCode is SocketError.AddressFamilyNotSupported or SocketError.AddressNotAvailable)
            {
                continue; // no IPv6 here: the IPv4 listener is the one that counts
            }
            byte[] message = Encoding.ASCII.GetBytes($"nonet-forward {address}");
            client.Send(message);
            client.Shutdown(SocketShutdown.Send);
            byte[] echo = ReadToEnd(client);
            if (!echo.AsSpan().SequenceEqual(message))
                return ("FAIL", $"through [{address}]:{port}, the host's echo server answered {echo.Length} bytes that differ from the {message.Length} sent");
            reached.Add(address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]:{port}" : $"{address}:{port}");
        }
        return ("PASS", $"{string.Join(" and ", reached)} reached the host's echo server on 127.0.0.1:{port}");
    }

    /// <summary>A server on 127.0.0.1:PORT inside answers the host once.</summary>
    private static (string, string) ServePublished(int port)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
        listener.Listen(1);
        if (!listener.Poll(ForwardingTimeout, SelectMode.SelectRead))
            return ("FAIL", $"no connection from the host reached 127.0.0.1:{port} inside within {ForwardingTimeout.TotalSeconds:0} s");
        using var connection = listener.Accept();
        connection.ReceiveTimeout = connection.SendTimeout = (int)ForwardingTimeout.TotalMilliseconds;
        byte[] request = ReadToEnd(connection);
        connection.Send("published "u8.ToArray().Concat(request).ToArray());
        return ("PASS", $"the host's connection reached 127.0.0.1:{port} inside ({request.Length} bytes)");
    }

    internal static byte[] ReadToEnd(Socket socket)
    {
        var data = new List<byte>();
        var buffer = new byte[4096];
        int n;
        while ((n = socket.Receive(buffer)) > 0)
            data.AddRange(buffer.AsSpan(0, n).ToArray());
        return data.ToArray();
    }

    private static (string, string) HomeIsVisible()
    {
        // As bytes: a HOME that is not UTF-8 is still a directory.
        byte[]? home = RawProcess.GetEnvironmentVariable("HOME");
        if (home is not { Length: > 0 })
            return ("SKIP", "HOME is not set");
        byte[] path = [.. home, 0];
        fixed (byte* p = path)
        {
            return access(p, R_OK | X_OK) == 0
                ? ("PASS", $"{UserText.Show(home)} is readable")
                : ("FAIL", $"{UserText.Show(home)}: {Libc.Describe(errno)}");
        }
    }

    /// <summary>One A query to the first nameserver of resolv.conf, over
    /// UDP: nonet must answer NXDOMAIN, with its Extended DNS Error, at once.</summary>
    private static (string, string) LookupIsAnswered()
    {
        var nameserver = Dns.ResolvConf.Nameservers(RawFile.ReadText(Dns.ResolvConf.DefaultPath))[0];
        byte[] query = [0x6e, 0x6e, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
            4, (byte)'n', (byte)'o', (byte)'n', (byte)'e', 7, (byte)'e', (byte)'x', (byte)'a', (byte)'m', (byte)'p', (byte)'l', (byte)'e', 0,
            0, 1, 0, 1, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0];
        using var socket = new Socket(nameserver.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveTimeout = 1000;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        socket.SendTo(query, new IPEndPoint(nameserver, 53));
        var reply = new byte[512];
        int n;
        try
        {
            n = socket.Receive(reply);
        }
        catch (SocketException e)
        {
            return ("FAIL", $"no answer from {nameserver}:53 within 1 s ({e.SocketErrorCode})");
        }
        var elapsed = watch.Elapsed.TotalMilliseconds;
        bool nxdomain = n >= 12 && reply[0] == 0x6e && reply[1] == 0x6e && (reply[3] & 0xf) == Dns.DnsMessage.RcodeNxDomain;
        bool explained = Encoding.ASCII.GetString(reply, 0, n).Contains(Dns.DnsMessage.ExtendedErrorText, StringComparison.Ordinal);
        return nxdomain && explained
            ? ("PASS", $"{nameserver}:53 answered \"not found\" in {elapsed:0.0} ms")
            : ("FAIL", $"{nameserver}:53 answered, but not nonet's \"not found\"");
    }

    /// <summary>Each resolver daemon's socket that exists on the host must
    /// refuse connections inside.</summary>
    private static (string, string) ResolverSocketsHidden()
    {
        var present = Launch.InsidePlan.ResolverSockets.Where(RawFile.Exists).ToList();
        if (present.Count == 0)
            return ("PASS", "none on this host (nscd, systemd-resolved, avahi)");
        foreach (var path in present)
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.Connect(new UnixDomainSocketEndPoint(path));
                return ("FAIL", path + " answers inside: lookups through it leave the namespace");
            }
            catch (SocketException)
            {
                // Refused: hidden.
            }
        }
        return ("PASS", "hidden: " + string.Join(", ", present));
    }

    /// <summary>The kernel's settings must not be writable from inside.</summary>
    private static (string, string) KernelSettingsReadOnly()
    {
        byte* path = stackalloc byte[32];
        "/proc/sys/kernel/hostname\0"u8.CopyTo(new Span<byte>(path, 32));
        int fd = open(path, O_WRONLY | O_CLOEXEC, 0);
        if (fd >= 0)
        {
            close(fd);
            return ("FAIL", "/proc/sys/kernel/hostname is writable inside");
        }
        int e = errno;
        return e is Errno.EROFS or Errno.EACCES or Errno.EPERM
            ? ("PASS", "/proc/sys refuses writes (" + Libc.Describe(e) + ")")
            : ("FAIL", "/proc/sys/kernel/hostname: " + Libc.Describe(e));
    }

    private static (string, string) NoCapabilities()
    {
        var status = File.ReadAllLines("/proc/self/status");
        string Field(string name) => status.First(l => l.StartsWith(name + ":", StringComparison.Ordinal))[(name.Length + 1)..].Trim();
        string eff = Field("CapEff"), prm = Field("CapPrm"), amb = Field("CapAmb");
        bool none = ulong.Parse(eff, System.Globalization.NumberStyles.HexNumber) == 0
            && ulong.Parse(prm, System.Globalization.NumberStyles.HexNumber) == 0
            && ulong.Parse(amb, System.Globalization.NumberStyles.HexNumber) == 0;
        return none ? ("PASS", "CapEff, CapPrm and CapAmb are empty") : ("FAIL", $"CapEff={eff} CapPrm={prm} CapAmb={amb}");
    }
}

/// <summary>
/// What the self-test hands its probe, and the probe checks before it acts:
/// the inode of the pipe that is the probe's stdout (only the self-test
/// holds that pipe), and the inodes of the self-test's own user and network
/// namespaces (the probe's must differ: it runs in new ones).
/// </summary>
internal readonly record struct ProbeToken(ulong Pipe, ulong UserNamespace, ulong NetworkNamespace)
{
    public override string ToString() => $"{Pipe}:{UserNamespace}:{NetworkNamespace}";

    public static bool TryParse(string text, out ProbeToken token)
    {
        var parts = text.Split(':');
        token = default;
        if (parts.Length != 3 || !ulong.TryParse(parts[0], out ulong pipe) || !ulong.TryParse(parts[1], out ulong user)
            || !ulong.TryParse(parts[2], out ulong net) || pipe == 0 || user == 0 || net == 0)
            return false;
        token = new ProbeToken(pipe, user, net);
        return true;
    }

    /// <summary>This process's view: the pipe inode of <paramref name="fd"/>
    /// (0 if it is no pipe) and its own namespaces.</summary>
    public static unsafe ProbeToken Here(int fd)
    {
        stat st;
        ulong pipe = fstat(fd, &st) == 0 && ((uint)st.st_mode & 0xf000) == 0x1000 ? (ulong)st.st_ino : 0;
        return new ProbeToken(pipe, Inode("/proc/self/ns/user"), Inode("/proc/self/ns/net"));
    }

    /// <summary>The probe's view matches the self-test's token: the same
    /// pipe, and namespaces that are not the self-test's.</summary>
    public bool Matches(ProbeToken probe) =>
        probe.Pipe == Pipe && probe.UserNamespace != 0 && probe.UserNamespace != UserNamespace
        && probe.NetworkNamespace != 0 && probe.NetworkNamespace != NetworkNamespace;

    private static unsafe ulong Inode(string path)
    {
        byte[] z = Encoding.ASCII.GetBytes(path + "\0");
        fixed (byte* p = z)
        {
            stat st;
            return stat(p, &st) == 0 ? (ulong)st.st_ino : 0;
        }
    }
}
