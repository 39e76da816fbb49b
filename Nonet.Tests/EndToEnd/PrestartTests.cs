using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// The launcher Native/prestart.c starts before the .NET runtime, for
/// 'nonet COMMAND': that it really starts first (strace), that one nobody
/// takes ends silently and is reaped before nonet exits, that a host that
/// dies early leaves nothing and runs nothing, and that the command gets
/// what nonet was started with.  Binaries are copied to a directory of the
/// test's own, so that processes found by their executable are this test's.
/// </summary>
public sealed class PrestartTests(Identity identity) : EndToEndTest(identity)
{
    private const string Strace = "/usr/bin/strace";

    /// <summary>What the .NET runtime opens first as it starts, before Main
    /// (strace -e trace=openat of nonet: the CPU list, then mountinfo and
    /// the cgroups, for the GC's sizing).</summary>
    private static readonly string[] RuntimeProbes =
        ["/sys/devices/system/cpu/online", "/sys/devices/system/cpu/possible", "/proc/self/mountinfo", "/proc/self/cgroup"];

    private readonly List<string> made = [];

    [TearDown]
    public void RemoveDirectories()
    {
        // What a failed test left running of its copies, then the copies.
        Kill(Directory.GetDirectories("/proc").Select(d => int.TryParse(Path.GetFileName(d), out int pid) ? pid : 0)
            .Where(pid => pid > 0 && Executable(pid) is { } exe && made.Any(dir => exe.StartsWith(dir + "/", StringComparison.Ordinal))));
        foreach (var dir in made)
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        made.Clear();
    }

    private string TempDirectory()
    {
        string dir = Harness.TempDirectory(Who);
        made.Add(dir);
        return dir;
    }

    /// <summary>nonet and its launcher copied to a fresh directory, readable
    /// by the identity: beside each other as in the build tree, or as
    /// installed (DIR/bin/nonet, DIR/libexec/nonet/nonet-launcher).</summary>
    private (string Nonet, string Launcher) Install(bool installed = false)
    {
        string dir = TempDirectory();
        string nonet = Path.Combine(dir, installed ? "bin/nonet" : "nonet");
        string launcher = Path.Combine(dir, installed ? "libexec/nonet/nonet-launcher" : "nonet-launcher");
        Copy(Harness.Nonet, nonet, dir);
        Copy(Path.Combine(Harness.BinDirectory, "nonet-launcher"), launcher, dir);
        return (nonet, launcher);
    }

    /// <summary>Another copy of the launcher, in a directory of its own.</summary>
    private string LauncherElsewhere()
    {
        string dir = TempDirectory();
        string launcher = Path.Combine(dir, "elsewhere", "nonet-launcher");
        Copy(Path.Combine(Harness.BinDirectory, "nonet-launcher"), launcher, dir);
        return launcher;
    }

    /// <summary>Copies a program under <paramref name="top"/>, world-readable
    /// and executable, as are the directories made for it.</summary>
    private static void Copy(string source, string target, string top)
    {
        for (var d = Path.GetDirectoryName(target)!; d.Length > top.Length; d = Path.GetDirectoryName(d)!)
        {
            Directory.CreateDirectory(d);
            File.SetUnixFileMode(d, (UnixFileMode)0b111_101_101);
        }
        File.Copy(source, target);
        File.SetUnixFileMode(target, (UnixFileMode)0b111_101_101);
    }

    /// <summary>A HOME of the identity's whose ~/.config/nonet/config holds
    /// <paramref name="config"/>.</summary>
    private string HomeWithConfig(string config)
    {
        string home = TempDirectory();
        var r = Shell($"mkdir -p {home}/.config/nonet && cat > {home}/.config/nonet/config", stdin: Encoding.UTF8.GetBytes(config));
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        return home;
    }

    private static Dictionary<string, string?> WithHome(string home) =>
        new() { ["HOME"] = home, ["XDG_CONFIG_HOME"] = null };

