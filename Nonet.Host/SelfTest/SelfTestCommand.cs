using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Threading;
using Nonet.Config;
using Nonet.Forwarding;
using Nonet.Interop;
using Nonet.Launch;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.SelfTest;

internal enum CheckStatus { PASS, FAIL, SKIP }

/// <summary>One line of the report.  Required checks decide the exit status.</summary>
internal sealed record CheckResult(string Id, string Name, CheckStatus Status, string Detail, string? Fix = null, bool Required = true);

internal sealed record SelfTestReport(IReadOnlyList<(string Key, string Value)> Facts, IReadOnlyList<CheckResult> Checks)
{
    /// <summary>For --json, the facts that have a typed value (numbers as
    /// numbers, parts as an object): each writes its own property.</summary>
    public IReadOnlyDictionary<string, Action<Utf8JsonWriter>> Typed { get; init; } = new Dictionary<string, Action<Utf8JsonWriter>>();

    public bool Passed => Checks.All(c => c.Status != CheckStatus.FAIL || !c.Required);
}

/// <summary>
/// nonet --self-test: runs the real execution path (launcher, user and
/// network namespaces, exec) with nonet's own probe as the command, and
/// reports what it found, with a fix for each failure.
/// </summary>
internal static unsafe class SelfTestCommand
{
    public static int Run(NonetConfiguration configuration, bool json)
    {
        var report = Collect(configuration);
        StdStreams.Out.Write(json ? RenderJson(report) : RenderText(report));
        return report.Passed ? ExitCodes.Success : ExitCodes.CheckFailed;
    }

    public static SelfTestReport Collect(NonetConfiguration configuration)
    {
        var facts = HostFacts.Read();
        var checks = new List<CheckResult>();
        FilePath? launcher = null;
        string? launcherError = null;
        try
        {
            launcher = Program.LocateLauncher(configuration);
        }
        catch (NonetException e)
        {
            launcherError = e.Message;
        }

        string? launcherVersion = launcher is null ? null : LauncherVersion(launcher);
        string? kernel = ReadTrimmed("/proc/sys/kernel/osrelease"), distribution = Distribution(), container = Container();
        var info = new List<(string, string)>
        {
            ("nonet", $"{Program.Version} ({Program.HostPath})"),
            ("launcher", launcher is null ? "not found" : $"{launcherVersion ?? "version unknown"} ({launcher})"),
            ("kernel", kernel ?? "unknown"),
            ("distribution", distribution ?? "unknown"),
            ("container", container ?? "none detected"),
            ("user", $"uid {facts.Uid} gid {facts.Gid}"),
            ("configuration", string.Join("; ", configuration.Files.Select(f => f.Path.Shown
                + (f.Skipped is { } why ? $" (skipped: {why})" : f.Exists ? "" : " (not present)")))),
            ("user namespace", facts.InNestedUserNamespace
                ? "nested (uid_map: " + string.Join("; ", UidMapLines(facts)) + ")"
                : "initial"),
        };
        foreach (var name in HostFacts.RelevantSysctls)
            info.Add((name, facts.Sysctl(name) ?? "(not present)"));
        var typed = TypedFacts(facts, launcher, launcherVersion, configuration.Files);
        // In JSON, what was not found is null.
        typed["kernel"] = w => WriteTextOrNull(w, "kernel", kernel);
        typed["distribution"] = w => WriteTextOrNull(w, "distribution", distribution);
        typed["container"] = w => WriteTextOrNull(w, "container", container);

        checks.AddRange(SysctlChecks(facts));

        if (launcher is null)
        {
            checks.Add(new("launcher", "launcher found", CheckStatus.FAIL, launcherError!, "reinstall nonet, or set 'launcher' in its configuration"));
            checks.AddRange(NotReached("the launcher was not found"));
            checks.Add(AllowCheck.Decide(HostNetwork.KernelRelease(), null, AllowConfiguredAt(configuration), "the launcher was not found"));
            return new SelfTestReport(info, checks) { Typed = typed };
        }
        checks.Add(new("launcher", "launcher found", CheckStatus.PASS, launcher.Shown));

        SignalForwarding.HoldInAllThreads();
        var stray = SignalForwarding.ThreadsNotHolding();
        checks.Add(stray.Length == 0
            ? new("signals", "signals held for forwarding", CheckStatus.PASS, "every host thread blocks the forwarded signals")
            : new("signals", "signals held for forwarding", CheckStatus.FAIL, "threads not blocking them: " + string.Join(", ", stray), Bug));

        var (result, probe, elapsed, forwarding) = RunProbe(launcher);
        checks.AddRange(StepChecks(result, facts));
        if (result.Failure is null)
            checks.AddRange(ProbeChecks(probe, facts, result.ExitStatus));
        else
            checks.AddRange(NotReached($"{FailureExplainer.StepNames[result.Failure.Step]} failed"));
        checks.Add(ForwardingCheck(result, probe, forwarding));
        checks.Add(AllowCheck.Decide(HostNetwork.KernelRelease(), probe.TryGetValue("allow_addfd", out var addfd) ? addfd : null,
            AllowConfiguredAt(configuration), result.Failure is null ? null : $"{FailureExplainer.StepNames[result.Failure.Step]} failed"));
        info.Add(("probe run", $"{elapsed.TotalMilliseconds:0} ms"));
        typed["probe run"] = w => w.WriteNumber("probe_run_ms", Math.Round(elapsed.TotalMilliseconds, 1));
        return new SelfTestReport(info, checks) { Typed = typed };
    }

