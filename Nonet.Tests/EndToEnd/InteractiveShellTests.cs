using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// nonet with no command: an interactive bash in a real terminal.  tmux
/// provides the pty and types the keys; the pane runs
/// <c>sh -c 'set -m; nonet; echo NONET-EXIT=$?'</c>, so nonet starts in its
/// own foreground process group, as it does from a user's shell.
/// </summary>
public sealed class InteractiveShellTests(Identity identity) : EndToEndTest(identity)
{
    private const string Prompt = "nonet-test$";

    private Terminal? terminal;

    [TearDown]
    public void CloseTerminal()
    {
        terminal?.Dispose();
        terminal = null;
    }

    [Test]
    public void The_shell_shows_its_prompt_and_runs_commands_inside_the_namespace()
    {
        var t = StartShell();
        Assert.That(t.Output("id -u"), Is.EqualTo(new[] { Ids.Uid.ToString() }), t.Screen());
        Assert.That(t.Output("id -g"), Is.EqualTo(new[] { Ids.Gid.ToString() }), t.Screen());
        var links = t.Output("ip -br link");
        Assert.That(links, Has.Count.EqualTo(1), t.Screen());
        Assert.That(links[0], Does.StartWith("lo "), t.Screen());
        Assert.That(t.Output("readlink /proc/self/ns/net"), Is.Not.EqualTo(new[] { OutsideNetworkNamespace }), t.Screen());
        Assert.That(t.Output("tty"), Has.Exactly(1).Matches(@"^/dev/pts/\d+$"), "the shell's input must be the terminal\n" + t.Screen());
    }

    [Test]
    public void Ctrl_C_interrupts_the_foreground_job_and_not_the_shell_or_nonet()
    {
        var t = StartShell();
        string sleep = UniqueSleep();
        t.Type(sleep);
        t.WaitForForeground("sleep");
        t.Press("C-c");
        t.WaitForForeground("bash");
        WaitUntilGone(sleep, t);
        AssertStillInsideNonet(t);

        // At the prompt, Ctrl-C only abandons the line being typed.
        t.Keys("echo never-run");
        t.Press("C-c");
        AssertStillInsideNonet(t);
        Assert.That(t.Screen(), Does.Not.Contain("\nnever-run\n"));
    }

    [Test]
    public void Ctrl_Z_stops_the_foreground_job_and_fg_brings_it_back()
    {
        var t = StartShell();
        string sleep = UniqueSleep();
        t.Type(sleep);
        t.WaitForForeground("sleep");
        t.Press("C-z");
        t.WaitForForeground("bash");
        t.WaitFor(new Regex(@"^\[1\]\+\s+Stopped\s+" + Regex.Escape(sleep) + "$", RegexOptions.Multiline), "the 'Stopped' notice");
        WaitForState(sleep, state => state == 'T', "the job must really be stopped", t);
        Assert.That(t.Output("jobs"), Has.Exactly(1).Matches(@"^\[1\]\+\s+Stopped\s+" + Regex.Escape(sleep) + "$"), t.Screen());

        t.Type("fg");
        t.WaitForForeground("sleep");
        WaitForState(sleep, state => state != 'T', "fg must continue the job", t);
        t.Press("C-c");
        t.WaitForForeground("bash");
        WaitUntilGone(sleep, t);
        AssertStillInsideNonet(t);
    }