    /// <summary>One line of strace -f -o FILE: the pid, then the rest.</summary>
    private sealed record TraceLine(int Pid, string Text)
    {
        public override string ToString() => $"{Pid} {Text}";
    }

    private static List<TraceLine> ReadTrace(string path) =>
        File.ReadAllLines(path).Where(l => l.Length > 0).Select(l =>
        {
            // strace pads the pid with spaces to a column.
            int space = l.IndexOf(' ');
            return new TraceLine(int.Parse(l[..space]), l[(space + 1)..].TrimStart(' '));
        }).ToList();

    private static string Head(List<TraceLine> trace, int lines = 40) =>
        "trace:\n" + string.Join('\n', trace.Take(lines));

    /// <summary>nonet under strace -f, its execve() and openat() calls to
    /// <paramref name="traceFile"/>.</summary>
    private RunResult Traced(string traceFile, string nonet, IEnumerable<string> args, IDictionary<string, string?>? environment = null) =>
        Harness.Run(Who, Strace, new[] { "-f", "-q", "-o", traceFile, "-e", "trace=execve,openat", nonet }.Concat(args), environment);

    /// <summary>The index of the launcher's execve() and of the host's first
    /// open of a runtime probe, in the trace of one run of nonet.</summary>
    private static (int Launcher, int Probe) Order(List<TraceLine> trace, string launcher)
    {
        Assert.That(trace, Is.Not.Empty);
        int host = trace[0].Pid;
        Assert.That(trace[0].Text, Does.StartWith("execve("), Head(trace));
        int launched = trace.FindIndex(l => l.Pid != host && l.Text.StartsWith($"execve(\"{launcher}\"", StringComparison.Ordinal));
        int probe = trace.FindIndex(l => l.Pid == host && RuntimeProbes.Any(p => l.Text.StartsWith($"openat(AT_FDCWD, \"{p}\"", StringComparison.Ordinal)));
        Assert.That(launched, Is.GreaterThan(0), $"no execve of {launcher} by a child of nonet\n" + Head(trace));
        Assert.That(probe, Is.GreaterThan(0), "the runtime opened none of its probe files\n" + Head(trace));
        return (launched, probe);
    }

    [TestCase(false, TestName = "{m}(beside nonet, as in the build tree)")]
    [TestCase(true, TestName = "{m}(installed, in ../libexec/nonet)")]
    public void For_nonet_COMMAND_the_launcher_starts_before_the_runtime_does(bool installed)
    {
        var (nonet, launcher) = Install(installed);
        string trace = Path.Combine(TempDirectory(), "trace");
        var r = Traced(trace, nonet, ["sh", "-c", "echo ok"]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("ok\n"), r.ToString());
        Assert.That(r.Stderr, Is.Empty, r.ToString());
        var lines = ReadTrace(trace);
        var (launched, probe) = Order(lines, launcher);
        Assert.That(launched, Is.LessThan(probe), "the launcher started after the runtime began\n" + Head(lines));
    }

