using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>The command gets exactly what it would without nonet: argv,
/// environment, directory, umask, stdio and file descriptors.</summary>
public sealed class PassthroughTests(Identity identity) : EndToEndTest(identity)
{
    [Test]
    public void Options_stop_at_the_first_word_that_is_not_an_option()
    {
        var r = Nonet("echo", "--help", "-la", "--version", "--", "x");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("--help -la --version -- x\n"));
    }

    [Test]
    public void Double_dash_lets_a_command_start_with_a_dash()
    {
        string dir = Harness.TempDirectory(Who);
        var r = Shell($"printf '#!/bin/sh\\necho dash-command \"$@\"\\n' > {dir}/--test && chmod 755 {dir}/--test && PATH={dir}:$PATH \"$NONET\" -- --test --arg");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("dash-command --arg\n"));
    }

    [Test]
    public void Arguments_arrive_byte_for_byte()
    {
        // Empty, spaces, a newline, and bytes that are not UTF-8.
        string script = "\"$NONET\" sh -c 'printf \"%s\\0\" \"$@\"' sh '' 'a  b' \"$(printf 'one\\ntwo')\" \"$(printf '\\377\\376x')\" \"$(printf 'caf\\303\\251')\" --version";
        var r = Shell(script);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        byte[] expected = Concat("\0"u8.ToArray(), "a  b\0"u8.ToArray(), "one\ntwo\0"u8.ToArray(), [0xff, 0xfe, (byte)'x', 0], "caf\u00e9\0"u8.ToArray(), "--version\0"u8.ToArray());
        Assert.That(r.StdoutBytes, Is.EqualTo(expected));
    }

    [Test]
    public void Python_sees_its_own_options_after_the_command()
    {
        var r = Nonet(Python, "-c", "import sys; print(sys.argv[1:])", "--version", "-h");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout.Trim(), Is.EqualTo("['--version', '-h']"));
    }

    /// <summary>How nonet starts the launcher: before its runtime, for
    /// 'nonet COMMAND' (Native/prestart.c), or from the managed host once
    /// an option (here "--") comes first.</summary>
    public static readonly string[] LaunchPaths = ["", "-- "];

    [TestCaseSource(nameof(LaunchPaths))]
    public void The_environment_arrives_byte_for_byte(string launch)
    {
        var r = Shell($"V=\"$(printf 'a\\377b')\" W='' X='two words' \"$NONET\" {launch}sh -c 'printf \"%s|%s|%s|%s\" \"$V\" \"${{W-unset}}\" \"$X\" \"${{NONET_SHELL-none}}\"'");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.StdoutBytes, Is.EqualTo(Concat([(byte)'a', 0xff, (byte)'b'], "||two words|none"u8.ToArray())));
    }

    [TestCaseSource(nameof(LaunchPaths))]
    public void Working_directory_and_umask_are_the_callers(string launch)
    {
        string dir = Harness.TempDirectory(Who);
        var r = Shell($"umask 027; \"$NONET\" {launch}sh -c 'pwd; umask'", workingDirectory: dir);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo($"{dir}\n0027\n"));
    }

    [Test]
    public void Stdin_and_stdout_pass_through_unchanged()
    {
        byte[] data = RandomNumberGenerator.GetBytes(3 * 1024 * 1024);
        var r = Harness.Run(Who, Harness.Nonet, ["cat"], stdin: data);
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That(SHA256.HashData(r.StdoutBytes), Is.EqualTo(SHA256.HashData(data)));
    }

    [Test]
    public void Stderr_is_the_callers()
    {
        var r = Nonet("sh", "-c", "echo to-stderr >&2");
        Assert.That(r.Stderr, Is.EqualTo("to-stderr\n"));
    }

    [Test]
    public void The_command_sees_exactly_the_file_descriptors_nonet_was_given()
    {
        // Same listing with and without nonet: no pipe, socket or file of
        // nonet's reaches the command, and the caller's extra fds do.
        string dir = Harness.TempDirectory(Who);
        string script = $"exec 5</dev/null 7>/dev/null 9<&0; ls -l /proc/self/fd > {dir}/out; mv {dir}/out {dir}/plain; \"$NONET\" ls -l /proc/self/fd > {dir}/out; mv {dir}/out {dir}/nonet; "
            + $"for f in plain nonet; do awk 'NR>1 {{print $9, $10, $11}}' {dir}/$f; echo ---; done";
        var r = Shell(script);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        // ls's own directory fd names its pid; everything else must match.
        var parts = System.Text.RegularExpressions.Regex.Replace(r.Stdout, @"/proc/\d+/fd", "/proc/PID/fd").Split("---\n");
        Assert.That(parts[1], Is.EqualTo(parts[0]));
        Assert.That(parts[0], Does.Contain("5 -> /dev/null").And.Contain("7 -> /dev/null"));
    }

    [TestCase("")]
    [TestCase("-- ")]
    [TestCase("--publish PORT ")]
    public void The_launcher_holds_only_the_descriptors_the_command_inherits(string options)
    {
        options = options.Replace("PORT", ForwardingTests.FreeHostPort().ToString(System.Globalization.CultureInfo.InvariantCulture));
        // While the command runs, its parent is the launcher: it keeps no
        // pipe or socket of its own (they are close-on-exec and closed after
        // the clone; a --publish helper's pid comes through shared memory).
        // The launcher closes its status pipe just after it wrote CLONE, and
        // on a busy CPU the command may run first: it looks after 0.5 s.
        // (Not in a loop: a shell's redirections and command substitutions
        // add descriptors of its own.)
        var r = Shell($"exec 5</dev/null; \"$NONET\" {options}sh -c 'sleep .5; ls -1 /proc/$$/fd; echo ---; ls -1 /proc/$PPID/fd'");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var parts = r.Stdout.Split("---\n");
        Assert.That(parts[0], Does.Contain("5\n"), r.ToString());
        Assert.That(parts[1], Is.EqualTo(parts[0]), r.ToString());
    }

    [TestCaseSource(nameof(LaunchPaths))]
    public void Signal_dispositions_and_mask_are_the_callers(string launch)
    {
        // Ignored signals survive exec, so the command must see exactly the
        // caller's: none ignored, then SIGHUP ignored as under nohup.
        string show = "grep -E '^Sig(Ign|Blk)' /proc/self/status";
        // The test runner hands its children SIGPIPE ignored; nonet always
        // restores its default (README, Limitations), so start from there.
        var r = Harness.Run(Who, "env", ["--default-signal=PIPE", "NONET=" + Harness.Nonet, "/bin/sh", "-c",
            $"{show}; echo ---; \"$NONET\" {launch}{show}; echo ---; trap '' HUP; {show}; echo ---; \"$NONET\" {launch}{show}"]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        // Signals 32 and 33 are glibc's own: a glibc parent's posix_spawn
        // leaves them ignored in its child, so the caller's state of them is
        // an accident of its ancestry.  nonet gives them their default.
        const ulong glibcInternal = 0b11UL << 31;
        var parts = r.Stdout.Split("---\n").Take(4)
            .Select(p => System.Text.RegularExpressions.Regex.Replace(p, @"SigIgn:\t([0-9a-f]+)",
                m => "SigIgn:\t" + (System.Convert.ToUInt64(m.Groups[1].Value, 16) & ~glibcInternal).ToString("x16")))
            .ToArray();
        Assert.That(parts[1], Is.EqualTo(parts[0]));
        Assert.That(parts[3], Is.EqualTo(parts[2]));
        Assert.That(parts[2], Is.Not.EqualTo(parts[0]), "trap '' HUP should show");
        ulong inside = System.Convert.ToUInt64(System.Text.RegularExpressions.Regex.Match(r.Stdout.Split("---\n")[1], @"SigIgn:\t([0-9a-f]+)").Groups[1].Value, 16);
        Assert.That(inside & glibcInternal, Is.Zero, "signals 32 and 33 are not ignored inside");
    }

    [Test]
    public void With_no_command_nonet_runs_SHELL()
    {
        var r = Harness.Run(Who, Harness.Nonet, [], new Dictionary<string, string?> { ["SHELL"] = "/bin/sh" },
            stdin: "echo shell-ran-as-$(id -u); ip -br link | cut -d' ' -f1\n"u8.ToArray());
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo($"shell-ran-as-{Ids.Uid}\nlo\n"));
    }

    [Test]
    public void Without_SHELL_nonet_runs_the_configured_shell_then_bin_sh()
    {
        var configured = Harness.Run(Who, Harness.Nonet, [], new Dictionary<string, string?> { ["SHELL"] = null, ["NONET_SHELL"] = "/bin/bash" },
            stdin: "echo ${BASH_VERSION:+bash}\n"u8.ToArray());
        Assert.That(configured.Stdout, Is.EqualTo("bash\n"), configured.ToString());
        var fallback = Harness.Run(Who, Harness.Nonet, [], new Dictionary<string, string?> { ["SHELL"] = "" },
            stdin: "echo ${BASH_VERSION:-plain sh}\n"u8.ToArray());
        Assert.That(fallback.Stdout, Is.EqualTo("plain sh\n"), fallback.ToString());
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
}
