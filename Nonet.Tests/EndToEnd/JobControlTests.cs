using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// Job control (issue 13): stop and continue behave as without nonet.  Each
/// terminal case runs in an interactive bash in tmux twice, once as
/// <c>nonet CMD</c> and once as <c>CMD</c>, and the two screens must be the
/// same but for the word "nonet".
/// </summary>
public sealed class JobControlTests(Identity identity) : EndToEndTest(identity)
{
    private readonly List<OuterShell> shells = [];

    [TearDown]
    public void CloseShells()
    {
        foreach (var s in shells)
            s.Dispose();
        shells.Clear();
    }

    [Test]
    public void A_command_that_stops_itself_stops_the_job_and_fg_resumes_it()
    {
        const string command = "sh -c 'kill -STOP $$; echo resumed'";
        string Run(OuterShell s, string line)
        {
            s.Type(line);
            s.WaitFor(new Regex(@"^\[1\]\+\s+Stopped\s+", RegexOptions.Multiline), "the 'Stopped' notice");
            s.TypeAtPrompt("jobs");
            s.TypeAtPrompt("fg");
            s.WaitFor(new Regex("^resumed$", RegexOptions.Multiline), "'resumed'");
            s.TypeAtPrompt("echo status=$?");
            s.WaitFor(new Regex("^status=", RegexOptions.Multiline), "the status");
            return s.Settled();
        }
        AssertSame(command, Run);
    }

    [Test]
    public void Ctrl_Z_does_not_stop_a_command_that_ignores_SIGTSTP()
    {
        // The command waits for the test's file (in the shell's own HOME),
        // made once the terminal has taken Ctrl-Z, not for a fixed time: it
        // is still running when Ctrl-Z arrives however slow the machine, and
        // ^Z shows at one place.  The ticks after it leave a wrong stop time
        // to show.
        const string command = "sh -c 'trap \"\" TSTP; echo tick 0; until [ -e ~/go ]; do sleep .1; done; for i in 1 2 3 4 5 6 7; do echo tick $i; sleep .25; done; exit 4'";
        string Run(OuterShell s, string line)
        {
            s.Type(line);
            s.WaitFor(new Regex("^tick 0$", RegexOptions.Multiline), "the first tick");
            s.Press("C-z");
            // The terminal echoes ^Z once it has sent SIGTSTP to the job.
            s.WaitFor(new Regex(@"^tick 0\n\^Z", RegexOptions.Multiline), "the terminal's ^Z");
            File.Create(Path.Combine(s.Home, "go")).Dispose();
            s.WaitFor(new Regex("^tick 7$", RegexOptions.Multiline), "the last tick, after Ctrl-Z");
            s.WaitForPrompt();
            s.TypeAtPrompt("echo status=$?");
            s.WaitFor(new Regex("^status=", RegexOptions.Multiline), "the status");
            return s.Settled();
        }
        string screen = AssertSame(command, Run);
        Assert.That(screen, Does.Not.Contain("Stopped"));
        Assert.That(screen, Does.Contain("\nstatus=4\n"));
    }