    /// <summary>The lines of /proc/self/uid_map, each with its columns
    /// one space apart.</summary>
    private static IEnumerable<string> UidMapLines(HostFacts facts) =>
        (facts.UidMap ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => string.Join(' ', line.Split(' ', StringSplitOptions.RemoveEmptyEntries)));

    /// <summary>Where the configuration asks for --allow ("environment
    /// NONET_ALLOW", a file and line), or null when it does not.</summary>
    private static string? AllowConfiguredAt(NonetConfiguration configuration)
    {
        var allow = configuration.Describe("allow");
        return ForwardingPlan.SplitList(allow.Value).Any() ? allow.Source : null;
    }

    /// <summary>The facts whose JSON is more than their text.</summary>
    private static Dictionary<string, Action<Utf8JsonWriter>> TypedFacts(HostFacts facts, FilePath? launcher, string? launcherVersion,
        IReadOnlyList<ConfigFileState> files)
    {

        static void Parts(Utf8JsonWriter w, string key, string? version, string path)
        {
            w.WriteStartObject(key);
            if (version is null)
                w.WriteNull("version");
            else
                w.WriteString("version", version);
            w.WriteString("path", path);
            w.WriteEndObject();
        }
        var typed = new Dictionary<string, Action<Utf8JsonWriter>>
        {
            ["nonet"] = w => Parts(w, "nonet", Program.Version, Program.HostPath),
            ["launcher"] = w =>
            {
                if (launcher is null)
                    w.WriteNull("launcher");
                else
                    Parts(w, "launcher", launcherVersion, launcher.Shown);
            },
            ["configuration"] = w =>
            {
                w.WriteStartArray("configuration");
                foreach (var file in files)
                    ConfigReport.WriteFile(w, file);
                w.WriteEndArray();
            },
            ["user namespace"] = w =>
            {
                w.WriteStartObject("user_namespace");
                w.WriteBoolean("nested", facts.InNestedUserNamespace);
                if (facts.InNestedUserNamespace)
                {
                    w.WriteStartArray("uid_map");
                    foreach (var line in UidMapLines(facts))
                        w.WriteStringValue(line);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            },
            ["user"] = w =>
            {
                w.WriteStartObject("user");
                w.WriteNumber("uid", facts.Uid);
                w.WriteNumber("gid", facts.Gid);
                w.WriteEndObject();
            },
        };
        foreach (var name in HostFacts.RelevantSysctls)
        {
            string? value = facts.Sysctl(name);
            typed[name] = w =>
            {
                if (long.TryParse(value, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out long number))
                    w.WriteNumber(name, number);
                else if (value is null)
                    w.WriteNull(name);
                else
                    w.WriteString(name, value);
            };
        }
        return typed;
    }

    private static IEnumerable<CheckResult> SysctlChecks(HostFacts facts)
    {
        string? clone = facts.Sysctl("kernel.unprivileged_userns_clone");
        yield return clone switch
        {
            null => new("userns_clone", "kernel.unprivileged_userns_clone", CheckStatus.SKIP, "not present on this kernel (only some distributions add it)", Required: false),
            "0" when facts.Uid != 0 => new("userns_clone", "kernel.unprivileged_userns_clone", CheckStatus.FAIL, "0: unprivileged users may not create user namespaces", "sudo sysctl -w kernel.unprivileged_userns_clone=1"),
            _ => new("userns_clone", "kernel.unprivileged_userns_clone", CheckStatus.PASS, clone + (facts.Uid == 0 ? " (does not apply to root)" : "")),
        };
        string? apparmor = facts.Sysctl("kernel.apparmor_restrict_unprivileged_userns");
        yield return apparmor switch
        {
            null => new("apparmor_userns", "AppArmor user namespace restriction", CheckStatus.SKIP, "kernel.apparmor_restrict_unprivileged_userns is not present", Required: false),
            "0" => new("apparmor_userns", "AppArmor user namespace restriction", CheckStatus.PASS, "not restricted (0)", Required: false),
            _ => new("apparmor_userns", "AppArmor user namespace restriction", CheckStatus.PASS, $"restricted ({apparmor}): nonet needs its AppArmor profile; the user namespace check below shows whether it is in force", Required: false),
        };
    }

    /// <summary>What the host side of the forwarding check saw.</summary>
    private sealed class ForwardingRun
    {
        public string? SetupError;
        public int EchoedConnections;
        public string PublishResult = "not tried";
        public bool PublishAnswered;
        public bool ProbeDone;
    }

    private static (LaunchResult Result, Dictionary<string, (string Status, string Detail)> Probe, TimeSpan Elapsed, ForwardingRun Forwarding) RunProbe(FilePath launcher)
    {
        // A listener the probe must not see from inside, on a port it must
        // be able to bind there: proof that the loopback is its own.
        using var hostListener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        hostListener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        hostListener.Listen(1);
        int port = ((IPEndPoint)hostListener.LocalEndPoint!).Port;

        // Port forwarding, both ways: an echo server here that the probe
        // reaches through --forward, and a client here that reaches the
        // probe's server through --publish (on a port the kernel picks).
        var forwarding = new ForwardingRun();
        using var echo = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        echo.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        echo.Listen(4);
        int echoPort = ((IPEndPoint)echo.LocalEndPoint!).Port;
        int innerPublishPort = echoPort == 65535 ? 1024 : echoPort + 1;
        if (innerPublishPort == port)
            innerPublishPort = port == 65535 ? 1025 : port + 1;
        PortForwarder? forwarder = null;
        try
        {
            forwarder = PortForwarder.Prepare(new Forwarding.ForwardingPlan(
                [new Forwarding.ForwardSpec(echoPort, IPAddress.Loopback, echoPort)],
                [new Forwarding.PublishSpec(0, innerPublishPort)]));
        }
        catch (Exception e) when (e is NonetException or SystemCallException)
        {
            forwarding.SetupError = e.Message;
        }
        var threads = new List<Thread>();
        if (forwarder is not null)
        {
            int publishedPort = forwarder.PublishedPort(0);
            threads.Add(new Thread(() => Echo(echo, forwarding)) { IsBackground = true });
            threads.Add(new Thread(() => ConnectToPublished(publishedPort, forwarding)) { IsBackground = true });
            threads.ForEach(t => t.Start());
        }

        int* pipe = stackalloc int[2];
        if (pipe2(pipe, O_CLOEXEC) != 0)
            throw new SystemCallException("pipe2", errno);
        byte[] self = Program.HostExecutable.Bytes;
        static byte[] Ascii(int value) => Encoding.ASCII.GetBytes(value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // The probe acts only with this token: the pipe that is its stdout
        // and the namespaces it must not be in (see ProbeToken).
        var host = ProbeToken.Here(pipe[1]);
        var probeArgv = new List<byte[]> { self, Probe.Argument, Encoding.ASCII.GetBytes(host.ToString()), Ascii(port) };
        if (forwarder is not null)
            probeArgv.AddRange([Ascii(echoPort), Ascii(innerPublishPort)]);
        var started = Stopwatch.GetTimestamp();
        LaunchResult result;
        try
        {
            using var runTime = new Runtime.RunTime(forwarder);
            result = NamespaceRunner.Run(new LaunchRequest(launcher.Bytes, self, probeArgv, Program.HostInside(), runTime, StdoutFd: pipe[1]));
        }
        finally
        {
            close(pipe[1]);
            forwarder?.Dispose();
            Volatile.Write(ref forwarding.ProbeDone, true);
        }
        foreach (var thread in threads)
            thread.Join(TimeSpan.FromSeconds(1));
        var elapsed = Stopwatch.GetElapsedTime(started);
        string output;
        using (var reader = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(pipe[0], ownsHandle: true), FileAccess.Read, 1))
        using (var text = new StreamReader(reader, Encoding.UTF8))
            output = text.ReadToEnd();
        var probe = new Dictionary<string, (string, string)>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ', 3);
            if (parts.Length >= 2)
                probe[parts[0]] = (parts[1], parts.Length > 2 ? parts[2] : "");
        }
        return (result, probe, elapsed, forwarding);
    }

