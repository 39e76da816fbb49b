using System.IO;
using System.Linq;
using Nonet.Config;
using Nonet.Tests.EndToEnd;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

/// <summary>The commented /etc/nonet/config that the packages ship explains
/// every setting nonet knows, and its environment variable.</summary>
public sealed class ShippedConfigTests
{
    private static readonly string Text = File.ReadAllText(Path.Combine(Harness.RepositoryRoot, "packaging", "config"));

    [Test]
    public void Every_key_has_a_commented_example_and_its_variable_is_named()
    {
        foreach (var setting in NonetConfiguration.Known)
        {
            Assert.That(Text, Does.Match($"(?m)^#{setting.Key} = "), setting.Key);
            string variable = NonetConfiguration.EnvironmentPrefix + setting.Key.Replace('-', '_').ToUpperInvariant();
            Assert.That(Text, Does.Contain(variable), variable);
        }
    }

    [Test]
    public void Its_examples_uncommented_are_a_valid_configuration_of_known_keys()
    {
        string examples = string.Join('\n', Text.Split('\n').Where(l => l.StartsWith('#') && l.Contains(" = ") && !l.StartsWith("# ")).Select(l => l[1..]));
        var entries = IniFile.Parse("packaging/config", examples);
        Assert.That(entries.Keys, Is.EquivalentTo(NonetConfiguration.Known.Select(k => k.Key)));
        Assert.That(IniFile.Parse("packaging/config", Text), Is.Empty, "as shipped, everything is a comment");
    }
}