    [Test]
    public void SIGTSTP_and_SIGCONT_sent_to_nonet_stop_and_continue_the_job_and_the_command()
    {
        // The command runs until the test's file appears in the shell's
        // HOME, which it makes only once fg has taken the job back:
        // continued in the background, it cannot end first (bash would say
        // Done and fg would fail).  The number tells this command from the
        // same test's as the other identity.
        string script = $"until [ -e ~/go ]; do sleep .2; done; echo done {Random.Shared.Next(1000, 9999)}; exit 5";
        string command = "sh -c '" + script + "'";
        string Run(OuterShell s, string line)
        {
            s.Type(line);
            int job = s.WaitForJob();
            int sh = WaitForCommand(["sh", "-c", script]);
            Send(job, "TSTP");
            s.WaitFor(new Regex(@"^\[1\]\+\s+Stopped\s+", RegexOptions.Multiline), "the 'Stopped' notice");
            Assert.That(LifetimeTests.Stat(job)![0], Is.EqualTo("T"), "the job must be stopped\n" + s.Screen());
            Assert.That(LifetimeTests.Stat(sh)![0], Is.EqualTo("T"), "the command must be stopped\n" + s.Screen());
            s.TypeAtPrompt("jobs");
            s.WaitForPrompt();
            Send(job, "CONT");
            s.WaitUntil(() => LifetimeTests.Stat(sh)?[0] != "T" && LifetimeTests.Stat(job)?[0] != "T", "the job and the command to run again");
            // bash hears of it only once the continued job has run: jobs
            // again until it says Running, in bash, so the screen shows one
            // line however many tries it took (none prints).
            s.TypeAtPrompt("until jobs > ~/jobs; grep -q Running ~/jobs; do sleep .1; done; cat ~/jobs");
            s.TypeAtPrompt("fg");
            // fg prints the job's command line once the job is in the foreground.
            s.WaitFor(new Regex(@"^outer\$ fg\n.*sh -c ", RegexOptions.Multiline), "fg taking the job");
            File.Create(Path.Combine(s.Home, "go")).Dispose();
            s.WaitFor(new Regex("^done ", RegexOptions.Multiline), "'done'");
            s.TypeAtPrompt("echo status=$?");
            s.WaitFor(new Regex("^status=5$", RegexOptions.Multiline), "the status");
            return s.Settled();
        }
        string screen = AssertSame(command, Run);
        Assert.That(screen, Does.Match(@"\[1\]\+\s+Running\s+"), "after SIGCONT, jobs shows it running");
    }

