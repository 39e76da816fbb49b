using System;
using System.Collections.Generic;
using System.Net;

namespace Nonet.Dns;

/// <summary>
/// The host's /etc/hosts(5), which the command reads too: an allowed name
/// listed there resolves without DNS, so its address must be allowed as
/// well.  Pure: the text in, each (address, name) out.
/// </summary>
internal static class HostsFile
{
    public const string DefaultPath = "/etc/hosts";

    /// <summary>Every name and alias of every line with a valid address,
    /// in lower case, without a final dot.</summary>
    public static IEnumerable<(IPAddress Address, string Name)> Entries(string? text)
    {
        foreach (var rawLine in (text ?? "").Split('\n'))
        {
            string line = rawLine;
            int comment = line.IndexOf('#');
            if (comment >= 0)
                line = line[..comment];
            var fields = line.Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2 || fields[0].Contains('%') || !IPAddress.TryParse(fields[0], out var address))
                continue;
            for (int i = 1; i < fields.Length; i++)
                yield return (address, fields[i].TrimEnd('.').ToLowerInvariant());
        }
    }
}
