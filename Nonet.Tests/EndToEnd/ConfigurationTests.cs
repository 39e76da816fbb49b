using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>The user's configuration file, environment and options, through
/// the real binary.</summary>
public sealed class ConfigurationTests(Identity identity) : EndToEndTest(identity)
{
    private string WriteConfig(string text)
    {
        string xdg = Harness.TempDirectory(Who);
        var r = Shell($"mkdir -p {xdg}/nonet && cat > {xdg}/nonet/config", stdin: System.Text.Encoding.UTF8.GetBytes(text));
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        return xdg;
    }

    [Test]
    public void A_malformed_config_file_stops_nonet_naming_file_and_line()
    {
        string xdg = WriteConfig("# settings\nshell = /bin/sh\nthis line is wrong\n");
        string dir = Harness.TempDirectory(Who);
        var r = NonetWith(new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg }, "touch", $"{dir}/ran");
        Assert.That(r.ExitCode, Is.EqualTo(125));
        Assert.That(r.Stderr, Is.EqualTo($"nonet: {xdg}/nonet/config:3: expected 'key = value', found 'this line is wrong'\n"));
        Assert.That(File.Exists($"{dir}/ran"), Is.False);
    }

    [Test]
    public void An_unknown_key_is_a_warning_and_the_command_still_runs()
    {
        string xdg = WriteConfig("\nshel = /bin/bash\n");
        var r = NonetWith(new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg }, "echo", "ran");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("ran\n"));
        Assert.That(r.Stderr, Is.EqualTo($"nonet: warning: {xdg}/nonet/config:2: unknown setting 'shel' ignored\n"));
    }

    [Test]
    public void An_unknown_environment_setting_is_a_warning()
    {
        var r = NonetWith(new Dictionary<string, string?> { ["NONET_LAUNCHR"] = "/x" }, "true");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stderr, Is.EqualTo("nonet: warning: environment variable NONET_LAUNCHR: unknown setting 'LAUNCHR' ignored\n"));
    }

    [Test]
    public void Print_config_shows_each_value_and_where_it_came_from()
    {
        string xdg = WriteConfig("shell = /bin/dash\nlauncher = /from/file\n");
        var env = new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg, ["NONET_LAUNCHER"] = "/from/env" };
        var r = Harness.Run(Who, Harness.Nonet, ["--print-config"], env);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain($"shell = /bin/dash    # from {xdg}/nonet/config:1\n"));
        Assert.That(r.Stdout, Does.Contain("launcher = /from/env    # from environment NONET_LAUNCHER\n"));

        var json = Harness.Run(Who, Harness.Nonet, ["--launcher", "/from/option", "--print-config", "--json"], env);
        using var doc = JsonDocument.Parse(json.Stdout);
        var launcher = doc.RootElement.GetProperty("settings").GetProperty("launcher");
        Assert.That(launcher.GetProperty("value").GetString(), Is.EqualTo("/from/option"));
        Assert.That(launcher.GetProperty("source").GetString(), Is.EqualTo("option --launcher"));
    }

    [Test]
    public void The_launcher_setting_is_used()
    {
        string xdg = WriteConfig($"launcher = {Harness.BinDirectory}/nonet-launcher\n");
        var r = NonetWith(new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg }, "ip", "-br", "link");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.StartWith("lo "));
        string missing = WriteConfig("launcher = /nowhere/nonet-launcher\n");
        var bad = NonetWith(new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = missing }, "true");
        Assert.That(bad.ExitCode, Is.EqualTo(125));
        Assert.That(bad.Stderr, Is.EqualTo($"nonet: launcher /nowhere/nonet-launcher (from {missing}/nonet/config:1) does not exist\n"));
    }
}
