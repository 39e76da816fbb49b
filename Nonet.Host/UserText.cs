using System;
using System.Buffers;
using System.Text;

namespace Nonet;

/// <summary>
/// How user input appears in nonet's messages: UTF-8 as it is, control
/// characters and invalid bytes as \xNN (so that a config key or an
/// environment variable cannot drive the terminal), and a value longer than
/// a line shortened, with its length.
/// </summary>
internal static class UserText
{
    /// <summary>Quoted values longer than this many characters are cut.</summary>
    public const int MaxShown = 80;

    public static string Show(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder();
        while (!bytes.IsEmpty)
        {
            var status = Rune.DecodeFromUtf8(bytes, out var rune, out int used);
            if (status == OperationStatus.Done && rune.Value >= 0x20 && rune.Value != 0x7f && !(rune.Value is >= 0x80 and < 0xa0))
            {
                text.Append(rune.ToString());
            }
            else
            {
                for (int i = 0; i < (status == OperationStatus.Done ? used : 1); i++)
                    text.Append($"\\x{bytes[i]:x2}");
                used = status == OperationStatus.Done ? used : 1;
            }
            bytes = bytes[used..];
        }
        return text.ToString();
    }

    public static string Show(string text) => Show(Encoding.UTF8.GetBytes(text));

    /// <summary>Bytes that another program wrote (a process name, a socket
    /// path) as a string that keeps them: UTF-8 as it is, control
    /// characters included (for <see cref="Show(string)"/> or a JSON writer
    /// to escape), each byte that is not UTF-8 as the text \xNN.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder(bytes.Length);
        while (!bytes.IsEmpty)
        {
            var status = Rune.DecodeFromUtf8(bytes, out var rune, out int used);
            if (status == OperationStatus.Done)
            {
                text.Append(rune.ToString());
            }
            else
            {
                text.Append($"\\x{bytes[0]:x2}");
                used = 1;
            }
            bytes = bytes[used..];
        }
        return text.ToString();
    }

    /// <summary>Whether the locale's character set is UTF-8 (the first of
    /// LC_ALL, LC_CTYPE and LANG that is set, as setlocale(3) reads them):
    /// only then does nonet print characters beyond ASCII of its own.</summary>
    public static bool LocaleIsUtf8(Func<string, string?> environment)
    {
        foreach (var name in new[] { "LC_ALL", "LC_CTYPE", "LANG" })
        {
            if (environment(name) is { Length: > 0 } value)
            {
                int dot = value.IndexOf('.');
                if (dot < 0)
                    return false;
                string charset = value[(dot + 1)..].Split('@')[0];
                return charset.Equals("UTF-8", StringComparison.OrdinalIgnoreCase) || charset.Equals("utf8", StringComparison.OrdinalIgnoreCase);
            }
        }
        return false;
    }

    /// <summary><see cref="Show(ReadOnlySpan{byte})"/>, cut to
    /// <see cref="MaxShown"/> characters.</summary>
    public static string Quote(ReadOnlySpan<byte> bytes, int max = MaxShown) => Shorten(Show(bytes), bytes.Length, max);

    public static string Quote(string text, int max = MaxShown) => Quote(Encoding.UTF8.GetBytes(text), max);

    private static string Shorten(string shown, int byteCount, int max)
    {
        if (shown.Length <= max)
            return shown;
        int cut = max - 3;
        if (char.IsHighSurrogate(shown[cut - 1]))
            cut--;
        int escape = shown.LastIndexOf('\\', cut - 1, Math.Min(cut, 3));
        if (escape >= 0)
            cut = escape;
        return $"{shown[..cut]}... ({byteCount} bytes)";
    }
}
