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
/// in double quotes.  As in git's config, a "#" or ";" at the start of a value
/// or after whitespace begins a comment ("forward = 5432   # my db"); inside
/// double quotes it is a character, and there \" is a quote and \\ a
/// backslash.  Unlike the Ini provider of Microsoft.Extensions, errors name
/// the line, and the line of every key is kept for warnings.
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
                line = WithoutComment(line).TrimEnd();
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
            var (value, problem) = Value(line[(equals + 1)..].Trim());
            if (problem is not null)
                throw new ConfigFileException(path, n, $"{problem} in value of '{key}'");
            entries[section + key] = (value!, n);
        }
        return entries;
    }

    /// <summary>The value after '=' (trimmed), without its comment and
    /// quotes, or what is wrong with it.</summary>
    private static (string? Value, string? Problem) Value(string raw)
    {
        if (raw.Length == 0 || raw[0] != '"')
        {
            string value = WithoutComment(raw).TrimEnd();
            return value.Contains('"') ? (null, "unbalanced quote") : (value, null);
        }
        var text = new StringBuilder();
        for (int i = 1; i < raw.Length; i++)
        {
            char c = raw[i];
            if (c == '\\' && i + 1 < raw.Length && raw[i + 1] is '"' or '\\')
            {
                text.Append(raw[++i]);
                continue;
            }
            if (c != '"')
            {
                text.Append(c);
                continue;
            }
            string rest = raw[(i + 1)..];
            return rest.Length == 0 || (char.IsWhiteSpace(rest[0]) && WithoutComment(rest).Trim().Length == 0)
                ? (text.ToString(), null)
                : (null, "text after the closing quote");
        }
        return (null, "unbalanced quote");
    }

    /// <summary>The text before a "#" or ";" that starts it or follows
    /// whitespace.</summary>
    private static string WithoutComment(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] is '#' or ';' && (i == 0 || char.IsWhiteSpace(text[i - 1])))
                return text[..i];
        }
        return text;
    }

    /// <summary>A value as a line of an INI file reads it back: as it is,
    /// or in double quotes when a comment character, a quote or outer
    /// whitespace would change it.</summary>
    public static string Quote(string value)
    {
        bool plain = value.Trim().Length == value.Length
            && !value.Contains('"')
            && WithoutComment(value).Length == value.Length;
        if (plain)
            return value;
        return "\"" + value.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
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

/// <param name="perUser">The caller's own file, under HOME or
/// XDG_CONFIG_HOME: one that another user's directory or file keeps out of
/// reach is skipped (see <see cref="OtherUsersPath"/>).</param>
internal sealed class IniFileConfigurationSource(FilePath path, bool perUser = false) : IConfigurationSource
{
    public FilePath Path { get; } = path;

    public IConfigurationProvider Build(IConfigurationBuilder builder) => new IniFileConfigurationProvider(Path, perUser);
}

/// <summary>Loads one nonet INI file.  Only a file that does not exist is
/// skipped, and a per-user file that another user's directory or file keeps
/// out of reach: one that cannot be read, or is no regular file of a sane
/// size (a FIFO would block, /dev/zero never ends), stops nonet naming it.</summary>
internal sealed class IniFileConfigurationProvider(FilePath path, bool perUser = false) : ConfigurationProvider
{
    /// <summary>nonet's own files hold a few lines; this is far more.</summary>
    public const int MaxBytes = 1 << 20;

    public FilePath Path { get; } = path;
    public Dictionary<string, int> Lines { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Whether the file was there (and read).</summary>
    public bool Exists { get; private set; }

    /// <summary>Why the file was skipped as another user's, or null.</summary>
    public string? Skipped { get; private set; }

    public override void Load()
    {
        byte[]? bytes;
        try
        {
            bytes = RawFile.ReadSmallFile(Path, MaxBytes);
        }
        catch (FileProblem e) when (perUser && e.Errno == Errno.EACCES && OtherUsersPath.Explain(Path) is { } why)
        {
            Skipped = why;
            return;
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
