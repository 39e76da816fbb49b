using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>nonet's own output into a pipe that nobody reads any more
/// ('nonet --help | head -1') ends silently, killed by SIGPIPE as coreutils
/// are; and --help fits in 80 columns.</summary>
public sealed class ClosedPipeTests(Identity identity) : EndToEndTest(identity)
{
    /// <summary>Runs nonet with its stdout a pipe whose reading end is
    /// already closed (so no race with the reader), SIGPIPE at its default
    /// as a shell leaves it; prints the status as Python sees it (-13: killed
    /// by SIGPIPE) and stderr.</summary>
    private const string IntoClosedPipe = """
        import os, subprocess, sys
        r, w = os.pipe()
        os.close(r)
        p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE, timeout=60)
        sys.stdout.write(f"{p.returncode} {p.stderr.decode()!r}")
        """;

    [TestCase("--help")]
    [TestCase("--version")]
    [TestCase("--print-config")]
    [TestCase("--print-config", "--json")]
    [TestCase("--self-test")]
    public void Output_into_a_closed_pipe_ends_silently_by_SIGPIPE(params string[] options)
    {
        var r = Harness.Run(Who, Python, ["-c", IntoClosedPipe, Harness.Nonet, .. options]);
        Assert.That(r.Stdout, Is.EqualTo("-13 ''"), r.ToString());
    }

    [Test]
    public void A_shell_sees_status_141()
    {
        // A pipe with a reader that is gone before nonet writes: 'exec 0<&-'
        // in a subshell that waits on nothing closes it at once; the sleep in
        // front of nonet makes sure it has.
        var r = Shell("{ sleep 0.5; \"$NONET\" --help; echo \"status $?\" >&2; } | exec 0<&-");
        Assert.That(r.Stderr, Is.EqualTo("status 141\n"), r.ToString());
    }

    [Test]
    public void Help_fits_in_80_columns()
    {
        var r = Nonet("--help");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout.Split('\n'), Has.None.Matches<string>(l => l!.Length > 80));
    }
}