    /// <summary>Echoes each connection that --forward brings (one per
    /// address family inside) until the probe is done.</summary>
    private static void Echo(Socket listener, ForwardingRun run)
    {
        try
        {
            while (!Volatile.Read(ref run.ProbeDone))
            {
                if (!listener.Poll(TimeSpan.FromMilliseconds(50), SelectMode.SelectRead))
                    continue;
                using var connection = listener.Accept();
                connection.ReceiveTimeout = connection.SendTimeout = 5000;
                connection.Send(Probe.ReadToEnd(connection));
                connection.Shutdown(SocketShutdown.Send);
                Interlocked.Increment(ref run.EchoedConnections);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The probe is over and the listener closed.
        }
    }

    /// <summary>Connects to the published port until the probe's server
    /// answers; connections that arrive before it listens are reset.</summary>
    private static void ConnectToPublished(int port, ForwardingRun run)
    {
        var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 10;
        while (Stopwatch.GetTimestamp() < deadline && !Volatile.Read(ref run.ProbeDone))
        {
            try
            {
                using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                client.ReceiveTimeout = client.SendTimeout = 5000;
                client.Connect(new IPEndPoint(IPAddress.Loopback, port));
                client.Send("nonet-publish"u8);
                client.Shutdown(SocketShutdown.Send);
                string reply = Encoding.ASCII.GetString(Probe.ReadToEnd(client));
                if (reply == "published nonet-publish")
                {
                    run.PublishResult = $"127.0.0.1:{port} here reached the probe's server inside";
                    run.PublishAnswered = true;
                    return;
                }
                run.PublishResult = reply.Length == 0 ? "connections were closed without an answer" : $"unexpected answer '{reply}'";
            }
            catch (SocketException e)
            {
                run.PublishResult = $"127.0.0.1:{port}: {e.Message}";
            }
            Thread.Sleep(5);
        }
    }

    private static CheckResult ForwardingCheck(LaunchResult result, Dictionary<string, (string Status, string Detail)> probe, ForwardingRun run)
    {
        const string id = "forwarding", name = "port forwarding (--forward, --publish)";
        if (run.SetupError is { } setup)
            return new(id, name, CheckStatus.FAIL, setup, "see the message; nonet could not prepare a published port");
        if (result.Failure is not null)
            return new(id, name, CheckStatus.SKIP, "not reached: the probe did not run");
        var problems = new List<string>();
        if (!probe.TryGetValue("forward", out var forward) || forward.Status != "PASS")
            problems.Add("forward: " + (forward.Detail ?? "the probe reported nothing"));
        if (!probe.TryGetValue("publish", out var publish) || publish.Status != "PASS")
            problems.Add("publish: " + (publish.Detail ?? "the probe reported nothing"));
        if (!run.PublishAnswered)
            problems.Add("publish, host side: " + run.PublishResult);
        return problems.Count == 0
            ? new(id, name, CheckStatus.PASS, $"{forward.Detail}; {run.PublishResult}")
            : new(id, name, CheckStatus.FAIL, string.Join("; ", problems), Bug);
    }

    private static readonly (Step Step, string Id, string Name)[] StepRows =
    [
        (Step.Clone, "userns", "helper spawn and user namespace"),
        (Step.WriteUidMap, "idmap", "uid and gid maps"),
        (Step.UnshareNet, "netns", "network namespace"),
        (Step.LoopbackUp, "lo_set_up", "bring lo up"),
        (Step.Dns, "dns_setup", "nameservers answered inside"),
        (Step.Listen, "forward_setup", "forwarding sockets inside"),
        (Step.Mounts, "mount_setup", "resolver sockets hidden, /proc/sys read-only"),
        (Step.DropCaps, "drop_caps", "drop capabilities"),
        (Step.Exec, "exec", "exec the command"),
    ];

    private static IEnumerable<CheckResult> StepChecks(LaunchResult result, HostFacts facts)
    {
        var failure = result.Failure;
        bool reached = true;
        foreach (var (step, id, name) in StepRows)
        {
            bool failedHere = failure is not null && (failure.Step == step
                || (step == Step.Clone && failure.Step is Step.SpawnLauncher or Step.LauncherStart)
                || (step == Step.WriteUidMap && failure.Step is Step.WriteSetgroups or Step.WriteGidMap or Step.WaitMaps)
                || (step == Step.Listen && failure.Step is Step.ReceiveListeners or Step.Helper)
                || (step == Step.Exec && failure.Step is Step.LauncherEnded or Step.Filter));
            if (!reached)
            {
                yield return new(id, name, CheckStatus.SKIP, "not reached");
                continue;
            }
            if (failedHere)
            {
                var explanation = FailureExplainer.Explain(failure!, facts);
                yield return new(id, name, CheckStatus.FAIL, explanation.Message, explanation.Fix ?? "run again with a newer kernel or outside the container; see nonet(1)");
                reached = false;
                continue;
            }
            yield return new(id, name, CheckStatus.PASS, step switch
            {
                Step.Clone => "clone(CLONE_NEWUSER) succeeded",
                Step.WriteUidMap => $"{facts.Uid} and {facts.Gid} mapped to themselves; setgroups denied",
                Step.UnshareNet => "unshare(CLONE_NEWNET) succeeded",
                Step.LoopbackUp => "SIOCSIFFLAGS IFF_UP on lo succeeded",
                Step.DropCaps => "bounding set emptied but for CAP_NET_RAW (for ping), SECBIT_NOROOT locked",
                Step.Listen => "listeners made inside and handed over; the publish helper started",
                Step.Dns => "each nameserver of /etc/resolv.conf made local inside, its port 53 handed to nonet",
                Step.Mounts => result.Records.Any(r => r.Step == LauncherStep.Mounts)
                    ? "a mount namespace of nonet's own hides them and makes them read-only"
                    : "nothing to hide on this host, and /proc/sys is root's: no mount namespace needed",
                _ => "the probe ran inside",
            });
        }
    }

    private static IEnumerable<CheckResult> ProbeChecks(Dictionary<string, (string Status, string Detail)> probe, HostFacts facts, int exitStatus)
    {
        CheckResult From(string id, string name, string fix, bool required = true)
        {
            if (!probe.TryGetValue(id, out var r))
                return new(id, name, CheckStatus.FAIL, $"the probe reported nothing (exit status {exitStatus})", Bug, required);
            var status = Enum.TryParse<CheckStatus>(r.Status, out var s) ? s : CheckStatus.FAIL;
            return new(id, name, status, r.Detail, status == CheckStatus.FAIL ? fix : null, required);
        }

        string expected = $"uid={facts.Uid} gid={facts.Gid} euid={facts.Uid} egid={facts.Gid}";
        yield return probe.TryGetValue("ids", out var ids)
            ? new("ids", "visible uid/gid", ids.Detail == expected ? CheckStatus.PASS : CheckStatus.FAIL,
                ids.Detail == expected ? $"the command sees uid {facts.Uid} gid {facts.Gid}" : $"expected {expected}, the command sees {ids.Detail}",
                ids.Detail == expected ? null : Bug)
            : new("ids", "visible uid/gid", CheckStatus.FAIL, $"the probe reported nothing (exit status {exitStatus})", Bug);
        foreach (var (id, name, fix, required) in ProbeRows)
        {
            var check = From(id, name, fix, required);
            // Another user's HOME (setpriv or su keeps HOME=/root) is out of
            // reach outside nonet too: nothing nonet did, nothing to fix here.
            if (check is { Id: "home", Status: CheckStatus.FAIL } && HomeOutOfReachHere() is { } why)
                check = check with { Status = CheckStatus.SKIP, Detail = $"{check.Detail}, as outside nonet ({why})", Fix = null };
            yield return check;
        }
    }

    /// <summary>Why HOME cannot be read on the host, outside nonet, or
    /// null when it can.</summary>
    private static string? HomeOutOfReachHere()
    {
        byte[]? home = RawProcess.GetEnvironmentVariable("HOME");
        if (home is not { Length: > 0 })
            return null;
        byte[] path = [.. home, 0];
        fixed (byte* p = path)
        {
            if (access(p, R_OK | X_OK) == 0)
                return null;
            int error = errno;
            stat st;
            return stat(p, &st) == 0 && st.st_uid != geteuid()
                ? $"it belongs to uid {(uint)st.st_uid}"
                : Libc.Describe(error);
        }
    }

    private const string Bug = "report this as a bug, with this report";

    /// <summary>The probe's checks after "ids", in report order.</summary>
    private static readonly (string Id, string Name, string Fix, bool Required)[] ProbeRows =
    [
        ("interfaces", "only lo present", Bug, true),
        ("lo_up", "lo up", Bug, true),
        ("tcp4", "TCP on 127.0.0.1", "check that nothing (a firewall rule in the new namespace?) blocks loopback", true),
        ("tcp6", "TCP on ::1", "enable IPv6 (net.ipv6.conf.all.disable_ipv6=0) if you need ::1", false),
        ("no_route", "no route out", Bug, true),
        ("separate", "loopback separate from the host", Bug, true),
        ("home", "home directory visible", "check the permissions of your home directory", true),
        ("caps", "no capabilities inside", Bug, true),
        ("reconfigure", "namespace cannot be reconfigured", Bug, true),
        ("dns", "name lookups answered \"not found\" at once", Bug, true),
        ("resolver_sockets", "host resolver sockets hidden", Bug, true),
        ("kernel_settings", "/proc/sys read-only inside", Bug, true),
    ];

    private static IEnumerable<CheckResult> NotReached(string why) =>
        ProbeRows.Select(r => new CheckResult(r.Id, r.Name, CheckStatus.SKIP, "not reached: " + why))
            .Prepend(new CheckResult("ids", "visible uid/gid", CheckStatus.SKIP, "not reached: " + why));

    public static string? LauncherVersion(FilePath launcher)
    {
        // The launcher's own --version, run directly (no namespaces).
        int* pipe = stackalloc int[2];
        if (pipe2(pipe, O_CLOEXEC) != 0)
            return null;
        try
        {
            var psi = new NativeStringArray([launcher.Bytes, "--version"u8.ToArray()]);
            using (psi)
            {
                byte* actions = stackalloc byte[Libc.FileActionsSize];
                Libc.posix_spawn_file_actions_init(actions);
                Libc.posix_spawn_file_actions_adddup2(actions, pipe[1], 1);
                int pid;
                int rc = Libc.posix_spawn(&pid, psi[0], actions, null, psi.Pointer, Libc.Environ);
                Libc.posix_spawn_file_actions_destroy(actions);
                close(pipe[1]);
                pipe[1] = -1;
                if (rc != 0)
                    return null;
                byte* buffer = stackalloc byte[256];
                int total = 0;
                nint n;
                while (total < 256 && (n = (nint)read(pipe[0], buffer + total, (size_t)(256 - total))) > 0)
                    total += (int)n;
                int st;
                while (Libc.waitpid(pid, &st, 0) < 0 && Libc.Errno == EINTR)
                {
                }
                string text = Encoding.UTF8.GetString(buffer, total).Trim();
                return text.StartsWith("nonet-launcher ", StringComparison.Ordinal) ? text["nonet-launcher ".Length..] : null;
            }
        }
        finally
        {
            if (pipe[1] >= 0)
                close(pipe[1]);
            close(pipe[0]);
        }
    }

    private static void WriteTextOrNull(Utf8JsonWriter writer, string key, string? value)
    {
        if (value is null)
            writer.WriteNull(key);
        else
            writer.WriteString(key, value);
    }

    private static string? Distribution()
    {
        foreach (var line in ReadLines("/etc/os-release"))
        {
            if (line.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))
                return line["PRETTY_NAME=".Length..].Trim('"');
        }
        return null;
    }

