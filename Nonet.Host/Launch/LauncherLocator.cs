using System.Collections.Generic;
using System.IO;
using Nonet.Config;

namespace Nonet.Launch;

/// <summary>
/// Where nonet-launcher is: the 'launcher' setting when there is one (an
/// override, so a wrong one is an error, not a fallback); else beside the
/// nonet binary (the build tree, make install with one BINDIR); else the
/// install's ../libexec/nonet/ (packages: /usr/bin and /usr/libexec).
/// </summary>
internal static class LauncherLocator
{
    public const string FileName = "nonet-launcher";

    public static IReadOnlyList<string> Candidates(string hostDirectory) =>
    [
        Path.Combine(hostDirectory, FileName),
        Path.GetFullPath(Path.Combine(hostDirectory, "..", "libexec", "nonet", FileName)),
    ];

    public static string Locate(EffectiveSetting configured, string hostDirectory)
    {
        if (configured.Value is { } path)
        {
            if (!File.Exists(path))
                throw new NonetException(ExitCodes.NonetFailed, $"launcher {path} (from {configured.Source}) does not exist");
            return path;
        }
        var candidates = Candidates(hostDirectory);
        foreach (var candidate in candidates)
        {
            if (File.Exists(candidate))
                return candidate;
        }
        throw new NonetException(ExitCodes.NonetFailed,
            $"cannot find {FileName} (looked in {string.Join(" and ", candidates)}); reinstall nonet or set 'launcher' in its configuration");
    }
}