    [Test]
    public void A_background_job_runs_apart_from_the_terminal_and_kill_percent_ends_it()
    {
        var t = StartShell();
        string sleep = UniqueSleep();
        t.Type(sleep + " &");
        Assert.That(t.Output("jobs"), Has.Exactly(1).Matches(@"^\[1\]\+\s+Running\s+" + Regex.Escape(sleep) + " &$"), t.Screen());
        var (pgrp, terminalPgrp) = ProcessGroups(sleep);
        Assert.That(pgrp, Is.Not.EqualTo(terminalPgrp), "a background job must not be in the terminal's foreground group\n" + t.Screen());
        Assert.That(t.Foreground(), Is.EqualTo("bash"), t.Screen());

        t.Type("kill %1");
        WaitUntilGone(sleep, t);
        // The first 'jobs' may still report the job's end; after that it is gone.
        Assert.That(t.Output("jobs"), Has.All.Matches(@"^\[1\]\+\s+Terminated\s+" + Regex.Escape(sleep) + "$"), t.Screen());
        Assert.That(t.Output("jobs"), Is.Empty, t.Screen());
    }

    [Test]
    public void Exit_3_ends_nonet_with_status_3()
    {
        var t = StartShell();
        t.Type("exit 3");
        t.WaitFor(new Regex("^NONET-EXIT=3$", RegexOptions.Multiline), "nonet's exit status 3");
        Assert.That(t.Screen(), Does.Not.Contain("nonet:"), "nonet must not complain");
    }

    [Test]
    public void Closing_the_terminal_ends_the_shell_and_nonet()
    {
        var t = StartShell();
        var pids = t.ProcessTree();
        Assert.That(pids.Select(p => p.Comm), Is.SupersetOf(new[] { "nonet", "nonet-launcher", "bash" }), t.Screen());
        t.Dispose();
        terminal = null;
        var deadline = DateTime.UtcNow + Terminal.Patience;
        while (pids.Any(p => Alive(p.Pid)) && DateTime.UtcNow < deadline)
            Thread.Sleep(50);
        Assert.That(pids.Where(p => Alive(p.Pid)).Select(p => $"{p.Pid} ({p.Comm})"), Is.Empty,
            "after the terminal hung up, these were still running");
    }

    [Test]
    public void Ctrl_C_reaches_a_foreground_command_once_and_nonet_outlives_it()
    {
        // No shell in between: nonet, its launcher and the command share the
        // terminal's foreground process group, so the terminal's SIGINT hits
        // all three.  nonet must survive it, and not pass it on a second time.
        const string counter = """
            import signal, sys, time
            count = 0
            def caught(n, f):
                global count
                count += 1
            signal.signal(signal.SIGINT, caught)
            print("ready", flush=True)
            while count == 0:
                time.sleep(0.02)
            time.sleep(1.5)
            print("count", count, flush=True)
            sys.exit(5)
            """;
        terminal = new Terminal(Who, Harness.TempDirectory(Who), Python, "-c", counter);
        terminal.WaitFor(new Regex("^ready$", RegexOptions.Multiline), "the command's ready line");
        terminal.Press("C-c");
        var screen = terminal.WaitFor(new Regex("^NONET-EXIT=\\d+$", RegexOptions.Multiline), "nonet's exit");
        Assert.That(screen, Does.Contain("count 1\n").And.Contain("NONET-EXIT=5\n"), screen);
    }

    private Terminal StartShell()
    {
        string home = Harness.TempDirectory(Who);
        // Debian's /etc/bash.bashrc sets PS1; ~/.bashrc runs after it.
        var rc = Shell($"printf '%s\\n' \"PS1='{Prompt} '\" 'PROMPT_COMMAND=' > {home}/.bashrc");
        Assert.That(rc.ExitCode, Is.Zero, rc.ToString());
        terminal = new Terminal(Who, home);
        terminal.WaitFor(new Regex("^" + Regex.Escape(Prompt) + "$", RegexOptions.Multiline), "the first prompt");
        AssertStillInsideNonet(terminal);
        return terminal;
    }

    private static string OutsideNetworkNamespace => new FileInfo("/proc/self/ns/net").LinkTarget!;

    private void AssertStillInsideNonet(Terminal t)
    {
        Assert.That(t.Output("cat /proc/$PPID/comm"), Is.EqualTo(new[] { "nonet-launcher" }), "the shell's parent must still be nonet's launcher\n" + t.Screen());
        Assert.That(t.Output("readlink /proc/self/ns/net"), Is.Not.EqualTo(new[] { OutsideNetworkNamespace }), t.Screen());
        Assert.That(t.Screen(), Does.Not.Contain("NONET-EXIT="), "nonet must still be running");
    }