    private static string? Container()
    {
        if (File.Exists("/.dockerenv"))
            return "docker (/.dockerenv)";
        if (File.Exists("/run/.containerenv"))
            return "podman (/run/.containerenv)";
        string? env = Environment.GetEnvironmentVariable("container");
        if (!string.IsNullOrEmpty(env))
            return $"{env} ($container)";
        foreach (var line in ReadLines("/proc/1/cgroup"))
        {
            foreach (var hint in new[] { "docker", "kubepods", "lxc", "containerd" })
            {
                if (line.Contains(hint, StringComparison.Ordinal))
                    return $"{hint} (/proc/1/cgroup)";
            }
        }
        return null;
    }

    private static IEnumerable<string> ReadLines(string path)
    {
        try
        {
            return File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static string? ReadTrimmed(string path) => ReadLines(path).FirstOrDefault()?.Trim();

    public static string RenderText(SelfTestReport report)
    {
        var text = new StringBuilder();
        text.Append("nonet self-test\n");
        // Sysctls (dotted names) get a block of their own, so that their long
        // names do not push every other value to the right.
        var facts = report.Facts.Where(f => !f.Key.Contains('.')).ToList();
        var sysctls = report.Facts.Where(f => f.Key.Contains('.')).ToList();
        int width = facts.Max(f => f.Key.Length) + 2;
        foreach (var (key, value) in facts)
            text.Append("  ").Append((key + ":").PadRight(width)).Append(value).Append('\n');
        if (sysctls.Count > 0)
        {
            text.Append("\nsysctls\n");
            int sysctlWidth = sysctls.Max(f => f.Key.Length) + 1;
            foreach (var (key, value) in sysctls)
                text.Append("  ").Append(key.PadRight(sysctlWidth)).Append("= ").Append(value).Append('\n');
        }
        text.Append("\nchecks\n");
        int nameWidth = report.Checks.Max(c => c.Name.Length) + 2;
        foreach (var check in report.Checks)
        {
            text.Append("  ").Append(check.Status.ToString()).Append("  ").Append(check.Name.PadRight(nameWidth)).Append(check.Detail);
            if (!check.Required && check.Status == CheckStatus.FAIL)
                text.Append(" (not required)");
            text.Append('\n');
            if (check.Status == CheckStatus.FAIL && check.Fix is not null)
                text.Append("        fix: ").Append(check.Fix).Append('\n');
        }
        int passed = report.Checks.Count(c => c.Status == CheckStatus.PASS);
        int failed = report.Checks.Count(c => c.Status == CheckStatus.FAIL);
        int skipped = report.Checks.Count(c => c.Status == CheckStatus.SKIP);
        text.Append($"\nresult: {(report.Passed ? "PASS" : "FAIL")} ({passed} passed, {failed} failed, {skipped} skipped)\n");
        return text.ToString();
    }

    public static string RenderJson(SelfTestReport report)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("result", report.Passed ? "PASS" : "FAIL");
            // Keys in snake_case; the sysctls, under their own names, in an
            // object of their own, as in the text.
            writer.WriteStartObject("facts");
            foreach (var (key, value) in report.Facts.Where(f => !f.Key.Contains('.')))
            {
                if (report.Typed.TryGetValue(key, out var write))
                    write(writer);
                else
                    writer.WriteString(key.Replace(' ', '_'), value);
            }
            writer.WriteStartObject("sysctls");
            foreach (var (key, value) in report.Facts.Where(f => f.Key.Contains('.')))
            {
                if (report.Typed.TryGetValue(key, out var write))
                    write(writer);
                else
                    writer.WriteString(key, value);
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
            writer.WriteStartArray("checks");
            foreach (var check in report.Checks)
            {
                writer.WriteStartObject();
                writer.WriteString("id", check.Id);
                writer.WriteString("name", check.Name);
                writer.WriteString("status", check.Status.ToString());
                writer.WriteBoolean("required", check.Required);
                writer.WriteString("detail", check.Detail);
                if (check.Fix is not null && check.Status == CheckStatus.FAIL)
                    writer.WriteString("fix", check.Fix);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
