using System.IO;
using System.Linq;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>The shell completions in completions/, run by the real shells
/// (make test installs zsh and fish as root, or names them).</summary>
public sealed class CompletionTests(Identity identity) : EndToEndTest(identity)
{
    /// <summary>What fish offers for <paramref name="line"/> with nonet's
    /// completion loaded, run in a directory that holds echo-file.txt.</summary>
    private string[] Fish(string line)
    {
        string dir = Harness.TempDirectory(Who);
        var touch = Shell($"touch {dir}/echo-file.txt");
        Assert.That(touch.ExitCode, Is.Zero, touch.ToString());
        var r = Shell($"cd {dir} && exec fish --no-config -c \"source {Harness.RepositoryRoot}/completions/nonet.fish; complete -C'{line}'\"");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        return r.Stdout.Split('\n', System.StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[0]).ToArray();
    }

    [TestCase("--report-file f.jsonl")]
    [TestCase("--launcher /x/nonet-launcher")]
    [TestCase("--forward 5432")]
    [TestCase("--publish 8080")]
    public void Fish_completes_the_command_after_an_option_and_its_value(string options)
    {
        var offered = Fish($"nonet {options} ech");
        Assert.That(offered, Does.Contain("echo"), "the command's name, not a file");
        Assert.That(offered, Does.Not.Contain("echo-file.txt"), "the option's value is not the command");
    }

    [Test]
    public void Fish_completes_a_file_as_the_value_of_report_file()
    {
        Assert.That(Fish("nonet --report-file ech"), Does.Contain("echo-file.txt"));
    }
}