    /// <summary>A sleep whose command line no other test shares.</summary>
    private static string UniqueSleep() => $"sleep 100.{Random.Shared.Next(100000, 999999)}";

    private static List<int> Pids(string commandLine) =>
        Harness.ProcessesWithArgument(commandLine)
            .Select(p => int.Parse(p[..p.IndexOf(':')]))
            .Where(pid => File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim() == commandLine)
            .ToList();

    private static string[] Stat(int pid)
    {
        string s = File.ReadAllText($"/proc/{pid}/stat");
        return s[(s.LastIndexOf(')') + 2)..].Split(' ');
    }

    private static string[] StatOf(string commandLine)
    {
        var pids = Pids(commandLine);
        Assert.That(pids, Has.Count.EqualTo(1), $"processes running '{commandLine}'");
        return Stat(pids[0]);
    }

    /// <summary>R, S, T... from /proc/PID/stat.</summary>
    private static char State(string commandLine) => StatOf(commandLine)[0][0];

    private static void WaitForState(string commandLine, Func<char, bool> wanted, string what, Terminal t)
    {
        var deadline = DateTime.UtcNow + Terminal.Patience;
        char state;
        while (!wanted(state = State(commandLine)) && DateTime.UtcNow < deadline)
            Thread.Sleep(50);
        Assert.That(wanted(state), Is.True, $"{what}: '{commandLine}' is in state {state}\n" + t.Screen());
    }

    private static (int Pgrp, int TerminalPgrp) ProcessGroups(string commandLine)
    {
        var f = StatOf(commandLine);
        return (int.Parse(f[2]), int.Parse(f[5]));
    }

