using System.Collections.Generic;
using System.IO;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>Each documented exit status, with its one-line message.</summary>
public sealed class ExitStatusTests(Identity identity) : EndToEndTest(identity)
{
    [TestCase(0)]
    [TestCase(1)]
    [TestCase(7)]
    [TestCase(255)]
    public void The_commands_own_status_is_nonets(int status)
    {
        var r = Nonet("sh", "-c", $"exit {status}");
        Assert.That(r.ExitCode, Is.EqualTo(status), r.ToString());
        Assert.That(r.Stderr, Is.Empty);
    }

    [TestCase(9)]
    [TestCase(15)]
    [TestCase(6)]
    public void A_command_killed_by_signal_N_gives_128_plus_N(int signal)
    {
        var r = Nonet("sh", "-c", $"kill -{signal} $$");
        Assert.That(r.ExitCode, Is.EqualTo(128 + signal), r.ToString());
    }

    [Test]
    public void A_missing_command_gives_127_and_names_it()
    {
        var r = Nonet("no-such-command-xyz", "arg");
        Assert.That(r.ExitCode, Is.EqualTo(127));
        Assert.That(r.Stderr, Is.EqualTo("nonet: no-such-command-xyz: command not found\n"));
    }

    [Test]
    public void A_missing_path_gives_127()
    {
        var r = Nonet("/no/such/file");
        Assert.That(r.ExitCode, Is.EqualTo(127));
        Assert.That(r.Stderr, Is.EqualTo("nonet: /no/such/file: No such file or directory\n"));
    }

    [Test]
    public void A_directory_gives_126()
    {
        var r = Nonet("/tmp");
        Assert.That(r.ExitCode, Is.EqualTo(126));
        Assert.That(r.Stderr, Is.EqualTo("nonet: /tmp: Is a directory\n"));
    }

    [Test]
    public void A_file_without_execute_permission_gives_126()
    {
        string dir = Harness.TempDirectory(Who);
        var r = Shell($"printf '#!/bin/sh\\necho ran\\n' > {dir}/script && chmod 644 {dir}/script && \"$NONET\" {dir}/script");
        Assert.That(r.ExitCode, Is.EqualTo(126), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo($"nonet: {dir}/script: Permission denied\n"));
        Assert.That(r.Stdout, Is.Empty);
    }

    [Test]
    public void A_file_the_kernel_cannot_execute_gives_126_from_the_launcher()
    {
        string dir = Harness.TempDirectory(Who);
        // A NUL in its first bytes: a program for another machine, not a
        // script (which /bin/sh would run, as execvp(3) does).
        var r = Shell($"printf '\\177ELF\\0\\0not a program' > {dir}/junk && chmod 755 {dir}/junk && \"$NONET\" {dir}/junk");
        Assert.That(r.ExitCode, Is.EqualTo(126), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo($"nonet: {dir}/junk: Exec format error\n"));
    }

    [Test]
    public void An_unknown_option_gives_125_and_one_line()
    {
        var r = Nonet("--no-such-option", "true");
        Assert.That(r.ExitCode, Is.EqualTo(125));
        Assert.That(r.Stderr, Is.EqualTo("nonet: unknown option '--no-such-option'; see 'nonet --help'\n"));
    }

    [Test]
    public void A_missing_launcher_gives_125_and_the_command_does_not_run()
    {
        string dir = Harness.TempDirectory(Who);
        var r = Nonet("--launcher", "/no/such/launcher", "touch", $"{dir}/ran");
        Assert.That(r.ExitCode, Is.EqualTo(125));
        Assert.That(r.Stderr, Is.EqualTo("nonet: launcher /no/such/launcher (from option --launcher) does not exist\n"));
        Assert.That(File.Exists($"{dir}/ran"), Is.False);
    }

