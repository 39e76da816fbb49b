using System;
using System.Linq;
using System.Collections.Generic;
using System.IO;
using Nonet.Config;
using Nonet.Interop;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

public sealed class IniFileTests
{
    [Test]
    public void Keys_comments_sections_and_quotes()
    {
        var entries = IniFile.Parse("f", "# comment\n; another\n\nshell = /bin/zsh \n  launcher=\"/opt/a b\"\n[extra]\nkey = v=w\n");
        Assert.That(entries["shell"], Is.EqualTo(("/bin/zsh", 4)));
        Assert.That(entries["launcher"], Is.EqualTo(("/opt/a b", 5)));
        Assert.That(entries["extra:key"], Is.EqualTo(("v=w", 7)));
        Assert.That(entries, Has.Count.EqualTo(3));
    }

    [Test]
    public void Keys_are_case_insensitive_and_the_last_one_wins()
    {
        var entries = IniFile.Parse("f", "SHELL = /a\nshell = /b\n");
        Assert.That(entries["shell"], Is.EqualTo(("/b", 2)));
    }

    [Test]
    public void An_empty_value_is_allowed()
    {
        Assert.That(IniFile.Parse("f", "shell =\n")["shell"].Value, Is.Empty);
    }

    [TestCase("shell /bin/sh", 1, "expected 'key = value', found 'shell /bin/sh'")]
    [TestCase("\n\n = x", 3, "malformed key '' (letters, digits, '-', '_' and '.' only)")]
    [TestCase("my key = x", 1, "malformed key 'my key' (letters, digits, '-', '_' and '.' only)")]
    [TestCase("[section", 1, "malformed section header '[section'")]
    [TestCase("[]", 1, "malformed section header '[]'")]
    [TestCase("ok = 1\nshell = \"/bin/sh", 2, "unbalanced quote in value of 'shell'")]
    public void A_malformed_line_names_the_file_and_line(string text, int line, string problem)
    {
        var e = Assert.Throws<ConfigFileException>(() => IniFile.Parse("/etc/nonet/config", text))!;
        Assert.That(e.Message, Is.EqualTo($"/etc/nonet/config:{line}: {problem}"));
        Assert.That(e.ExitCode, Is.EqualTo(125));
    }
}

public sealed class NonetConfigurationTests
{
    private string dir = "";
    private readonly List<string> warnings = [];

