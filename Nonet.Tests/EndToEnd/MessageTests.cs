using System.Collections.Generic;
using System.IO;
using System.Linq;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>Every bad input and every limit gives one clear line: user input
/// escaped and cut short, the real reason named.</summary>
public sealed class MessageTests(Identity identity) : EndToEndTest(identity)
{
    /// <summary>One line on stderr, with no control character but its newline.</summary>
    private static void AssertOneCleanLine(RunResult r)
    {
        Assert.That(r.Stderr, Does.EndWith("\n"), r.ToString());
        string line = r.Stderr[..^1];
        Assert.That(line, Does.Not.Contain("\n"), r.ToString());
        Assert.That(line.Where(char.IsControl), Is.Empty, "control characters reach the terminal: " + r);
        Assert.That(line, Does.Not.Contain("internal error").And.Not.Contain("Exception"), r.ToString());
    }

    private string WriteConfig(byte[] text)
    {
        string xdg = Harness.TempDirectory(Who);
        var r = Shell($"mkdir -p {xdg}/nonet && cat > {xdg}/nonet/config", stdin: text);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        return xdg;
    }

    [Test]
    public void Control_characters_from_the_user_are_escaped_in_messages()
    {
        string xdg = WriteConfig("\u001b]0;x\u0007 = 1\n"u8.ToArray());
        var key = NonetWith(new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg }, "true");
        Assert.That(key.ExitCode, Is.EqualTo(125), key.ToString());
        Assert.That(key.Stderr, Is.EqualTo($"nonet: {xdg}/nonet/config:1: malformed key '\\x1b]0;x\\x07' (letters, digits, '-', '_' and '.' only)\n"));

        var forward = Nonet("--forward", "\u001b[2J", "true");
        Assert.That(forward.ExitCode, Is.EqualTo(125), forward.ToString());
        Assert.That(forward.Stderr, Is.EqualTo("nonet: --forward '\\x1b[2J': PORT '\\x1b[2J' is not a number; see 'nonet --help'\n"));

        var launcher = NonetWith(new Dictionary<string, string?> { ["NONET_LAUNCHER"] = "/x\u001b[31m" }, "true");
        Assert.That(launcher.ExitCode, Is.EqualTo(125), launcher.ToString());
        Assert.That(launcher.Stderr, Is.EqualTo("nonet: launcher /x\\x1b[31m (from environment NONET_LAUNCHER) does not exist\n"));

