using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// --print-config prints a configuration file: the settings in effect
/// (options included), with their sources as comments, which reads back to
/// the same settings; its --json, and --self-test's, have snake_case keys and
/// typed values.  Comments may follow a value, as in git's config.
/// </summary>
public sealed class PrintConfigFileTests(Identity identity) : EndToEndTest(identity)
{
    private string WriteConfig(string text)
    {
        string xdg = Harness.TempDirectory(Who);
        var r = Shell($"mkdir -p {xdg}/nonet && cat > {xdg}/nonet/config", stdin: Encoding.UTF8.GetBytes(text));
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        return xdg;
    }

    private RunResult PrintConfig(IDictionary<string, string?> env, params string[] options)
    {
        var r = Harness.Run(Who, Harness.Nonet, [.. options, "--print-config"], env);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stderr, Is.Empty);
        return r;
    }

    /// <summary>The 'key = value' lines, in order.</summary>
    private static string[] Settings(string text) =>
        text.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();

    private static Dictionary<string, string> JsonValues(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("settings").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.GetProperty("value").GetRawText());
    }

    /// <summary>Prints, writes that as the only configuration file, prints
    /// again with no environment setting and no option: the same values.</summary>
    private void AssertRoundTrip(IDictionary<string, string?> env, string[] options)
    {
        var first = PrintConfig(env, options);
        var firstJson = PrintConfig(env, [.. options, "--json"]);
        string xdg = WriteConfig(first.Stdout);
        var again = new Dictionary<string, string?>(env.Where(e => !e.Key.StartsWith("NONET_")))
        {
            ["XDG_CONFIG_HOME"] = xdg,
        };
        foreach (var key in env.Keys.Where(k => k.StartsWith("NONET_")))
            again[key] = null;
        var second = PrintConfig(again);
        Assert.That(Settings(second.Stdout), Is.EqualTo(Settings(first.Stdout)), $"first:\n{first.Stdout}\nsecond:\n{second.Stdout}");
        Assert.That(JsonValues(PrintConfig(again, "--json").Stdout), Is.EqualTo(JsonValues(firstJson.Stdout)));
        // Every setting came from the file the second time.
        Assert.That(second.Stdout, Does.Contain($"# from {xdg}/nonet/config:"));
    }

    [Test]
    public void The_defaults_read_back_as_themselves()
    {
        var env = new Dictionary<string, string?> { ["SHELL"] = null };
        var r = PrintConfig(env);
        Assert.That(Settings(r.Stdout), Is.EqualTo(new[]
        {
            "shell = /bin/sh",
            $"launcher = {Harness.BinDirectory}/nonet-launcher",
            "forward =",
            "publish =",
            "hint = auto",
            "report = off",
            "report-file =",
            "allow =",
        }));
        AssertRoundTrip(env, []);
    }

    [Test]
    public void Settings_from_every_layer_and_options_read_back_as_themselves()
    {
        string xdg = WriteConfig("""
            shell = /bin/dash   # the small one
            forward = 5432   # my db
            publish = 18000 ; a server
            report-file = "/tmp/a #1.jsonl"
            """);
        var env = new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg, ["NONET_REPORT"] = "yes", ["SHELL"] = "/bin/bash" };
        string[] options = ["--forward", "18081", "--no-hint", "--publish", "18002:8002"];
        var r = PrintConfig(env, options);
        Assert.That(r.Stdout, Does.Contain($"# from {xdg}/nonet/config:2, then option --forward\nforward = 5432, 18081\n"));
        Assert.That(r.Stdout, Does.Contain($"# from {xdg}/nonet/config:3, then option --publish\npublish = 18000, 18002:8002\n"));
        Assert.That(r.Stdout, Does.Contain("# from environment NONET_REPORT\nreport = on\n"), "'yes' is on");
        Assert.That(r.Stdout, Does.Contain("# from option --hint/--no-hint\nhint = off\n"));
        Assert.That(r.Stdout, Does.Contain($"# from {xdg}/nonet/config:4\nreport-file = \"/tmp/a #1.jsonl\"\n"));
        Assert.That(r.Stdout, Does.Contain("# from environment SHELL (the 'shell' setting, /bin/dash from"));
        AssertRoundTrip(env, options);
    }

    [Test]
    public void Forwards_given_only_as_options_show_as_the_forward_setting()
    {
        var r = PrintConfig(new Dictionary<string, string?>(), "--forward", "18081");
        Assert.That(r.Stdout, Does.Contain("# from option --forward\nforward = 18081\n"));
        Assert.That(r.Stdout, Does.Not.Contain("forward =\n"), "not none: the option is in effect");
    }

    [Test]
    public void A_comment_after_a_value_is_no_part_of_it()
    {
        string xdg = WriteConfig("forward = 5432   # my db\nshell = /bin/bash  # later zsh\nhint = off ; quiet\n");
        var env = new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = xdg, ["SHELL"] = null };
        var run = Harness.Run(Who, Harness.Nonet, ["sh", "-c", "echo ran"], env);
        Assert.That((run.ExitCode, run.Stdout, run.Stderr), Is.EqualTo((0, "ran\n", "")), run.ToString());

        // No command: the 'shell' setting runs, without the comment.
        var shell = Harness.Run(Who, Harness.Nonet, [], env, stdin: "echo \"bash $BASH_VERSION\"\n"u8.ToArray());
        Assert.That(shell.ExitCode, Is.Zero, shell.ToString());
        Assert.That(shell.Stdout, Does.Match(@"^bash \d"));

        var json = PrintConfig(env, "--json");
        using var doc = JsonDocument.Parse(json.Stdout);
        var settings = doc.RootElement.GetProperty("settings");
        Assert.That(settings.GetProperty("forward").GetProperty("value").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "5432" }));
        Assert.That(settings.GetProperty("shell").GetProperty("value").GetString(), Is.EqualTo("/bin/bash"));
        Assert.That(settings.GetProperty("hint").GetProperty("value").GetString(), Is.EqualTo("off"));
    }

    /// <summary>Every property name in the document, with its path.</summary>
    private static IEnumerable<(string Path, string Name)> Keys(JsonElement element, string path)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in element.EnumerateObject())
            {
                yield return (path, p.Name);
                foreach (var nested in Keys(p.Value, path + "." + p.Name))
                    yield return nested;
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in element.EnumerateArray())
            {
                foreach (var nested in Keys(item, path + "[]"))
                    yield return nested;
            }
        }
    }

    private static void AssertSnakeCase(JsonElement root)
    {
        foreach (var (path, name) in Keys(root, ""))
        {
            // The kernel's own names of the sysctls keep their dots.
            string pattern = path == ".facts.sysctls" ? "^[a-z0-9_]+(\\.[a-z0-9_]+)+$" : "^[a-z0-9]+(_[a-z0-9]+)*$";
            Assert.That(name, Does.Match(pattern), $"{path}.{name}");
        }
    }

    [Test]
    public void Print_config_json_has_snake_case_keys_booleans_and_null_only_for_nothing()
    {
        var env = new Dictionary<string, string?> { ["NONET_REPORT_FILE"] = null };
        using var doc = JsonDocument.Parse(PrintConfig(env, "--forward", "18081", "--publish", "18002:8002", "--json").Stdout);
        AssertSnakeCase(doc.RootElement);
        var settings = doc.RootElement.GetProperty("settings");
        Assert.That(settings.GetProperty("report").GetProperty("value").ValueKind, Is.EqualTo(JsonValueKind.False));
        Assert.That(settings.GetProperty("hint").GetProperty("value").GetString(), Is.EqualTo("auto"));
        Assert.That(settings.GetProperty("report_file").GetProperty("value").ValueKind, Is.EqualTo(JsonValueKind.Null), "no report file: truly absent");
        Assert.That(settings.GetProperty("forward").GetProperty("value").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "18081" }));
        Assert.That(doc.RootElement.GetProperty("files")[0].GetProperty("skipped").ValueKind, Is.EqualTo(JsonValueKind.False));
        Assert.That(doc.RootElement.GetProperty("forwards")[0].GetProperty("host_port").GetInt32(), Is.EqualTo(18081));
        Assert.That(doc.RootElement.GetProperty("publishes")[0].TryGetProperty("inner_port", out _), Is.True);

        var on = PrintConfig(new Dictionary<string, string?> { ["NONET_REPORT"] = "1" }, "--json");
        using var onDoc = JsonDocument.Parse(on.Stdout);
        Assert.That(onDoc.RootElement.GetProperty("settings").GetProperty("report").GetProperty("value").ValueKind, Is.EqualTo(JsonValueKind.True));
    }

    [Test]
    public void Self_test_json_has_snake_case_keys_and_typed_facts()
    {
        var r = Nonet("--self-test", "--json");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        using var doc = JsonDocument.Parse(r.Stdout);
        AssertSnakeCase(doc.RootElement);
        var facts = doc.RootElement.GetProperty("facts");
        Assert.That(facts.GetProperty("user_namespace").GetProperty("nested").ValueKind, Is.EqualTo(JsonValueKind.False));
        Assert.That(facts.GetProperty("probe_run_ms").ValueKind, Is.EqualTo(JsonValueKind.Number));
        Assert.That(facts.GetProperty("configuration").EnumerateArray().Select(f => f.GetProperty("exists").ValueKind),
            Is.All.AnyOf(JsonValueKind.True, JsonValueKind.False));
        Assert.That(facts.GetProperty("sysctls").GetProperty("user.max_user_namespaces").ValueKind, Is.EqualTo(JsonValueKind.Number));
        Assert.That(doc.RootElement.GetProperty("checks").EnumerateArray().Select(c => c.GetProperty("required").ValueKind),
            Is.All.AnyOf(JsonValueKind.True, JsonValueKind.False));
    }
}
