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
