using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.EnvironmentVariables;
using Microsoft.Extensions.Configuration.Memory;
using Nonet.Interop;

namespace Nonet.Config;

/// <summary>A setting nonet knows, with the option that overrides it.
/// A list setting's empty value means "none", overriding lower layers; any
/// other setting's empty value leaves the key to lower layers.</summary>
internal sealed record SettingDefinition(string Key, string Description, string? Option, bool IsList = false);

/// <summary>A setting's effective value and the layer it came from.</summary>
internal sealed record EffectiveSetting(string Key, string? Value, string Source);

/// <summary>Where the two configuration files are, as raw bytes: HOME and
/// XDG_CONFIG_HOME need not be UTF-8.</summary>
internal sealed record ConfigPaths(FilePath System, FilePath? User)
{
    public const string SystemDefault = "/etc/nonet/config";

    /// <summary>XDG base directory rules: $XDG_CONFIG_HOME if set and absolute,
    /// else ~/.config.</summary>
    public static ConfigPaths FromEnvironment(Func<string, byte[]?> getenv)
    {
        byte[]? xdg = getenv("XDG_CONFIG_HOME");
        byte[]? home = getenv("HOME");
        FilePath? dir = xdg is [(byte)'/', ..] ? new FilePath(xdg)
            : home is { Length: > 0 } ? FilePath.Combine(home, ".config")
            : null;
        return new ConfigPaths(FilePath.Of(SystemDefault), dir is null ? null : FilePath.Combine(dir.Bytes, "nonet/config"));
    }
}

/// <summary>A configuration file and whether it was there.</summary>
internal sealed record ConfigFileState(FilePath Path, bool Exists);

/// <summary>
/// nonet's settings, layered lowest to highest: /etc/nonet/config, the user's
/// file, NONET_* environment variables, command-line options.
/// </summary>
internal sealed class NonetConfiguration
{
    public const string EnvironmentPrefix = "NONET_";

    public static readonly IReadOnlyList<SettingDefinition> Known =
    [
        new("shell", "shell to run when no command is given and $SHELL is unset or empty", null),
        new("launcher", "path of nonet-launcher (default: beside nonet, then ../libexec/nonet/)", "--launcher"),
        new("forward", "ports to forward, as for --forward, separated by spaces or commas (options add to these)", "--forward", IsList: true),
        new("publish", "ports to publish, as for --publish, separated by spaces or commas (options add to these)", "--publish", IsList: true),
        new("hint", "after a failing command, say that nonet answered its name lookups: auto (when stderr is a terminal), on or off", "--hint/--no-hint"),
        new("report", "when the command ends, list on stderr every attempt it made to reach outside: on or off (default off)", "--report"),
        new("report-file", "write each attempt to reach outside to this file as it happens, one JSON object per line", "--report-file"),
        new("allow", "hosts, domains (*.NAME), addresses or networks the command may reach, as for --allow, separated by spaces or commas (options add to these)", "--allow", IsList: true),
    ];

    private readonly IConfigurationRoot root;

    public ConfigPaths Paths { get; }

    /// <summary>The configuration files, lowest precedence first.</summary>
    public IReadOnlyList<ConfigFileState> Files =>
        root.Providers.OfType<IniFileConfigurationProvider>().Select(p => new ConfigFileState(p.Path, p.Exists)).ToList();

    private NonetConfiguration(IConfigurationRoot root, ConfigPaths paths)
    {
        this.root = root;
        Paths = paths;
    }

    /// <param name="overrides">Settings given as options (key to value).</param>
    /// <param name="warn">Receives one line per unknown setting.</param>
    public static NonetConfiguration Load(ConfigPaths paths, IReadOnlyDictionary<string, string> overrides, Action<string> warn)
    {
        var builder = new ConfigurationBuilder();
        builder.Add(new IniFileConfigurationSource(paths.System));
        if (paths.User is not null)
            builder.Add(new IniFileConfigurationSource(paths.User));
        // Each layer only when it has something to say: the environment
        // provider copies and decodes every variable, and most runs have no
        // NONET_ variable and no option (BENCHMARKS.md, issue 15).
        if (HasEnvironmentSettings())
            builder.Add(new EnvironmentVariablesConfigurationSource { Prefix = EnvironmentPrefix });
        if (overrides.Count > 0)
            builder.Add(new MemoryConfigurationSource { InitialData = overrides.Select(o => new KeyValuePair<string, string?>(o.Key, o.Value)) });
        var configuration = new NonetConfiguration(builder.Build(), paths);
        configuration.WarnAboutUnknownKeys(warn);
        return configuration;
    }

