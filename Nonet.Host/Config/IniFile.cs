using System;
using System.Collections.Generic;
using System.Text;
using Microsoft.Extensions.Configuration;
using Nonet.Interop;

namespace Nonet.Config;

/// <summary>A configuration file that is there but cannot be used: nonet
/// names the file (and the line) and stops with 125.</summary>
internal sealed class ConfigFileException(string path, int line, string problem)
    : NonetException(ExitCodes.NonetFailed, line > 0 ? $"{path}:{line}: {problem}" : $"{path}: {problem}");

/// <summary>
/// nonet's INI dialect: "key = value" lines, "#" or ";" comments, blank lines,
/// optional "[section]" headers (keys become "section:key"), values optionally
/// in double quotes.  Unlike the Ini provider of Microsoft.Extensions, errors
/// name the line, and the line of every key is kept for warnings.
/// </summary>
internal static class IniFile
{
    public static Dictionary<string, (string Value, int Line)> Parse(string path, string text)
    {
        var entries = new Dictionary<string, (string, int)>(StringComparer.OrdinalIgnoreCase);
        string section = "";
        var lines = text.Split('\n');
        for (int n = 1; n <= lines.Length; n++)
        {
            string line = lines[n - 1].Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
                continue;
            if (line[0] == '[')
            {
                if (line[^1] != ']' || line.Length < 3 || !IsKey(line[1..^1].Trim()))
                    throw new ConfigFileException(path, n, $"malformed section header '{UserText.Quote(line)}'");
                section = line[1..^1].Trim() + ConfigurationPath.KeyDelimiter;
                continue;
            }
            int equals = line.IndexOf('=');
            if (equals < 0)
                throw new ConfigFileException(path, n, $"expected 'key = value', found '{UserText.Quote(line)}'");
            string key = line[..equals].Trim();
            if (!IsKey(key))
                throw new ConfigFileException(path, n, $"malformed key '{UserText.Quote(key)}' (letters, digits, '-', '_' and '.' only)");
            string value = line[(equals + 1)..].Trim();
            if (value.Length >= 2 && value[0] == '"' && value[^1] == '"')
                value = value[1..^1];
            else if (value.Contains('"'))
                throw new ConfigFileException(path, n, $"unbalanced quote in value of '{key}'");
            entries[section + key] = (value, n);
        }
        return entries;
    }

    private static bool IsKey(string key)
    {
        if (key.Length == 0)
            return false;
        foreach (char c in key)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                return false;
        }
        return true;
    }
}

internal sealed class IniFileConfigurationSource(FilePath path) : IConfigurationSource
{
    public FilePath Path { get; } = path;

    public IConfigurationProvider Build(IConfigurationBuilder builder) => new IniFileConfigurationProvider(Path);
}

/// <summary>Loads one nonet INI file.  Only a file that does not exist is
/// skipped: one that cannot be read, or is no regular file of a sane size
/// (a FIFO would block, /dev/zero never ends), stops nonet naming it.</summary>
internal sealed class IniFileConfigurationProvider(FilePath path) : ConfigurationProvider
{
    /// <summary>nonet's own files hold a few lines; this is far more.</summary>
    public const int MaxBytes = 1 << 20;

    public FilePath Path { get; } = path;
    public Dictionary<string, int> Lines { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Whether the file was there (and read).</summary>
    public bool Exists { get; private set; }

    public override void Load()
    {
        byte[]? bytes;
        try
        {
            bytes = RawFile.ReadSmallFile(Path, MaxBytes);
        }
        catch (FileProblem e)
        {
            throw new ConfigFileException(Path.Shown, 0, Launch.FailureExplainer.ResourceLimit(e.Errno, Launch.HostFacts.Read()) is { } limit
                ? $"{e.Message}; {limit.Fix}"
                : e.Message);
        }
        if (bytes is null)
            return;
        Exists = true;
        string text = Encoding.UTF8.GetString(bytes);
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, (value, line)) in IniFile.Parse(Path.Shown, text))
        {
            data[key] = value;
            Lines[key] = line;
        }
        Data = data;
    }

    public override string ToString() => Path.Shown;
}
