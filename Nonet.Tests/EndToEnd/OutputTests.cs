using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>What nonet prints itself must arrive: a full or closed stdout is
/// a failure with one line, as in coreutils.</summary>
public sealed class OutputTests(Identity identity) : EndToEndTest(identity)
{
    [TestCase("--print-config")]
    [TestCase("--print-config --json")]
    [TestCase("--help")]
    [TestCase("--version")]
    [TestCase("--self-test")]
    [TestCase("--self-test --json")]
    public void A_full_stdout_is_an_error(string options)
    {
        var r = Shell($"\"$NONET\" {options} >/dev/full");
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo("nonet: cannot write to standard output: No space left on device\n"));
    }

    [TestCase("--print-config")]
    [TestCase("--help")]
    [TestCase("--version")]
    [TestCase("--self-test")]
    public void A_closed_stdout_is_an_error(string options)
    {
        var r = Shell($"\"$NONET\" {options} >&-");
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo("nonet: cannot write to standard output: Bad file descriptor\n"));
    }

    [Test]
    public void A_command_with_a_closed_stdout_still_runs_with_it_closed()
    {
        var r = Shell("\"$NONET\" sh -c 'echo x >&2; echo y || exit 9' >&-");
        Assert.That(r.ExitCode, Is.EqualTo(9), r.ToString());
        Assert.That(r.Stderr, Does.StartWith("x\n"));
    }
}