    [Test]
    public void Less_stops_with_Ctrl_Z_or_SIGTSTP_to_the_job_and_comes_back_with_fg()
    {
        const string command = "less /etc/services";
        string Run(OuterShell s, string line)
        {
            var top = new Regex("^# Network services", RegexOptions.Multiline);
            var stopped = new Regex(@"^\[1\]\+\s+Stopped\s+", RegexOptions.Multiline);
            s.Type(line);
            int job = s.WaitForJob();
            s.WaitFor(top, "less showing the file");
            s.Press("C-z");
            s.WaitFor(stopped, "the 'Stopped' notice after Ctrl-Z");
            s.TypeAtPrompt("fg");
            s.WaitFor(top, "less redrawn", visibleOnly: true);
            // less redraws only if it really stopped and went on.
            s.Press("G");
            s.WaitFor(new Regex(@"\(END\)\s*$"), "the end of the file", visibleOnly: true);
            Send(job, "TSTP");
            s.WaitFor(stopped, "the 'Stopped' notice after SIGTSTP", visibleOnly: true);
            s.WaitUntil(() => LifetimeTests.Stat(job)?[0] == "T", "the job to stop");
            s.TypeAtPrompt("jobs");
            s.WaitForPrompt();
            string screen = s.Screen(visibleOnly: true);
            s.TypeAtPrompt("fg");
            s.WaitFor(new Regex(@"\(END\)\s*$"), "less redrawn at the end", visibleOnly: true);
            s.Press("q");
            s.WaitForPrompt();
            s.TypeAtPrompt("echo status=$?");
            s.WaitFor(new Regex("^status=0$", RegexOptions.Multiline), "the status");
            return screen + "--- after fg and q\n" + s.Screen(visibleOnly: true);
        }
        AssertSame(command, Run);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Kill_TSTP_and_CONT_to_nonets_pid_stop_and_continue_the_command_and_nonet(bool publishing)
    {
        // With a published port nonet waits in its event loop instead.
        string[] options = publishing ? ["--publish", $"{ForwardingTests.FreeHostPort()}"] : [];
        // No terminal: a parent that does job control puts nonet in a
        // process group of its own (one left orphaned would discard SIGTSTP).
        const string wrapper = "import subprocess, sys\np = subprocess.Popen(sys.argv[1:], process_group=0)\nprint(p.pid, flush=True)\nsys.exit(p.wait())\n";
        using var parent = Harness.Start(Who, Python, ["-c", wrapper, Harness.Nonet, .. options, "sh", "-c", "echo ready; while :; do sleep .1; done"]);
        try
        {
            // The wrapper's pid and the command's "ready" share the pipe, in
            // either order: the command may write first on a busy CPU.
            var lines = new List<string>();
            for (int i = 0; i < 2; i++)
            {
                var line = parent.StandardOutput.ReadLineAsync();
                Assert.That(line.Wait(TimeSpan.FromSeconds(20)) && line.Result is not null, Is.True, $"only {lines.Count} of the wrapper's pid and 'ready'");
                lines.Add(line.Result!);
            }
            Assert.That(lines, Does.Contain("ready"), "no 'ready'");
            int nonet = int.Parse(lines.Single(l => l != "ready"), System.Globalization.CultureInfo.InvariantCulture);
            int launcher = LifetimeTests.Children(nonet).Single();
            int command = LifetimeTests.Children(launcher).Single(p => LifetimeTests.Comm(p) == "sh");
            int[] all = [nonet, launcher, command];

            Send(nonet, "TSTP");
            WaitForStates(all, "T", "after SIGTSTP to nonet");
            Send(nonet, "CONT");
            WaitForStates(all, "not T", "after SIGCONT to nonet");
            // Continued from outside, the command goes on running.
            Thread.Sleep(300);
            Assert.That(all.Select(p => LifetimeTests.Stat(p)![0]), Has.None.EqualTo("T"));
        }
        finally
        {
            parent.Kill(entireProcessTree: true);
            parent.WaitForExit(10_000);
        }
    }

    /// <summary>The one process whose argv is <paramref name="argv"/>.</summary>
    private static int WaitForCommand(string[] argv)
    {
        string wanted = string.Join('\0', argv) + "\0";
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            foreach (var dir in Directory.GetDirectories("/proc"))
            {
                try
                {
                    if (int.TryParse(Path.GetFileName(dir), out int pid) && File.ReadAllText(Path.Combine(dir, "cmdline")) == wanted)
                        return pid;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                }
            }
            Thread.Sleep(20);
        }
        Assert.Fail("no process runs " + string.Join(' ', argv));
        return 0;
    }