        // An unknown setting's name comes from the environment variable.
        var unknown = Shell("env \"$(printf 'NONET_A\\033[2J=1')\" \"$NONET\" true");
        Assert.That(unknown.ExitCode, Is.Zero, unknown.ToString());
        Assert.That(unknown.Stderr, Does.Contain("\\x1b[2J"));
        foreach (var r in new[] { key, forward, launcher, unknown })
            AssertOneCleanLine(r);
    }

    [Test]
    public void A_long_value_is_shortened_in_its_message()
    {
        string line = new string('x', 500_000);
        string xdg = WriteConfig(System.Text.Encoding.ASCII.GetBytes($"shell = /bin/sh\n{line}\n"));
        var config = NonetWith(new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg }, "true");
        Assert.That(config.ExitCode, Is.EqualTo(125), config.ToString());
        Assert.That(config.Stderr, Does.StartWith($"nonet: {xdg}/nonet/config:2: expected 'key = value', found 'xxxx"));
        Assert.That(config.Stderr, Does.Contain("... (500000 bytes)'"));
        Assert.That(config.Stderr.Length, Is.LessThan(300));

        var forward = Nonet("--forward", new string('1', 100_000), "true");
        Assert.That(forward.ExitCode, Is.EqualTo(125), forward.ToString());
        Assert.That(forward.Stderr, Does.StartWith("nonet: --forward '1111"));
        Assert.That(forward.Stderr.Length, Is.LessThan(400));
        var command = Nonet(new string('c', 100_000));
        Assert.That(command.ExitCode, Is.EqualTo(127), command.ToString());
        Assert.That(command.Stderr, Does.EndWith("... (100000 bytes): command not found\n"));
        Assert.That(command.Stderr.Length, Is.LessThan(700));
        AssertOneCleanLine(config);
        AssertOneCleanLine(forward);
        AssertOneCleanLine(command);
    }

    [Test]
    public void A_launcher_setting_that_is_a_directory_says_so()
    {
        var r = NonetWith(new Dictionary<string, string?> { ["NONET_LAUNCHER"] = "/bin" }, "true");
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo("nonet: launcher /bin (from environment NONET_LAUNCHER) is a directory\n"));
    }

    [Test]
    public void An_option_without_its_value_is_worded_like_nonets_other_messages()
    {
        var r = Nonet("--forward");
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo("nonet: --forward needs a value: [INNERPORT:][HOSTADDR:]PORT; see 'nonet --help'\n"));
    }

    [Test]
    public void Arguments_too_long_for_the_kernel_are_named_as_such()
    {
        // The largest argv with which nonet itself still starts, for a
        // command found in a directory with a long name: the kernel copies
        // the command's path with its arguments, so the command's execve()
        // is refused though nonet's was not.
        const string script = """
            import errno, os, subprocess, sys, tempfile
            nonet = sys.argv[1]
            base = tempfile.mkdtemp()
            long_dir = os.path.join(base, *(["d" * 200] * 20))
            os.makedirs(long_dir)
            os.symlink("/bin/true", os.path.join(long_dir, "t"))
            env = dict(os.environ, PATH=long_dir + ":/usr/bin:/bin")
            def run(size):
                words = ["x" * 100000] * (size // 100000) + ["y" * (size % 100000)]
                try:
                    return subprocess.run([nonet, "t"] + words, capture_output=True, timeout=20, env=env)
                except OSError as e:
                    if e.errno == errno.E2BIG:
                        return None
                    raise
            lo, hi = 0, 64 << 20
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if run(mid) is None:
                    hi = mid
                else:
                    lo = mid
            r = run(lo)
            sys.stdout.write(f"{r.returncode}\n")
            sys.stdout.write(r.stderr.decode())
            """;
        var r = Harness.Run(Who, Python, ["-c", script, Harness.Nonet], timeout: System.TimeSpan.FromSeconds(60));
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("126\nnonet: t: Argument list too long; shorten the command's arguments or the environment (together they must fit in 'getconf ARG_MAX' bytes)\n"));
    }

    /// <summary>Runs a script as an ordinary uid with no other process, so that
    /// 'ulimit -u' counts only nonet's (root is exempt from the limit).</summary>
    private RunResult AsFreshUser(string script)
    {
        if (Who != Identity.Root && !Harness.IsRoot)
            return Shell(script);
        uint uid = 3_900_000 + (uint)System.Random.Shared.Next(100_000);
        return Harness.Run(Identity.Root, "setpriv", [$"--reuid={uid}", $"--regid={uid}", "--clear-groups", "/bin/sh", "-c", script],
            new Dictionary<string, string?> { ["NONET"] = Harness.Nonet, ["HOME"] = "/" });
    }

    [Test]
    public void The_process_limit_is_named_with_ulimit_u()
    {
        // From a limit too low for the runtime to start, through one that
        // stops the launcher or its child, to one that is enough.  'nonet
        // COMMAND' starts the launcher before the runtime (Native/prestart.c),
        // 'nonet -- COMMAND' after it, where only the launcher hits the limit.
        // The limit counts every thread of the user: a fresh account has
        // none, but an ordinary caller's test run already has many, and
        // they come and go as other tests run, so for it the limits start
        // from its count just before each run, and a round in which no
        // limit fell between the runtime and the launcher, or none was
        // enough, is run again.
        string[] lines = [];
        RunResult r = null!;
        for (int round = 0; round < 5; round++)
        {
            r = AsFreshUser("""
                fresh=0
                [ "$(id -u)" -ge 3900000 ] && fresh=1
                for first in true --; do
                  for n in 1 2 3 4 5 6 8 12 16 24 32; do
                    base=0
                    [ $fresh = 1 ] || base=$(ps -L -u "$(id -u)" --no-headers | wc -l)
                    out=$(prlimit --nproc=$((base + n)) "$NONET" $first true 2>&1); echo "$n $? $out"
                  done
                done
                """);
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
            lines = r.Stdout.TrimEnd('\n').Split('\n');
            Assert.That(lines, Has.Length.EqualTo(22), r.ToString());
            foreach (var line in lines)
            {
                var parts = line.Split(' ', 3);
                if (parts[1] == "0")
                {
                    Assert.That(parts.Length == 2 || parts[2] == "", line, "ran, and silently");
                    continue;
                }
                Assert.That(parts[1], Is.EqualTo("125"), line);
                Assert.That(parts[2], Does.Match(
                    @"^nonet: (your process limit is reached: [a-z ]+: Resource temporarily unavailable; end some of your processes or raise the limit \('ulimit -u' is \d+\)"
                    + @"|cannot start: the \.NET runtime could not get the memory or threads it needs; check the limits \('ulimit -v' is unlimited, 'ulimit -u' is \d+\))$"), line);
            }
            if (lines.Any(l => l.Contains("your process limit is reached")) && lines.Any(l => l.Split(' ')[1] == "0"))
                break;
        }
        Assert.That(lines, Has.Some.Contains("your process limit is reached"), "the launcher's clone or spawn hit the limit");
        Assert.That(lines.Any(l => l.Split(' ')[1] == "0"), "a limit that is enough: " + r);
    }

    [Test]
    public void Too_many_open_files_is_named_with_ulimit_n()
    {
        var r = Shell("""
            for n in 4 5 6 7 8 12 16 64; do
              out=$(prlimit --nofile=$n "$NONET" true 2>&1); echo "$n $? $out"
              out=$(prlimit --nofile=$n "$NONET" --print-config 2>&1 >/dev/null); echo "$n $? $out"
            done
            """);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var lines = r.Stdout.TrimEnd('\n').Split('\n');
        Assert.That(lines, Has.Length.EqualTo(16), r.ToString());
        foreach (var line in lines)
        {
            var parts = line.Split(' ', 3);
            if (parts[1] == "0")
                continue;
            Assert.That(parts[1], Is.EqualTo("125"), line);
            Assert.That(parts[2], Does.Match(@"^nonet: .*Too many open files; raise the limit of open files \('ulimit -n' is \d+\)$"), line);
        }
        Assert.That(lines, Has.Some.StartWith("4 125 nonet: too many open files: "), r.ToString());
        Assert.That(lines, Has.Some.StartWith("64 0"), r.ToString());
    }

    [Test]
    public void A_zero_user_namespace_limit_is_named_in_the_run_path()
    {
        // In a user namespace of its own, root may set the limit for the
        // namespaces below it, as a container might.
        string dir = Harness.TempDirectory(Who);
        var r = Shell($"exec unshare --user --map-root-user sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec \"$NONET\" touch {dir}/ran'");
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo("nonet: cannot create a user namespace: clone: No space left on device; the limit is reached or zero "
            + "(user.max_user_namespaces=0): raise it, e.g. 'sudo sysctl -w user.max_user_namespaces=10000'\n"));
        Assert.That(File.Exists($"{dir}/ran"), Is.False);
    }

    [Test]
    public void A_runtime_that_cannot_start_is_125_with_one_line()
    {
        // 20 to 40 MB of address space is too little for the .NET runtime;
        // it gives up (exit 255) or crashes (SIGSEGV), depending on where
        // it runs out.  Either way: nonet's 125 and one line.
        string dir = Harness.TempDirectory(Who);
        var r = Shell($$"""
            for kb in 20000 20000 30000 30000 40000 40000 40000; do
              out=$(prlimit --as=$((kb * 1024)) "$NONET" touch {{dir}}/ran 2>&1); echo "$kb $? $out"
            done
            """);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        foreach (var line in r.Stdout.TrimEnd('\n').Split('\n'))
        {
            string kb = line.Split(' ')[0];
            Assert.That(line, Does.Match($@"^{kb} 125 nonet: cannot start: the \.NET runtime could not get the memory or threads it needs; check the limits \('ulimit -v' is {kb}, 'ulimit -u' is (\d+|unlimited)\)$"));
        }
        Assert.That(File.Exists($"{dir}/ran"), Is.False);
    }
}