    [SetUp]
    public void CreateDirectory()
    {
        dir = Path.Combine(Path.GetTempPath(), "nonet-config-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        warnings.Clear();
    }

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(dir, recursive: true);

    private ConfigPaths Files(string? system, string? user)
    {
        string s = Path.Combine(dir, "system"), u = Path.Combine(dir, "user");
        if (system is not null)
            File.WriteAllText(s, system);
        if (user is not null)
            File.WriteAllText(u, user);
        return new ConfigPaths(FilePath.Of(s), FilePath.Of(u));
    }

    private NonetConfiguration Load(ConfigPaths paths, Dictionary<string, string>? overrides = null) =>
        NonetConfiguration.Load(paths, overrides ?? new Dictionary<string, string>(), warnings.Add);

    [Test]
    public void The_user_file_overrides_the_system_file_and_options_override_both()
    {
        var paths = Files("shell = /bin/a\nlauncher = /sys/l\n", "shell = /bin/b\n");
        var config = Load(paths);
        Assert.That(config.Describe("shell"), Is.EqualTo(new EffectiveSetting("shell", "/bin/b", $"{dir}/user:1")));
        Assert.That(config.Describe("launcher"), Is.EqualTo(new EffectiveSetting("launcher", "/sys/l", $"{dir}/system:2")));
        var overridden = Load(paths, new() { ["launcher"] = "/opt/l" });
        Assert.That(overridden.Describe("launcher"), Is.EqualTo(new EffectiveSetting("launcher", "/opt/l", "option --launcher")));
        Assert.That(warnings, Is.Empty);
    }

    [Test]
    public void An_empty_list_setting_turns_off_a_lower_layers_list()
    {
        var paths = Files("forward = 5432\npublish = 8080\nshell = /bin/a\n", "forward =\nshell =\n");
        var config = Load(paths);
        Assert.That(config.Describe("forward"), Is.EqualTo(new EffectiveSetting("forward", "", $"{dir}/user:1")), "a list: empty means none");
        Assert.That(config.Describe("publish"), Is.EqualTo(new EffectiveSetting("publish", "8080", $"{dir}/system:2")));
        Assert.That(config.Describe("shell"), Is.EqualTo(new EffectiveSetting("shell", "/bin/a", $"{dir}/system:3")), "not a list: empty means unset");
        Assert.That(warnings, Is.Empty);
    }

    [Test]
    public void Missing_files_are_fine_and_settings_default()
    {
        var config = Load(Files(null, null));
        Assert.That(config.Get("shell"), Is.Null);
        Assert.That(config.Describe(), Is.EqualTo(new[] { "shell", "launcher", "forward", "publish", "hint", "report", "report-file", "allow" }.Select(k => new EffectiveSetting(k, null, "default"))));
    }

    [Test]
    public void An_empty_value_does_not_hide_a_lower_layer()
    {
        var config = Load(Files("shell = /bin/a\n", "shell =\n"));
        Assert.That(config.Get("shell"), Is.EqualTo("/bin/a"));
    }

    [Test]
    public void Unknown_keys_are_warnings_naming_file_and_line()
    {
        Load(Files("# x\nshel = /bin/a\n", "[net]\nforward = 1\n"));
        Assert.That(warnings, Is.EqualTo(new[]
        {
            $"warning: {dir}/system:2: unknown setting 'shel' ignored",
            $"warning: {dir}/user:2: unknown setting 'net:forward' ignored",
        }));
    }

    [Test]
    public void A_malformed_user_file_stops_the_load()
    {
        var e = Assert.Throws<ConfigFileException>(() => Load(Files("shell = /bin/a\n", "oops\n")))!;
        Assert.That(e.Message, Is.EqualTo($"{dir}/user:1: expected 'key = value', found 'oops'"));
    }

    [Test]
    public void A_directory_in_place_of_the_file_is_an_error()
    {
        var paths = Files(null, null);
        Directory.CreateDirectory(paths.User!.Shown);
        var e = Assert.Throws<ConfigFileException>(() => Load(paths))!;
        Assert.That(e.Message, Is.EqualTo($"{dir}/user: is a directory, not a configuration file"));
    }

    [Test]
    public void Config_paths_follow_the_XDG_rules()
    {
        static Func<string, byte[]?> Env(string? home, string? xdg) => n => n switch
        {
            "HOME" => home is null ? null : System.Text.Encoding.UTF8.GetBytes(home),
            "XDG_CONFIG_HOME" => xdg is null ? null : System.Text.Encoding.UTF8.GetBytes(xdg),
            _ => null,
        };
        Assert.That(ConfigPaths.FromEnvironment(Env("/home/u", null)).User, Is.EqualTo(FilePath.Of("/home/u/.config/nonet/config")));
        Assert.That(ConfigPaths.FromEnvironment(Env("/home/u/", null)).User, Is.EqualTo(FilePath.Of("/home/u/.config/nonet/config")));
        Assert.That(ConfigPaths.FromEnvironment(Env("/home/u", "/xdg")).User, Is.EqualTo(FilePath.Of("/xdg/nonet/config")));
        // A relative XDG_CONFIG_HOME is invalid by the specification and ignored.
        Assert.That(ConfigPaths.FromEnvironment(Env("/home/u", "rel")).User, Is.EqualTo(FilePath.Of("/home/u/.config/nonet/config")));
        Assert.That(ConfigPaths.FromEnvironment(Env(null, null)), Is.EqualTo(new ConfigPaths(FilePath.Of("/etc/nonet/config"), null)));
    }

    [Test]
    public void Config_paths_keep_bytes_that_are_not_UTF8()
    {
        byte[] home = [.. "/home/"u8, 0xff, 0xfe];
        var paths = ConfigPaths.FromEnvironment(n => n == "HOME" ? home : null);
        Assert.That(paths.User!.Bytes, Is.EqualTo((byte[])[.. home, .. "/.config/nonet/config"u8]));
        Assert.That(paths.User.Shown, Is.EqualTo("/home/\\xff\\xfe/.config/nonet/config"));
    }
}
