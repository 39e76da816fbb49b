using System.Collections.Generic;
using System.Linq;
using Nonet.Interop;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.Config;

/// <summary>
/// Why a per-user configuration file that open() refused with EACCES is
/// another user's business: the directory on its way that cannot be
/// searched, or the file itself, belongs to someone else.  That happens when
/// root drops to an ordinary account and keeps HOME=/root (setpriv, su
/// without '-', sudo -E, docker run --user, CI runners).  nonet then treats
/// the file as absent, as git does since its commit 4698c8f ("config: allow
/// inaccessible configuration under $HOME").  The caller's own unreadable
/// file or directory stays an error: that one is a mistake to fix.
/// </summary>
internal static unsafe class OtherUsersPath
{
    /// <summary>Symbolic links followed before giving up (the kernel's own
    /// limit is 40).</summary>
    private const int MaxLinks = 40;

    /// <summary>Why <paramref name="file"/> is out of the caller's reach
    /// because of another user's directory or file, or null when the path
    /// that refuses is the caller's own (or cannot be told).</summary>
    public static string? Explain(FilePath file)
    {
        var denied = DeniedBy(file.Bytes, 0);
        if (denied is null)
            return null;
        var (path, isFile) = denied.Value;
        if (Owner(path) is not { } owner)
            return null;
        uint caller = geteuid();
        if (owner == caller)
            return null;
        return $"{UserText.Show(path)} belongs to uid {owner} and {(isFile ? "cannot be read" : "cannot be searched")} by uid {caller}";
    }

    /// <summary>The deepest directory of <paramref name="path"/> that the
    /// caller reaches but cannot search, or the file itself when every
    /// directory can be searched; symbolic links on the way are followed.</summary>
    private static (byte[] Path, bool IsFile)? DeniedBy(byte[] path, int links)
    {
        if (links > MaxLinks || path is not [(byte)'/', ..])
            return null;
        var components = Split(path);
        byte[] reached = "/"u8.ToArray();
        for (int i = 0; i < components.Count; i++)
        {
            byte[] next = Join(reached, components[i]);
            int error = StatError(next, follow: true);
            if (error == 0)
            {
                reached = next;
                continue;
            }
            if (error != EACCES)
                return null;
            int own = StatError(next, follow: false);
            if (own == EACCES)
                return (reached, false); // 'reached' denies the search
            if (own != 0 || ReadLink(next) is not { } target)
                return null;
            // A symbolic link whose target lies beyond a directory that
            // refuses: follow it, then the rest of the path.
            byte[] resolved = target is [(byte)'/', ..] ? target : Join(reached, target);
            foreach (var rest in components.Skip(i + 1))
                resolved = Join(resolved, rest);
            return DeniedBy(resolved, links + 1);
        }
        return (path, true);
    }

    private static List<byte[]> Split(byte[] path)
    {
        var components = new List<byte[]>();
        int start = 0;
        for (int i = 0; i <= path.Length; i++)
        {
            if (i < path.Length && path[i] != (byte)'/')
                continue;
            if (i > start)
                components.Add(path[start..i]);
            start = i + 1;
        }
        return components;
    }

    private static byte[] Join(byte[] directory, byte[] name) =>
        directory is [.., (byte)'/'] ? [.. directory, .. name] : [.. directory, (byte)'/', .. name];

    private static int StatError(byte[] path, bool follow)
    {
        byte[] z = [.. path, 0];
        fixed (byte* p = z)
        {
            stat st;
            return (follow ? stat(p, &st) : lstat(p, &st)) == 0 ? 0 : errno;
        }
    }

    private static byte[]? ReadLink(byte[] path)
    {
        byte[] z = [.. path, 0];
        var buffer = new byte[4096];
        fixed (byte* p = z)
        fixed (byte* b = buffer)
        {
            nint n = (nint)readlink(p, b, (size_t)buffer.Length);
            return n <= 0 || n >= buffer.Length ? null : buffer[..(int)n];
        }
    }

    private static uint? Owner(byte[] path)
    {
        byte[] z = [.. path, 0];
        fixed (byte* p = z)
        {
            stat st;
            return stat(p, &st) == 0 ? (uint)st.st_uid : null;
        }
    }
}