    /// <summary>Whether any NONET_ variable is set, read from the raw
    /// environment without decoding it.</summary>
    private static unsafe bool HasEnvironmentSettings()
    {
        ReadOnlySpan<byte> prefix = "NONET_"u8;
        for (byte** env = Interop.Libc.Environ; env != null && *env != null; env++)
        {
            if (StartsWith(*env, prefix))
                return true;
        }
        return false;
    }

    /// <summary>Stops at the first byte that differs, so never reads past
    /// the entry's NUL.</summary>
    private static unsafe bool StartsWith(byte* entry, ReadOnlySpan<byte> prefix)
    {
        for (int i = 0; i < prefix.Length; i++)
        {
            if (entry[i] != prefix[i])
                return false;
        }
        return true;
    }

    /// <summary>The effective value; an empty value leaves the key to lower layers.</summary>
    public string? Get(string key) => Describe(key).Value;

    public IReadOnlyList<EffectiveSetting> Describe() =>
        Known.Select(k => Describe(k.Key)).ToList();

    public EffectiveSetting Describe(string key)
    {
        bool list = Known.Any(k => k.Key == key && k.IsList);
        foreach (var provider in root.Providers.Reverse())
        {
            // An environment variable cannot have '-' in its name: NONET_REPORT_FILE is report-file.
            string name = provider is EnvironmentVariablesConfigurationProvider ? EnvironmentName(key) : key;
            if (provider.TryGet(name, out var value) && (list ? value is not null : !string.IsNullOrEmpty(value)))
                return new EffectiveSetting(key, value, SourceOf(provider, key));
        }
        return new EffectiveSetting(key, null, "default");
    }

    private static string SourceOf(IConfigurationProvider provider, string key) => provider switch
    {
        IniFileConfigurationProvider file => file.Lines.TryGetValue(key, out int line) ? $"{file.Path.Shown}:{line}" : file.Path.Shown,
        EnvironmentVariablesConfigurationProvider => "environment " + EnvironmentPrefix + EnvironmentName(key).ToUpperInvariant(),
        MemoryConfigurationProvider => "option " + (Known.FirstOrDefault(k => k.Key == key)?.Option ?? key),
        _ => provider.ToString() ?? "unknown",
    };

    private static string EnvironmentName(string key) => key.Replace('-', '_');

    private void WarnAboutUnknownKeys(Action<string> warn)
    {
        var known = Known.Select(k => k.Key).ToHashSet(StringComparer.OrdinalIgnoreCase);
        known.UnionWith(Known.Select(k => EnvironmentName(k.Key)));
        foreach (var provider in root.Providers)
        {
            foreach (string key in AllKeys(provider, null).Distinct(StringComparer.OrdinalIgnoreCase))
            {
                if (known.Contains(key))
                    continue;
                string where = provider switch
                {
                    IniFileConfigurationProvider file => $"{file.Path.Shown}:{file.Lines.GetValueOrDefault(key)}: ",
                    EnvironmentVariablesConfigurationProvider => $"environment variable {UserText.Quote(EnvironmentPrefix + key.Replace(":", "__").ToUpperInvariant())}: ",
                    _ => "",
                };
                warn($"warning: {where}unknown setting '{UserText.Quote(key)}' ignored");
            }
        }
    }

    private static IEnumerable<string> AllKeys(IConfigurationProvider provider, string? parent)
    {
        foreach (string child in provider.GetChildKeys([], parent).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            string path = parent is null ? child : ConfigurationPath.Combine(parent, child);
            bool hasChildren = provider.GetChildKeys([], path).Any();
            if (hasChildren)
            {
                foreach (string nested in AllKeys(provider, path))
                    yield return nested;
            }
            else
            {
                yield return path;
            }
        }
    }
}
