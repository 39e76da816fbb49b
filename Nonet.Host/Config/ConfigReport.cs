using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using Nonet.Forwarding;
using Nonet.Interop;
using Nonet.Launch;

namespace Nonet.Config;

/// <summary>One line of --print-config: the value nonet would use (null:
/// none), where it came from, and what is wrong with it, if anything.</summary>
internal sealed record ShownSetting(string Key, string? Value, string Source, string? Problem = null, bool IsList = false);

/// <summary>
/// nonet --print-config: each setting as nonet would use it, shell and
/// launcher included (their defaults are decided outside the files), as text
/// or as one JSON document with typed values.
/// </summary>
internal static class ConfigReport
{
    /// <summary>The effective settings: for 'shell', $SHELL comes first (as
    /// when nonet runs one); for 'launcher', the one nonet found.</summary>
    public static IReadOnlyList<ShownSetting> Effective(NonetConfiguration configuration, byte[]? shellVariable, FilePath hostDirectory)
    {
        var shown = new List<ShownSetting>();
        foreach (var definition in NonetConfiguration.Known)
        {
            var setting = configuration.Describe(definition.Key);
            switch (definition.Key)
            {
                case "shell" when shellVariable is { Length: > 0 }:
                    shown.Add(new("shell", UserText.Show(shellVariable), "environment SHELL"
                        + (setting.Value is null ? "" : $" (the 'shell' setting, {UserText.Show(setting.Value)} from {setting.Source}, applies when SHELL is unset or empty)")));
                    break;
                case "shell":
                    shown.Add(setting.Value is null ? new("shell", "/bin/sh", "default") : new("shell", UserText.Show(setting.Value), setting.Source));
                    break;
                case "hint" when setting.Value is null:
                    shown.Add(new("hint", "auto", "default (on when stderr is a terminal)"));
                    break;
                case "launcher":
                    var choice = LauncherLocator.Choose(setting, hostDirectory);
                    shown.Add(new("launcher", choice.Path?.Shown, choice.Source, choice.Problem));
                    break;
                default:
                    shown.Add(new(definition.Key, setting.Value is null ? null : UserText.Show(setting.Value), setting.Source, IsList: definition.IsList));
                    break;
            }
        }
        return shown;
    }

    public static string RenderText(IReadOnlyList<ConfigFileState> files, IReadOnlyList<ShownSetting> settings, ForwardingPlan plan, Allow.AllowList? allow = null)
    {
        var text = new StringBuilder();
        text.Append("# configuration files, lowest precedence first\n");
        foreach (var file in files)
            text.Append($"#   {file.Path.Shown}{(file.Exists ? "" : " (not present)")}\n");
        text.Append($"#   then {NonetConfiguration.EnvironmentPrefix}* environment variables, then options\n");
        foreach (var s in settings)
        {
            string value = s.Value ?? (s.IsList ? "(none)" : s.Key == "launcher" ? "(none found)" : "(unset)");
            text.Append($"{s.Key} = {value}    # from {s.Source}{(s.Problem is null ? "" : $": {s.Problem}")}\n");
        }
        if (!plan.IsEmpty)
        {
            text.Append("# port forwarding in effect (settings, then --forward/--publish options)\n");
            foreach (var f in plan.Forwards)
                text.Append($"#   forward {f}: {f.Describe()}\n");
            foreach (var p in plan.Publishes)
                text.Append($"#   publish {p}: {p.Describe()}\n");
        }
        if (allow is { IsEmpty: false })
        {
            text.Append("# --allow rules in effect (the setting, then --allow options)\n");
            foreach (var rule in allow.Rules)
                text.Append($"#   allow {rule}\n");
        }
        return text.ToString();
    }

    public static string RenderJson(IReadOnlyList<ConfigFileState> files, IReadOnlyList<ShownSetting> settings, ForwardingPlan plan, Allow.AllowList? allow = null)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("files");
            foreach (var file in files)
            {
                writer.WriteStartObject();
                writer.WriteString("path", file.Path.Shown);
                writer.WriteBoolean("exists", file.Exists);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteStartObject("settings");
            foreach (var s in settings)
            {
                writer.WriteStartObject(s.Key);
                if (s.IsList)
                {
                    // A list is a list: the specs as written, [] for none.
                    writer.WriteStartArray("value");
                    foreach (var spec in ForwardingPlan.SplitList(s.Value))
                        writer.WriteStringValue(spec);
                    writer.WriteEndArray();
                }
                else if (s.Value is null)
                {
                    writer.WriteNull("value");
                }
                else
                {
                    writer.WriteString("value", s.Value);
                }
                writer.WriteString("source", s.Source);
                if (s.Problem is not null)
                    writer.WriteString("problem", s.Problem);
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
            writer.WriteStartArray("forwards");
            foreach (var f in plan.Forwards)
            {
                writer.WriteStartObject();
                writer.WriteString("spec", f.ToString());
                writer.WriteString("hostAddress", f.HostAddress.ToString());
                writer.WriteNumber("hostPort", f.HostPort);
                writer.WriteNumber("innerPort", f.InnerPort);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteStartArray("publishes");
            foreach (var p in plan.Publishes)
            {
                writer.WriteStartObject();
                writer.WriteString("spec", p.ToString());
                writer.WriteNumber("innerPort", p.InnerPort);
                writer.WriteNumber("hostPort", p.HostPort);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteStartArray("allow");
            foreach (var rule in allow?.Rules ?? [])
                writer.WriteStringValue(rule.ToString());
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
