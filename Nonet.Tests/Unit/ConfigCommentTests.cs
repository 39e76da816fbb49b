using Nonet.Config;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

/// <summary>Comments after a value, as in git's config, and the quoting
/// that --print-config uses to write values back.</summary>
public sealed class ConfigCommentTests
{
    [TestCase("forward = 5432   # my db", "forward", "5432")]
    [TestCase("shell = /bin/bash  # later zsh", "shell", "/bin/bash")]
    [TestCase("shell = /bin/bash\t; later zsh", "shell", "/bin/bash")]
    [TestCase("forward = 5432, 6379 ;two", "forward", "5432, 6379")]
    [TestCase("forward = # none for now", "forward", "")]
    [TestCase("forward =# none for now", "forward", "")]
    [TestCase("launcher = /opt/a#b;c", "launcher", "/opt/a#b;c")]
    [TestCase("launcher = \"/opt/a #b\"", "launcher", "/opt/a #b")]
    [TestCase("launcher = \"/opt/a #b\"   # the one with a hash", "launcher", "/opt/a #b")]
    [TestCase("launcher = \"/opt/a ;b\";", "launcher", null)]
    [TestCase("launcher = \"a \\\"quoted\\\" \\\\ name\"", "launcher", "a \"quoted\" \\ name")]
    [TestCase("launcher = \"C:\\dir\"", "launcher", "C:\\dir")]
    [TestCase("launcher = C:\\dir", "launcher", "C:\\dir")]
    [TestCase("[extra] # a section\nkey = v # c", "extra:key", "v")]
    public void A_comment_after_whitespace_ends_the_value(string line, string key, string? value)
    {
        if (value is null)
        {
            var e = Assert.Throws<ConfigFileException>(() => IniFile.Parse("f", line))!;
            Assert.That(e.Message, Is.EqualTo($"f:1: text after the closing quote in value of '{key}'"));
            return;
        }
        Assert.That(IniFile.Parse("f", line)[key].Value, Is.EqualTo(value));
    }

    [TestCase("shell = \"/bin/sh\" extra", "text after the closing quote in value of 'shell'")]
    [TestCase("shell = /bin/\"sh", "unbalanced quote in value of 'shell'")]
    [TestCase("shell = \"/bin/sh", "unbalanced quote in value of 'shell'")]
    [TestCase("shell = \"/bin/sh\\\"", "unbalanced quote in value of 'shell'")]
    public void A_broken_quote_names_the_line(string line, string problem)
    {
        var e = Assert.Throws<ConfigFileException>(() => IniFile.Parse("f", line))!;
        Assert.That(e.Message, Is.EqualTo($"f:1: {problem}"));
    }

    [TestCase("")]
    [TestCase("/bin/bash")]
    [TestCase("/opt/a#b")]
    [TestCase("/opt/a #b")]
    [TestCase("#start")]
    [TestCase(";start")]
    [TestCase(" padded ")]
    [TestCase("say \"hi\"")]
    [TestCase("back\\slash \"and quote\\\"")]
    [TestCase("5432, [::1]:6379")]
    public void A_quoted_value_reads_back_as_itself(string value)
    {
        string line = "key = " + IniFile.Quote(value) + "   # a comment";
        Assert.That(IniFile.Parse("f", line)["key"].Value, Is.EqualTo(value), line);
    }
}