    private static void WaitForStates(int[] pids, string wanted, string when)
    {
        bool Ok(int p) => LifetimeTests.Stat(p) is { } f && (wanted == "T" ? f[0] == "T" : f[0] != "T");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!pids.All(Ok) && DateTime.UtcNow < deadline)
            Thread.Sleep(20);
        Assert.That(pids.Select(p => $"{p} ({LifetimeTests.Comm(p)}): {LifetimeTests.Stat(p)?[0]}"),
            Has.All.Matches(wanted == "T" ? @": T$" : @": [^T]$"), $"nonet, its launcher and the command {when}");
    }

    private static void Send(int pid, string signal)
    {
        var r = Harness.Run(Identity.Caller, "kill", ["-s", signal, pid.ToString()]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
    }

    /// <summary>Runs the case with and without nonet, each in a fresh
    /// terminal; the screens must match once "nonet " is taken out.</summary>
    private string AssertSame(string command, Func<OuterShell, string, string> run)
    {
        var direct = Open();
        string expected = run(direct, command);
        var viaNonet = Open();
        string actual = run(viaNonet, "nonet " + command).Replace("nonet ", "");
        Assert.That(actual, Is.EqualTo(expected), $"with nonet (above) and without (below) differ\n--- with nonet\n{actual}--- without\n{expected}");
        return actual;
    }

    private OuterShell Open()
    {
        var s = new OuterShell(Who, Harness.TempDirectory(Who));
        shells.Add(s);
        return s;
    }

    /// <summary>An interactive bash in a private tmux server, run as the
    /// identity, with nonet on its PATH: the user's own shell.</summary>
    private sealed class OuterShell : IDisposable
    {
        public const string Prompt = "outer$";
        private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
        private static readonly Dictionary<string, string?> NoOuterTmux = new() { ["TMUX"] = null, ["TMUX_PANE"] = null };
        private readonly Identity who;
        private readonly string socket;

        public OuterShell(Identity who, string home)
        {
            this.who = who;
            Home = home;
            socket = Path.Combine(home, "tmux");
            Tmux("-f", "/dev/null", "new-session", "-d", "-x", "150", "-y", "40",
                "env", $"HOME={home}", $"PATH={Harness.BinDirectory}:/usr/bin:/bin", $"PS1={Prompt} ", "PROMPT_COMMAND=",
                "LESS=", "LESSHISTFILE=-", "TERM=screen", "bash", "--norc", "--noprofile", "-i");
            WaitForPrompt();
        }

        /// <summary>The shell's HOME, a fresh directory of its own.</summary>
        public string Home { get; }

        public void Dispose() => Harness.Run(who, "tmux", ["-S", socket, "kill-server"], NoOuterTmux);

        public void Type(string line)
        {
            Tmux("send-keys", "-l", line);
            Tmux("send-keys", "Enter");
        }

        /// <summary>Types once bash shows a fresh prompt.</summary>
        public void TypeAtPrompt(string line)
        {
            WaitForPrompt();
            Type(line);
        }

        public void Press(string key) => Tmux("send-keys", key);

        public void WaitForPrompt() => WaitFor(new Regex(@"(^|\n)" + Regex.Escape(Prompt) + @"\n\z"), "a fresh prompt");

        /// <summary>The screen once bash waits at a prompt.</summary>
        public string Settled()
        {
            WaitForPrompt();
            return Screen();
        }

        /// <summary>Scrollback and pane, or the visible pane only; trailing blank lines dropped.</summary>
        public string Screen(bool visibleOnly = false) =>
            (visibleOnly ? Tmux("capture-pane", "-p") : Tmux("capture-pane", "-p", "-S", "-")).TrimEnd('\n') + "\n";

        public string WaitFor(Regex pattern, string what, bool visibleOnly = false)
        {
            var deadline = DateTime.UtcNow + Patience;
            string screen;
            while (!pattern.IsMatch(screen = Screen(visibleOnly)) && DateTime.UtcNow < deadline)
                Thread.Sleep(30);
            if (!pattern.IsMatch(screen))
                Assert.Fail($"no {what} (/{pattern}/) within {Patience.TotalSeconds} s\n--- pane\n{screen}");
            return screen;
        }

        public void WaitUntil(Func<bool> condition, string what)
        {
            var deadline = DateTime.UtcNow + Patience;
            while (!condition() && DateTime.UtcNow < deadline)
                Thread.Sleep(30);
            Assert.That(condition(), Is.True, $"waited for {what}\n--- pane\n{Screen()}");
        }

        /// <summary>The pid of bash's one child: the job just started.</summary>
        public int WaitForJob()
        {
            int bash = int.Parse(Tmux("display-message", "-p", "#{pane_pid}").Trim());
            var deadline = DateTime.UtcNow + Patience;
            while (DateTime.UtcNow < deadline)
            {
                var children = LifetimeTests.Children(bash).ToList();
                if (children.Count == 1)
                    return children[0];
                Thread.Sleep(20);
            }
            Assert.Fail("bash started no job\n" + Screen());
            return 0;
        }

        private string Tmux(params string[] args)
        {
            var r = Harness.Run(who, "tmux", ["-S", socket, .. args], NoOuterTmux, timeout: Patience);
            Assert.That(r.ExitCode, Is.Zero, $"tmux {string.Join(' ', args)}: {r}");
            return r.Stdout;
        }
    }
}