    [TestCase("--forward", "9", "true")]
    [TestCase("--", "true")]
    public void With_an_option_first_the_launcher_starts_only_after_the_runtime(params string[] args)
    {
        var (nonet, launcher) = Install();
        string trace = Path.Combine(TempDirectory(), "trace");
        var r = Traced(trace, nonet, args);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stderr, Is.Empty, r.ToString());
        var lines = ReadTrace(trace);
        var (launched, probe) = Order(lines, launcher);
        Assert.That(launched, Is.GreaterThan(probe), "a launcher was started before the runtime\n" + Head(lines));
    }

    /// <summary>Runs a program as a child of a child subreaper (Python's
    /// prctl): what nonet leaves behind when it exits, alive or a zombie
    /// nobody reaped, becomes the wrapper's child, and is listed (pid, state,
    /// executable) in LEFT, then killed and reaped.  Exits as the program did.</summary>
    private const string Subreaper = """
        import ctypes, os, signal, sys
        PR_SET_CHILD_SUBREAPER = 36
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
        left_file, argv = sys.argv[1], sys.argv[2:]
        pid = os.fork()
        if pid == 0:
            os.execv(argv[0], argv)
        _, status = os.waitpid(pid, 0)
        left = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) != os.getpid():
                continue
            try:
                exe = os.readlink(f"/proc/{entry}/exe")
            except OSError:
                exe = "(none: a zombie)"
            left.append(f"{entry} {fields[0]} {exe}")
        with open(left_file, "w") as f:
            f.write("".join(line + "\n" for line in left))
        for line in left:
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except OSError:
                pass
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
        sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
        """;

    private Process StartSubreaped(string leftFile, string nonet, IEnumerable<string> args, IDictionary<string, string?>? environment = null) =>
        Harness.Start(Who, Python, new[] { "-c", Subreaper, leftFile, nonet }.Concat(args), environment);

    /// <summary>What a live process runs; null for a zombie, or one gone.</summary>
    private static string? Executable(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/exe").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Live processes running <paramref name="executable"/>: the
    /// launcher and its child, which is a clone of it until it runs the
    /// command.</summary>
    private static List<int> Running(string executable) =>
        Directory.GetDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out int pid) ? pid : 0)
            .Where(pid => pid > 0 && Executable(pid) == executable)
            .ToList();

    private static List<int> WaitUntilNoneRunning(string executable, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        List<int> left;
        while ((left = Running(executable)).Count > 0 && DateTime.UtcNow < deadline)
            Thread.Sleep(20);
        return left;
    }

    private static string Describe(IEnumerable<int> pids) =>
        string.Join("; ", pids.Select(p => $"{p} (parent {LifetimeTests.Stat(p)?[1]}): {Cmdline(p)}"));

    private static string Cmdline(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static void Kill(IEnumerable<int> pids)
    {
        foreach (int pid in pids)
            Tmds.Linux.LibC.kill(pid, Tmds.Linux.LibC.SIGKILL);
    }

    /// <summary>strace's evidence that nonet started <paramref name="launcher"/>
    /// before the runtime: the test is about a launcher that was prestarted.</summary>
    private void AssertPrestarted(string nonet, string launcher, IEnumerable<string> args, IDictionary<string, string?>? environment, int status)
    {
        string trace = Path.Combine(TempDirectory(), "trace");
        var r = Traced(trace, nonet, args, environment);
        Assert.That(r.ExitCode, Is.EqualTo(status), r.ToString());
        var lines = ReadTrace(trace);
        var (launched, probe) = Order(lines, launcher);
        Assert.That(launched, Is.LessThan(probe), "this run prestarts no launcher, so tests nothing\n" + Head(lines));
    }

    [Test]
    public void A_prestarted_launcher_that_is_not_the_configured_one_ends_silently()
    {
        var (nonet, launcher) = Install();
        string configured = LauncherElsewhere();
        var env = WithHome(HomeWithConfig($"launcher = {configured}\n"));
        AssertPrestarted(nonet, launcher, ["true"], env, 0);

        string leftFile = Path.Combine(TempDirectory(), "left");
        using var process = StartSubreaped(leftFile, nonet,
            ["sh", "-c", "tr '\\0' '\\n' < /proc/$PPID/cmdline | head -n 1; echo ready; read line; echo ok"], env);
        RunResult r;
        try
        {
            var parent = process.StandardOutput.ReadLineAsync();
            Assert.That(parent.Wait(Harness.DefaultTimeout), Is.True, "the command printed nothing");
            var ready = process.StandardOutput.ReadLineAsync();
            Assert.That(ready.Wait(Harness.DefaultTimeout) && ready.Result == "ready", Is.True, "no 'ready'");
            Assert.That(parent.Result, Is.EqualTo(configured), "the command's parent is not the configured launcher");
            // While the command runs, the prestarted launcher is gone already.
            Assert.That(Running(launcher), Is.Empty, "the prestarted launcher still runs: " + Describe(Running(launcher)));
            Assert.That(Running(configured), Has.Count.EqualTo(1), "the configured launcher runs the command");
        }
        finally
        {
            r = Harness.Finish(process, "\n"u8.ToArray());
        }
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("ok\n"), r.ToString());
        Assert.That(r.Stderr, Is.Empty, r.ToString());
        Assert.That(File.ReadAllText(leftFile), Is.Empty, "left behind by nonet (pid state executable)");
        Assert.That(Running(launcher), Is.Empty, Describe(Running(launcher)));
    }

    [Test]
    public void A_launcher_ended_before_it_wrote_CLONE_leaves_its_child_to_nobody()
    {
        // The prestarted launcher is strace running it, which holds its
        // second write, CLONE, for 1.5 s, and nonet runs under strace too,
        // each of its main thread's openat calls held 20 ms: the launcher has
        // cloned its child when the host, the command not found, ends it.
        // Were the status pipe closed then, the launcher would die of
        // SIGPIPE at CLONE, and its child would be the subreaper's to reap.
        var (nonet, launcher) = Install();
        File.Move(launcher, launcher + ".real");
        LauncherProtocolTests.WriteLauncherHoldingClone(launcher, launcher + ".real", TimeSpan.FromSeconds(1.5));

        string leftFile = Path.Combine(TempDirectory(), "left");
        using var process = StartSubreaped(leftFile, Strace,
            ["-o", "/dev/null", "-e", "trace=openat", "-e", "inject=openat:delay_enter=20000", nonet, "no-such-command-xyz"]);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var r = Harness.Finish(process);
        Assert.That(r.ExitCode, Is.EqualTo(127), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo("nonet: no-such-command-xyz: command not found\n"));
        Assert.That(clock.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(1)), "the launcher was not cancelled while it held CLONE");
        Assert.That(File.ReadAllText(leftFile), Is.Empty, "left behind by nonet (pid state executable)");
        Assert.That(Running(launcher + ".real"), Is.Empty, Describe(Running(launcher + ".real")));
    }

    [Test]
    public void A_command_not_found_ends_the_prestarted_launcher_before_nonet_exits()
    {
        var (nonet, launcher) = Install();
        AssertPrestarted(nonet, launcher, ["no-such-command-xyz"], null, 127);

        string leftFile = Path.Combine(TempDirectory(), "left");
        using var process = StartSubreaped(leftFile, nonet, ["no-such-command-xyz"]);
        var r = Harness.Finish(process);
        Assert.That(r.ExitCode, Is.EqualTo(127), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo("nonet: no-such-command-xyz: command not found\n"));
        Assert.That(r.Stdout, Is.Empty);
        // Reaped by nonet, not merely ending after it: what nonet did not
        // reap became the subreaper's.
        Assert.That(File.ReadAllText(leftFile), Is.Empty, "left behind by nonet (pid state executable)");
        Assert.That(Running(launcher), Is.Empty, Describe(Running(launcher)));
    }

    /// <summary>What the main thread of <paramref name="pid"/> waits in:
    /// /proc/PID/syscall, the call's number, arguments and registers; null
    /// when it runs or is gone.</summary>
    private static string? SystemCall(int pid)
    {
        try
        {
            string s = File.ReadAllText($"/proc/{pid}/syscall").Trim();
            return s == "running" ? null : s;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static int OpenAt => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 56 : 257;

    private static string NetNamespace(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/net").LinkTarget ?? "";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    [Test]
    public void A_host_killed_before_it_writes_the_id_maps_leaves_nothing_and_runs_nothing()
    {
        var (nonet, launcher) = Install();
        string dir = TempDirectory();
        string report = Path.Combine(dir, "report"), marker = Path.Combine(dir, "MARKER"), trace = Path.Combine(dir, "trace");
        // The host opens its report file before the launch, after the
        // prestarted launcher is running: strace (on the host alone, not -f,
        // so the launcher runs untraced) holds that open() for 60 s.
        var env = WithHome(HomeWithConfig($"report-file = {report}\n"));
        using var process = Harness.Start(Who, Strace,
            ["-q", "-o", trace, "-P", report, "-e", "trace=openat", "-e", "inject=openat:delay_enter=60s:when=1",
             nonet, "sh", "-c", $"touch {marker}"], env);
        var found = new List<int>();
        try
        {
            var deadline = DateTime.UtcNow + Harness.DefaultTimeout;
            int host = 0, starter = 0, child = 0;
            bool blocked = false;
            while (DateTime.UtcNow < deadline && !process.HasExited)
            {
                // strace writes the call as it enters it, and " = " once it returns.
                var line = File.Exists(trace) ? File.ReadAllLines(trace).FirstOrDefault(l => l.Contains($"\"{report}\"", StringComparison.Ordinal)) : null;
                blocked = line is not null && !line.Contains(" = ", StringComparison.Ordinal);
                host = LifetimeTests.Children(process.Id).FirstOrDefault(); // setpriv execs strace
                starter = host > 0 ? LifetimeTests.Children(host).FirstOrDefault(p => Running(launcher).Contains(p)) : 0;
                child = starter > 0 ? LifetimeTests.Children(starter).FirstOrDefault() : 0;
                // The launcher started before the runtime: by the time the
                // host is held in the open, its child soon waits for the run
                // message in its own network namespace.
                if (blocked && child > 0 && NetNamespace(child) is { Length: > 0 } ns && ns != NetNamespace(Environment.ProcessId))
                    break;
                Thread.Sleep(5);
            }
            if (process.HasExited)
                Assert.Fail("nonet was not held in the report file's open(): " + Harness.Finish(process));
            Assert.That(blocked, Is.True, "the host never was held in open()");
            Assert.That(starter, Is.Positive, "no prestarted launcher while the host is held");
            Assert.That(child, Is.Positive, $"the launcher {starter} has no child in its own network namespace");
            found = [starter, child];
            Assert.That(File.ReadAllText($"/proc/{child}/uid_map"), Is.Empty, "the host wrote the maps already");
            Assert.That(File.ReadAllLines(trace).Single(l => l.Contains($"\"{report}\"", StringComparison.Ordinal)),
                Does.Not.Contain(" = "), "the open returned before the host was killed");

            Tmds.Linux.LibC.kill(host, Tmds.Linux.LibC.SIGKILL);
            // strace stops the dying host at its exit and, sitting out its
            // delay, would keep it there (descriptors open) for a minute:
            // strace goes too, which lets the host finish dying.
            Tmds.Linux.LibC.kill(process.Id, Tmds.Linux.LibC.SIGKILL);
            Assert.That(process.WaitForExit(10_000), Is.True, "strace did not die of SIGKILL");
            // Dead: gone, or a zombie not reaped yet.
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (DateTime.UtcNow < until && !Dead(host))
                Thread.Sleep(10);
            Assert.That(Dead(host), Is.True, "nonet did not die of SIGKILL");
            var left = WaitUntilNoneRunning(launcher, TimeSpan.FromSeconds(5));
            Assert.That(left, Is.Empty, "still running after the host died: " + Describe(left));
            Assert.That(File.Exists(marker), Is.False, "the command ran");
        }
        finally
        {
            Kill(found);
            if (!process.HasExited)
                process.Kill();
        }
    }

    private static bool Dead(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    private static string Sleep => File.Exists("/usr/bin/sleep") ? "/usr/bin/sleep" : "/bin/sleep";

    /// <summary>
    /// Holds nonet up at one open() (strace's delay_enter, on that path
    /// only), sends it SIGTERM meanwhile, and lets it go on.  Until nonet
    /// holds the signals it passes on (just before the launch), a SIGTERM
    /// ends nonet itself, as any program: the command, sleep 30, never
    /// runs, and the prestarted launcher and its child end with nonet.
    /// The report file is opened before that too (issue 19).  After
    /// that, the command gets it: it ends by SIGTERM and nonet exits with
    /// 143.  Either way nothing is left and sleep 30 does not run out.
    /// </summary>
    [TestCase("the runtime starts", false)]
    [TestCase("the host reads its configuration", false)]
    [TestCase("the host opens its report file", false)]
    public void A_SIGTERM_that_arrives_before_the_launch_ends_nonet_or_the_command(string when, bool commandRuns)
    {
        var (nonet, launcher) = Install();
        string dir = TempDirectory();
        string report = Path.Combine(dir, "report");
        string home = HomeWithConfig(when.Contains("report") ? $"report-file = {report}\n" : "");
        string held = when switch
        {
            "the runtime starts" => RuntimeProbes[0],
            "the host reads its configuration" => $"{home}/.config/nonet/config",
            _ => report,
        };
        string trace = Path.Combine(dir, "trace");
        using var process = Harness.Start(Who, Strace,
            ["-f", "-q", "-o", trace, "-P", held, "-P", Sleep, "-e", "trace=openat,execve",
             "-e", "inject=openat:delay_enter=2s:when=1", nonet, Sleep, "30"], WithHome(home));
        RunResult r;
        var clock = new Stopwatch();
        try
        {
            // strace writes the call as it enters it, and the rest once it returns.
            var deadline = DateTime.UtcNow + Harness.DefaultTimeout;
            TraceLine? entered = null;
            while (DateTime.UtcNow < deadline && !process.HasExited && entered is null)
            {
                Thread.Sleep(10);
                entered = File.Exists(trace) ? ReadTrace(trace).FirstOrDefault(l => l.Text.Contains($"\"{held}\"", StringComparison.Ordinal)) : null;
            }
            Assert.That(entered, Is.Not.Null, $"nonet never opened {held}");
            Assert.That(entered!.Text, Does.Not.Contain(" = "), "the open was not held up");
            Tmds.Linux.LibC.kill(entered.Pid, Tmds.Linux.LibC.SIGTERM);
            clock.Start();
            Assert.That(ReadTrace(trace).First(l => l.Pid == entered.Pid && l.Text.Contains($"\"{held}\"", StringComparison.Ordinal)).Text,
                Does.Not.Contain(" = "), "the open returned before the signal was sent");
        }
        finally
        {
            r = Harness.Finish(process);
            clock.Stop();
        }
        var lines = ReadTrace(trace);
        int host = lines[0].Pid;
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(15)), "sleep 30 did not end by the signal");
        // The command's execve() (its result may come on a line of its own).
        var exec = lines.FirstOrDefault(l => l.Pid != host && l.Text.StartsWith($"execve(\"{Sleep}\"", StringComparison.Ordinal));
        var left = WaitUntilNoneRunning(launcher, TimeSpan.FromSeconds(5));
        Assert.That(left, Is.Empty, "the launcher is left: " + Describe(left));
        if (!commandRuns)
        {
            Assert.Multiple(() =>
            {
                Assert.That(exec, Is.Null, "the command ran\n" + Head(lines));
                Assert.That(lines, Has.Some.EqualTo(new TraceLine(host, "+++ killed by SIGTERM +++")), "nonet did not end by SIGTERM\n" + Head(lines));
                Assert.That(r.Stderr, Is.Empty, r.ToString());
            });
            return;
        }
        Assert.Multiple(() =>
        {
            Assert.That(exec, Is.Not.Null, "the command never ran\n" + Head(lines));
            if (exec is not null)
                Assert.That(lines, Has.Some.EqualTo(new TraceLine(exec.Pid, "+++ killed by SIGTERM +++")), "the command did not end by SIGTERM\n" + Head(lines));
            Assert.That(lines, Has.Some.EqualTo(new TraceLine(host, "+++ exited with 143 +++")), "nonet did not exit with 143\n" + Head(lines));
            Assert.That(r.ExitCode, Is.EqualTo(143), r.ToString());
            Assert.That(r.Stderr, Is.Empty, r.ToString());
        });
    }

    [Test]
    public void The_command_gets_the_environment_directory_umask_limits_and_signal_mask_nonet_was_started_with()
    {
        string dir = TempDirectory();
        // The shell reads its own umask and signal mask first, with builtins
        // only: once it has waited for a child, dash's mask is its own.
        const string Probe = "while read -r l; do case $l in Umask:*) u=$l;; SigBlk:*) b=$l;; esac; done < /proc/$$/status; "
            + "cat /proc/$$/environ; printf \"\\0\\n\"; pwd -P; readlink /proc/$$/cwd; echo \"$u\"; echo \"$b\"; cat /proc/$$/limits";
        // A value that is not UTF-8, a umask and an open-files limit of the
        // test's; the same for the command run without nonet.
        string Script(string runner) =>
            $"cd {dir} && umask 027 && exec env \"NOT_UTF8=$(printf 'a\\377\\376b')\" prlimit --nofile=200:3000 -- {runner} sh -c '{Probe}'";
        var direct = Shell(Script(""));
        var through = Shell(Script("\"$NONET\""));
        Assert.That(direct.ExitCode, Is.Zero, direct.ToString());
        Assert.That(through.ExitCode, Is.Zero, through.ToString());
        Assert.That(through.Stderr, Is.Empty, through.ToString());

        static (byte[] Environ, string[] Lines) Split(byte[] output)
        {
            int end = output.AsSpan().IndexOf("\0\0\n"u8);
            Assert.That(end, Is.GreaterThanOrEqualTo(0), "no end of the environment");
            return (output[..(end + 1)], Encoding.UTF8.GetString(output[(end + 3)..]).Split('\n'));
        }
        static string[] Limits(string[] lines) =>
            lines.SkipWhile(l => !l.StartsWith("Limit", StringComparison.Ordinal)).TakeWhile(l => !l.Contains(':')).ToArray();
        var (expectedEnvironment, expected) = Split(direct.StdoutBytes);
        var (environment, actual) = Split(through.StdoutBytes);
        byte[] variable = [.. "NOT_UTF8=a"u8, 0xff, 0xfe, (byte)'b', 0];
        Assert.That(expectedEnvironment.AsSpan().IndexOf(variable), Is.GreaterThanOrEqualTo(0), "the test's variable is not in the environment");
        Assert.That(expected[0], Is.EqualTo(dir));
        Assert.That(expected, Has.Member("Umask:\t0027"));
        Assert.That(expected, Has.Some.StartsWith("SigBlk:"));
        Assert.That(expected.Any(l => l.StartsWith("Max open files            200                  3000", StringComparison.Ordinal)), Is.True, string.Join('\n', expected));
        Assert.Multiple(() =>
        {
            Assert.That(environment, Is.EqualTo(expectedEnvironment), "the environment, byte for byte");
            Assert.That(actual[..2], Is.EqualTo(expected[..2]), "the working directory");
            Assert.That(actual.Where(l => l.StartsWith("Umask:", StringComparison.Ordinal)), Is.EqualTo(expected.Where(l => l.StartsWith("Umask:", StringComparison.Ordinal))), "the umask");
            Assert.That(actual.Where(l => l.StartsWith("SigBlk:", StringComparison.Ordinal)), Is.EqualTo(expected.Where(l => l.StartsWith("SigBlk:", StringComparison.Ordinal))), "the signal mask");
            Assert.That(Limits(actual), Is.EqualTo(Limits(expected)), "the limits");
        });
    }
}