    private static bool Alive(int pid)
    {
        try
        {
            return Stat(pid)[0] != "Z";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void WaitUntilGone(string commandLine, Terminal t)
    {
        var deadline = DateTime.UtcNow + Terminal.Patience;
        while (Pids(commandLine).Count > 0 && DateTime.UtcNow < deadline)
            Thread.Sleep(50);
        Assert.That(Pids(commandLine), Is.Empty, $"'{commandLine}' should have ended\n" + t.Screen());
    }

    /// <summary>A private tmux server, run as the identity, whose one pane
    /// runs nonet with bash as $SHELL.</summary>
    private sealed class Terminal : IDisposable
    {
        public static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

        private readonly Identity who;
        private readonly string socket;
        private int answers;
        private bool disposed;

        /// <param name="command">What nonet runs; none: the shell.</param>
        public Terminal(Identity who, string home, params string[] command)
        {
            this.who = who;
            socket = Path.Combine(Harness.TempDirectory(who), "tmux");
            // set -m: like a user's shell, put nonet in its own process
            // group and give it the terminal.
            const string script = "set -m; home=$1; shift; env SHELL=/bin/bash HOME=\"$home\" \"$@\"; echo NONET-EXIT=$?; exec sleep 60";
            Tmux(["-f", "/dev/null", "new-session", "-d", "-x", "150", "-y", "50",
                "/bin/sh", "-c", script, "sh", home, Harness.Nonet, .. command]);
        }

        public void Dispose()
        {
            if (disposed)
                return;
            disposed = true;
            Harness.Run(who, "tmux", ["-S", socket, "kill-server"], NoOuterTmux);
        }

        /// <summary>Types <paramref name="line"/> and Enter.</summary>
        public void Type(string line)
        {
            Keys(line);
            Press("Enter");
        }

        /// <summary>Types the text literally, without Enter, once the shell
        /// shows a fresh prompt: keys typed while bash is still handling the
        /// last line or signal could go to the wrong reader.</summary>
        public void Keys(string text)
        {
            WaitFor(PromptLast, "a fresh prompt");
            Tmux("send-keys", "-l", text);
        }

        private static readonly Regex PromptLast = new(@"(^|\n)" + Regex.Escape(Prompt) + @"\n\z");

        /// <summary>A key by tmux name: C-c, C-z, Enter.</summary>
        public void Press(string key) => Tmux("send-keys", key);

        /// <summary>The pane and its scrollback, trailing blank lines dropped.</summary>
        public string Screen() => Tmux("capture-pane", "-p", "-S", "-").TrimEnd('\n') + "\n";

        /// <summary>The name of the terminal's foreground process group leader.</summary>
        public string Foreground() => Tmux("display-message", "-p", "#{pane_current_command}").Trim();

        public void WaitForForeground(string command)
        {
            var deadline = DateTime.UtcNow + Patience;
            string now;
            while ((now = Foreground()) != command && DateTime.UtcNow < deadline)
                Thread.Sleep(50);
            Assert.That(now, Is.EqualTo(command), $"the terminal's foreground job after {Patience.TotalSeconds} s\n--- pane\n{Screen()}");
        }

        public string WaitFor(Regex pattern, string what)
        {
            var deadline = DateTime.UtcNow + Patience;
            string screen;
            while (!pattern.IsMatch(screen = Screen()) && DateTime.UtcNow < deadline)
                Thread.Sleep(50);
            if (!pattern.IsMatch(screen))
                Assert.Fail($"no {what} (/{pattern}/) within {Patience.TotalSeconds} s\n--- pane\n{screen}");
            return screen;
        }

        /// <summary>
        /// Runs <paramref name="command"/> at the prompt and returns its
        /// output lines.  The output is framed by two lines that only the
        /// shell can print: the typed line shows $((...)), not its value.
        /// </summary>
        public List<string> Output(string command)
        {
            int n = 1000 * ++answers + Random.Shared.Next(1, 999);
            string begin = $"<<{n}", end = $"{n}>>";
            Type($"echo \"<<$(({n - 1}+1))\"; {command}; echo \"$(({n - 1}+1))>>\"");
            var lines = WaitFor(new Regex("^" + Regex.Escape(end) + "$", RegexOptions.Multiline), $"output of '{command}'").Split('\n');
            int first = Array.LastIndexOf(lines, begin), last = Array.LastIndexOf(lines, end);
            Assert.That(first, Is.GreaterThanOrEqualTo(0).And.LessThan(last), $"'{command}' output is not framed\n--- pane\n{string.Join('\n', lines)}");
            return lines[(first + 1)..last].ToList();
        }

        /// <summary>nonet and every process below it, by pid and name.</summary>
        public List<(int Pid, string Comm)> ProcessTree()
        {
            int paneShell = int.Parse(Tmux("display-message", "-p", "#{pane_pid}").Trim());
            var found = new List<(int, string)>();
            var next = new Queue<int>(Children(paneShell));
            while (next.Count > 0)
            {
                int pid = next.Dequeue();
                found.Add((pid, File.ReadAllText($"/proc/{pid}/comm").Trim()));
                foreach (int child in Children(pid))
                    next.Enqueue(child);
            }
            return found;
        }

        private static IEnumerable<int> Children(int pid) =>
            Directory.GetDirectories($"/proc/{pid}/task")
                .SelectMany(task => File.ReadAllText(Path.Combine(task, "children")).Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Select(int.Parse);

        private static readonly Dictionary<string, string?> NoOuterTmux = new() { ["TMUX"] = null, ["TMUX_PANE"] = null };

        private string Tmux(params string[] args)
        {
            var r = Harness.Run(who, "tmux", ["-S", socket, .. args], NoOuterTmux, timeout: Patience);
            Assert.That(r.ExitCode, Is.Zero, $"tmux {string.Join(' ', args)}: {r}");
            return r.Stdout;
        }
    }
}
