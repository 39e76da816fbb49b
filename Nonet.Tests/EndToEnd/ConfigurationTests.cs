using System.Collections.Generic;
using System.IO;
using System.Linq;
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
        var env = new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg, ["NONET_LAUNCHER"] = "/from/env", ["SHELL"] = null };
        var r = Harness.Run(Who, Harness.Nonet, ["--print-config"], env);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain($"# from {xdg}/nonet/config:1\nshell = /bin/dash\n"));
        Assert.That(r.Stdout, Does.Contain("# from environment NONET_LAUNCHER: does not exist\nlauncher = /from/env\n"));

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

    [Test]
    public void Print_config_shows_the_shell_and_launcher_nonet_would_use()
    {
        string xdg = WriteConfig("shell = /bin/dash\n");
        var none = new Dictionary<string, string?> { ["SHELL"] = null };
        var r = Harness.Run(Who, Harness.Nonet, ["--print-config"], none);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain("# from default\nshell = /bin/sh\n"));
        Assert.That(r.Stdout, Does.Contain($"# from default (beside nonet)\nlauncher = {Harness.BinDirectory}/nonet-launcher\n"));

        var withShell = Harness.Run(Who, Harness.Nonet, ["--print-config"],
            new Dictionary<string, string?> { ["SHELL"] = "/bin/bash", ["XDG_CONFIG_HOME"] = xdg });
        Assert.That(withShell.Stdout, Does.Contain($"# from environment SHELL (the 'shell' setting, /bin/dash from {xdg}/nonet/config:1, applies when SHELL is unset or empty)\nshell = /bin/bash\n"));

        var json = Harness.Run(Who, Harness.Nonet, ["--print-config", "--json"], none);
        using var doc = JsonDocument.Parse(json.Stdout);
        var settings = doc.RootElement.GetProperty("settings");
        Assert.That(settings.GetProperty("shell").GetProperty("value").GetString(), Is.EqualTo("/bin/sh"));
        Assert.That(settings.GetProperty("launcher").GetProperty("value").GetString(), Is.EqualTo($"{Harness.BinDirectory}/nonet-launcher"));
        Assert.That(settings.GetProperty("launcher").GetProperty("source").GetString(), Is.EqualTo("default (beside nonet)"));
    }

    [Test]
    public void Print_config_json_has_typed_values()
    {
        var r = Harness.Run(Who, Harness.Nonet, ["--publish", "18000:8000", "--print-config", "--json"],
            new Dictionary<string, string?> { ["NONET_FORWARD"] = "5432, [::1]:6379" });
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        using var doc = JsonDocument.Parse(r.Stdout);
        var forward = doc.RootElement.GetProperty("settings").GetProperty("forward").GetProperty("value");
        Assert.That(forward.ValueKind, Is.EqualTo(JsonValueKind.Array));
        Assert.That(forward.EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "5432", "[::1]:6379" }));
        Assert.That(doc.RootElement.GetProperty("settings").GetProperty("publish").GetProperty("value").GetArrayLength(), Is.EqualTo(1), "the option's publish is in effect");
        Assert.That(doc.RootElement.GetProperty("files")[0].GetProperty("exists").ValueKind, Is.AnyOf(JsonValueKind.True, JsonValueKind.False));
        var publish = doc.RootElement.GetProperty("publishes")[0];
        Assert.That(publish.GetProperty("host_port").GetInt32(), Is.EqualTo(18000));
        Assert.That(publish.GetProperty("inner_port").GetInt32(), Is.EqualTo(8000));
    }

    /// <summary>For root, a prefix that takes its capabilities away, so that
    /// file permissions apply to it as to anyone.</summary>
    private string WithoutCapabilities => Who == Identity.Root ? "setpriv --bounding-set=-all --inh-caps=-all -- " : "";

    private static string OneLine(RunResult r) => r.Stderr.TrimEnd('\n');

    [Test]
    public void A_config_directory_that_cannot_be_searched_stops_nonet_naming_the_file()
    {
        string xdg = WriteConfig("shell = /bin/sh\n");
        string dir = Harness.TempDirectory(Who);
        foreach (var args in new[] { $"touch {dir}/ran", "--print-config" })
        {
            var r = Shell($"chmod 000 {xdg}/nonet && XDG_CONFIG_HOME={xdg} {WithoutCapabilities}\"$NONET\" {args}; s=$?; chmod 755 {xdg}/nonet; exit $s");
            Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
            Assert.That(r.Stderr, Is.EqualTo($"nonet: {xdg}/nonet/config: cannot read: Permission denied\n"));
            Assert.That(r.Stdout, Is.Empty);
        }
        Assert.That(File.Exists($"{dir}/ran"), Is.False);
    }

    [TestCase("mkfifo CONFIG", "is a FIFO, not a regular file")]
    [TestCase("ln -s /dev/zero CONFIG", "is a character device, not a regular file")]
    [TestCase("ln -s loop CONFIG && ln -s CONFIG loop", "cannot read: Too many levels of symbolic links")]
    [TestCase("head -c 1048577 /dev/zero | tr '\\0' '#' > CONFIG", "is too large (1048577 bytes; at most 1048576)")]
    public void A_config_file_that_is_no_small_regular_file_stops_nonet_at_once(string make, string problem)
    {
        string xdg = Harness.TempDirectory(Who);
        string config = $"{xdg}/nonet/config";
        string dir = Harness.TempDirectory(Who);
        var setup = Shell($"mkdir -p {xdg}/nonet && cd {xdg}/nonet && " + make.Replace("CONFIG", config));
        Assert.That(setup.ExitCode, Is.Zero, setup.ToString());
        foreach (var args in new[] { new[] { "touch", $"{dir}/ran" }, new[] { "--print-config" } })
        {
            var started = System.Diagnostics.Stopwatch.StartNew();
            var r = Harness.Run(Who, Harness.Nonet, args, new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg }, timeout: System.TimeSpan.FromSeconds(10));
            Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
            Assert.That(r.Stderr, Is.EqualTo($"nonet: {config}: {problem}\n"));
            Assert.That(started.Elapsed, Is.LessThan(System.TimeSpan.FromSeconds(5)), "no blocking, no reading without end");
        }
        Assert.That(File.Exists($"{dir}/ran"), Is.False);
    }

    [Test]
    public void Config_paths_that_are_not_UTF8_are_read_as_bytes()
    {
        string dir = Harness.TempDirectory(Who);
        // XDG_CONFIG_HOME, then HOME (without XDG_CONFIG_HOME), holding \xff.
        var r = Shell($$"""
            d="{{dir}}/$(printf 'x\377')"
            mkdir -p "$d/nonet" "$d/.config/nonet"
            echo 'shell = /bin/from-xdg' > "$d/nonet/config"
            echo 'shell = /bin/from-home' > "$d/.config/nonet/config"
            unset SHELL
            XDG_CONFIG_HOME="$d" "$NONET" --print-config | grep -B1 '^shell'
            unset XDG_CONFIG_HOME
            HOME="$d" "$NONET" --print-config | grep -B1 '^shell'
            """);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo(
            $"# from {dir}/x\\xff/nonet/config:1\nshell = /bin/from-xdg\n" +
            $"# from {dir}/x\\xff/.config/nonet/config:1\nshell = /bin/from-home\n"));
        Assert.That(r.Stderr, Is.Empty);
    }

    [Test]
    public void Nonet_installed_under_a_directory_that_is_not_UTF8_finds_its_launcher()
    {
        string dir = Harness.TempDirectory(Who);
        var r = Shell($$"""
            d="{{dir}}/$(printf 'bin\377')"
            mkdir "$d" && cp "$NONET" "$(dirname "$NONET")/nonet-launcher" "$d/" || exit 99
            "$d/nonet" ip -br link && "$d/nonet" --version
            """);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.StartWith("lo "));
        Assert.That(r.Stdout, Does.EndWith($" ({dir}/bin\\xff/nonet-launcher)\n"));
        Assert.That(r.Stderr, Is.Empty);
    }
}
