using System.Collections.Generic;
using System.Linq;
using Nonet.Config;
using Nonet.Interop;

namespace Nonet.Launch;

/// <summary>The launcher nonet would use, and how it was chosen: the
/// setting's source, or which default; or what is wrong with it.</summary>
internal sealed record LauncherChoice(FilePath? Path, string Source, string? Problem)
{
    /// <summary>The one line nonet stops with when there is a problem.</summary>
    public string Message => Path is null
        ? $"cannot find {LauncherLocator.FileName} ({Problem}); reinstall nonet or set 'launcher' in its configuration"
        : $"launcher {UserText.Quote(Path.Bytes)} (from {Source}) {Problem}";
}

/// <summary>
/// Where nonet-launcher is: the 'launcher' setting when there is one (an
/// override, so a wrong one is an error, not a fallback); else beside the
/// nonet binary (the build tree, make install with one BINDIR); else the
/// install's ../libexec/nonet/ (packages: /usr/bin and /usr/libexec).
/// Paths are bytes: nonet may be installed under a directory that is not UTF-8.
/// </summary>
internal static class LauncherLocator
{
    public const string FileName = "nonet-launcher";

    public static IReadOnlyList<FilePath> Candidates(FilePath hostDirectory) =>
    [
        FilePath.Combine(hostDirectory.Bytes, FileName),
        FilePath.Combine(hostDirectory.Parent().Bytes, "libexec/nonet/" + FileName),
    ];

    public static FilePath Locate(EffectiveSetting configured, FilePath hostDirectory)
    {
        var choice = Choose(configured, hostDirectory);
        return choice.Path is { } path && choice.Problem is null
            ? path
            : throw new NonetException(ExitCodes.NonetFailed, choice.Message);
    }

    public static LauncherChoice Choose(EffectiveSetting configured, FilePath hostDirectory)
    {
        if (configured.Value is { } value)
        {
            var path = FilePath.Of(value);
            int e = RawFile.Stat(path, out uint mode, out _);
            string? problem = e switch
            {
                0 when RawFile.IsDirectory(mode) => "is a directory",
                0 => null,
                Errno.ENOENT => "does not exist",
                _ => "cannot be used: " + Interop.Libc.Describe(e),
            };
            return new LauncherChoice(path, configured.Source, problem);
        }
        var candidates = Candidates(hostDirectory);
        for (int i = 0; i < candidates.Count; i++)
        {
            if (RawFile.Stat(candidates[i], out uint mode, out _) == 0 && !RawFile.IsDirectory(mode))
                return new LauncherChoice(candidates[i], i == 0 ? "default (beside nonet)" : "default (../libexec/nonet/ from nonet's directory)", null);
        }
        return new LauncherChoice(null, "default", $"looked in {string.Join(" and ", candidates.Select(c => c.Shown))}");
    }
}
