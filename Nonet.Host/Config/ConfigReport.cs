using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using Nonet.Forwarding;
using Nonet.Interop;
using Nonet.Launch;

namespace Nonet.Config;

/// <summary>One setting of --print-config: the value nonet would use
/// ("" for none), where it came from, and what is wrong with it, if
/// anything.</summary>
internal sealed record ShownSetting(string Key, string Value, string Source, string? Problem = null, bool IsList = false);

/// <summary>
/// nonet --print-config: each setting as nonet would use it, shell and
/// launcher included (their defaults are decided outside the files), and
/// --forward/--publish options added to the settings, as a configuration file
/// that reads back to the same settings, or as one JSON document with typed
/// values.
/// </summary>
internal static class ConfigReport
{
    /// <summary>The effective settings: for 'shell', $SHELL comes first (as
    /// when nonet runs one); for 'launcher', the one nonet found; for
    /// 'forward' and 'publish', the settings' specs, then the options'.</summary>
    public static IReadOnlyList<ShownSetting> Effective(NonetConfiguration configuration, byte[]? shellVariable, FilePath hostDirectory,
        IReadOnlyList<string>? forwardOptions = null, IReadOnlyList<string>? publishOptions = null, IReadOnlyList<string>? allowOptions = null)
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
                case "launcher":
                    var choice = LauncherLocator.Choose(setting, hostDirectory);
                    shown.Add(new("launcher", choice.Path?.Shown ?? "", choice.Source, choice.Path is null ? choice.Problem ?? "none found" : choice.Problem));
                    break;
                case "forward" or "publish" or "allow":
                    shown.Add(List(definition.Key, setting, (definition.Key switch { "forward" => forwardOptions, "publish" => publishOptions, _ => allowOptions }) ?? []));
                    break;
                case "hint":
                    shown.Add(Switch(setting, "auto", "default (on when stderr is a terminal)", auto: true));
                    break;
                case "report":
                    shown.Add(Switch(setting, "off", "default", auto: false));
                    break;
                default:
                    shown.Add(new(definition.Key, setting.Value is null ? "" : UserText.Show(setting.Value), setting.Value is null ? "default (none)" : setting.Source));
                    break;
            }
        }
        return shown;
    }

    /// <summary>A list setting with the specs the options add to it.</summary>
    private static ShownSetting List(string key, EffectiveSetting setting, IReadOnlyList<string> options)
    {
        var specs = ForwardingPlan.SplitList(setting.Value).Concat(options).Select(UserText.Show);
        string option = "option --" + key;
        string source = options.Count == 0 ? (setting.Value is null ? "default (none)" : setting.Source)
            : setting.Value is null ? option
            : $"{setting.Source}, then {option}";
        return new(key, string.Join(", ", specs), source, IsList: true);
    }

    /// <summary>An on/off setting (or auto, for 'hint'), in the words nonet
    /// reads as the same: "yes", "true" and "1" show as on.</summary>
    private static ShownSetting Switch(EffectiveSetting setting, string byDefault, string defaultSource, bool auto)
    {
        if (setting.Value is null)
            return new(setting.Key, byDefault, defaultSource);
        string? canonical = setting.Value.Trim().ToLowerInvariant() switch
        {
            "on" or "yes" or "true" or "1" => "on",
            "off" or "no" or "false" or "0" => "off",
            "auto" when auto => "auto",
            _ => null,
        };
        return canonical is null
            ? new(setting.Key, UserText.Show(setting.Value), setting.Source, $"{setting.Key} must be {(auto ? "auto, on or off" : "on or off")}")
            : new(setting.Key, canonical, setting.Source);
    }

    /// <summary>A configuration file: comments on lines of their own, one
    /// 'key = value' line per setting, "key =" for none.</summary>
    public static string RenderText(IReadOnlyList<ConfigFileState> files, IReadOnlyList<ShownSetting> settings, ForwardingPlan plan, Allow.AllowList? allow = null)
    {
        var text = new StringBuilder();
        text.Append("# nonet's settings in effect; as a configuration file, this reads back\n");
        text.Append("# to the same settings.  Read, lowest precedence first:\n");
        foreach (var file in files)
            text.Append($"#   {file.Path.Shown}{(file.Skipped is { } why ? $" (skipped: {why})" : file.Exists ? "" : " (not present)")}\n");
        text.Append($"#   then {NonetConfiguration.EnvironmentPrefix}* environment variables, then options\n");
        foreach (var s in settings)
        {
            text.Append($"\n# from {s.Source}{(s.Problem is null ? "" : $": {s.Problem}")}\n");
            text.Append(s.Value.Length == 0 ? $"{s.Key} =\n" : $"{s.Key} = {IniFile.Quote(s.Value)}\n");
        }
        if (!plan.IsEmpty)
        {
            text.Append("\n# port forwarding in effect (settings, then --forward/--publish options)\n");
            foreach (var f in plan.Forwards)
                text.Append($"#   forward {f}: {f.Describe()}\n");
            foreach (var p in plan.Publishes)
                text.Append($"#   publish {p}: {p.Describe()}\n");
        }
        if (allow is { IsEmpty: false })
        {
            text.Append("\n# --allow rules in effect (the setting, then --allow options)\n");
            foreach (var rule in allow.Rules)
                text.Append($"#   allow {rule}\n");
        }
        return text.ToString();
    }

    /// <summary>A JSON key for a setting: snake_case (report_file).</summary>
    public static string JsonKey(string key) => key.Replace('-', '_');

    public static string RenderJson(IReadOnlyList<ConfigFileState> files, IReadOnlyList<ShownSetting> settings, ForwardingPlan plan, Allow.AllowList? allow = null)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("files");
            foreach (var file in files)
                WriteFile(writer, file);
            writer.WriteEndArray();
            writer.WriteStartObject("settings");
            foreach (var s in settings)
            {
                writer.WriteStartObject(JsonKey(s.Key));
                if (s.IsList)
                {
                    // A list is a list: the specs as written, [] for none.
                    writer.WriteStartArray("value");
                    foreach (var spec in ForwardingPlan.SplitList(s.Value))
                        writer.WriteStringValue(spec);
                    writer.WriteEndArray();
                }
                else if (s.Key == "report" && s.Problem is null)
                {
                    writer.WriteBoolean("value", s.Value == "on");
                }
                else if (s.Value.Length == 0)
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
                writer.WriteString("host_address", f.HostAddress.ToString());
                writer.WriteNumber("host_port", f.HostPort);
                writer.WriteNumber("inner_port", f.InnerPort);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteStartArray("publishes");
            foreach (var p in plan.Publishes)
            {
                writer.WriteStartObject();
                writer.WriteString("spec", p.ToString());
                writer.WriteNumber("inner_port", p.InnerPort);
                writer.WriteNumber("host_port", p.HostPort);
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

    /// <summary>A configuration file as JSON (--print-config and
    /// --self-test): its path, whether it was read, and why it was
    /// skipped, when it was.</summary>
    public static void WriteFile(Utf8JsonWriter writer, ConfigFileState file)
    {
        writer.WriteStartObject();
        writer.WriteString("path", file.Path.Shown);
        writer.WriteBoolean("exists", file.Exists);
        writer.WriteBoolean("skipped", file.Skipped is not null);
        if (file.Skipped is not null)
            writer.WriteString("skipped_because", file.Skipped);
        writer.WriteEndObject();
    }
}