    [Test]
    public void Nonet_without_a_launcher_beside_it_says_where_it_looked()
    {
        string dir = Harness.TempDirectory(Who);
        var r = Shell($"cp \"$NONET\" {dir}/nonet && {dir}/nonet touch {dir}/ran");
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Does.StartWith($"nonet: cannot find nonet-launcher (looked in {dir}/nonet-launcher and "));
        Assert.That(r.Stderr.TrimEnd('\n'), Does.Not.Contain("\n"));
        Assert.That(File.Exists($"{dir}/ran"), Is.False);
    }

    [Test]
    public void A_kernel_that_refuses_user_namespaces_gives_125_with_the_reason()
    {
        // bwrap --disable-userns leaves a sandbox where clone(CLONE_NEWUSER)
        // fails (ENOSPC), the way a locked-down host or container refuses it.
        string dir = Harness.TempDirectory(Who);
        var r = Harness.Run(Who, "bwrap", ["--unshare-user", "--disable-userns", "--dev-bind", "/", "/", Harness.Nonet, "touch", $"{dir}/ran"]);
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Does.StartWith("nonet: cannot create a user namespace: clone: No space left on device; nonet runs inside a user namespace that allows no more"));
        Assert.That(r.Stderr.TrimEnd('\n'), Does.Not.Contain("\n"));
        Assert.That(File.Exists($"{dir}/ran"), Is.False, "never fail open");
    }

    [Test]
    public void An_unmapped_uid_gives_125_and_explains_it()
    {
        // unshare --user without a mapping: nonet's own uid shows as 65534,
        // and the kernel lets no namespace be created below.
        string dir = Harness.TempDirectory(Who);
        var r = Harness.Run(Who, "unshare", ["--user", Harness.Nonet, "touch", $"{dir}/ran"]);
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Does.Match(@"^nonet: cannot create a user namespace: clone: Operation not permitted; nonet runs inside a user namespace that does not map your uid 65534/gid 65534 [^\n]*\n$"));
        Assert.That(File.Exists($"{dir}/ran"), Is.False, "never fail open");
    }

    [Test]
    public void No_stack_trace_ever_reaches_the_user()
    {
        foreach (var args in new[] { new[] { "--launcher" }, new[] { "--json" }, new[] { "--self-test", "ls" }, new[] { "--version", "--self-test" }, new[] { "" } })
        {
            var r = Nonet(args);
            Assert.That(r.Stderr, Does.Not.Contain("   at ").And.Not.Contain("Exception"), string.Join(' ', args) + ": " + r);
            Assert.That(r.Stderr.TrimEnd('\n').Split('\n'), Has.Length.EqualTo(1), string.Join(' ', args) + ": " + r);
            Assert.That(r.ExitCode, Is.AnyOf(125, 127), string.Join(' ', args));
        }
    }

    [Test]
    public void A_script_without_a_shebang_runs_with_bin_sh_like_execvp()
    {
        string dir = Harness.TempDirectory(Who);
        var r = Shell($"printf 'echo \"$0\" \"$@\"; exit 3\\n' > {dir}/script && chmod 755 {dir}/script && \"$NONET\" {dir}/script a 'b c'");
        Assert.That(r.ExitCode, Is.EqualTo(3), r.ToString());
        Assert.That(r.Stdout, Is.EqualTo($"{dir}/script a b c\n"));
        Assert.That(r.Stderr, Is.Empty);
    }

    [Test]
    public void A_symbolic_link_loop_gives_126_like_the_shell()
    {
        string dir = Harness.TempDirectory(Who);
        var r = Shell($"cd {dir} && ln -s loop2 loop1 && ln -s loop1 loop2 && \"$NONET\" {dir}/loop1");
        Assert.That(r.ExitCode, Is.EqualTo(126), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo($"nonet: {dir}/loop1: Too many levels of symbolic links\n"));
        var onPath = Shell($"PATH={dir}:/usr/bin:/bin \"$NONET\" loop1");
        Assert.That(onPath.ExitCode, Is.EqualTo(126), onPath.ToString());
        Assert.That(onPath.Stderr, Is.EqualTo("nonet: loop1: Too many levels of symbolic links\n"));
    }

    [Test]
    public void A_script_whose_interpreter_is_missing_names_the_interpreter()
    {
        string dir = Harness.TempDirectory(Who);
        var r = Shell($"printf '#!/no/such/interpreter -x\\necho ran\\n' > {dir}/script && chmod 755 {dir}/script && \"$NONET\" {dir}/script");
        Assert.That(r.ExitCode, Is.EqualTo(127), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo($"nonet: {dir}/script: bad interpreter /no/such/interpreter: No such file or directory\n"));
        Assert.That(r.Stdout, Is.Empty);
    }
}
