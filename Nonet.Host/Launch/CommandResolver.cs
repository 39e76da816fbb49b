using System;
using System.Collections.Generic;
using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

using Nonet.Interop;

namespace Nonet.Launch;

/// <summary>The executable nonet will run, as raw bytes.</summary>
internal sealed record ResolvedCommand(byte[] Path);

/// <summary>
/// Finds a command the way execvp(3) does, before anything is started: a
/// name with a '/' is used as it is; otherwise each PATH entry is tried in
/// order (an empty entry means the current directory).  Works on bytes, so a
/// name or PATH that is not UTF-8 survives.
/// </summary>
internal static unsafe class CommandResolver
{
    /// <summary>glibc's execvp default when PATH is unset.</summary>
    public static readonly byte[] DefaultPath = "/bin:/usr/bin"u8.ToArray();

    public static ResolvedCommand Resolve(byte[] name, byte[]? pathVariable)
    {
        // A path may be long, but a name of megabytes makes no line.
        string shown = UserText.Quote(name, 8 * UserText.MaxShown);
        if (name.Length == 0)
            throw new NonetException(ExitCodes.NotFound, "'': command not found");
        if (Array.IndexOf(name, (byte)'/') >= 0)
        {
            int problem = Check(name);
            return problem == 0
                ? new ResolvedCommand(name)
                : throw Failure(shown, problem == NotExecutable ? Errno.EACCES : problem);
        }

        bool sawDenied = false;
        foreach (var dir in SplitPath(pathVariable ?? DefaultPath))
        {
            var candidate = new List<byte>(dir.Length + 1 + name.Length);
            candidate.AddRange(dir.Length == 0 ? "."u8.ToArray() : dir);
            candidate.Add((byte)'/');
            candidate.AddRange(name);
            byte[] path = candidate.ToArray();
            int problem = Check(path);
            if (problem == 0)
                return new ResolvedCommand(path);
            // Like a shell, skip directories that cannot be searched; only a
            // file that exists but cannot be run makes the result 126.
            if (problem is NotExecutable or Errno.EISDIR)
                sawDenied = true;
            // execvp(3) stops at a symbolic-link loop, and the shell says 126.
            if (problem == Errno.ELOOP)
                throw Failure(shown, Errno.ELOOP);
        }
        throw sawDenied
            ? Failure(shown, Errno.EACCES)
            : new NonetException(ExitCodes.NotFound, $"{shown}: command not found");
    }

    private static NonetException Failure(string shown, int errno) => new(
        errno is Errno.ENOENT or Errno.ENOTDIR or Errno.ENAMETOOLONG ? ExitCodes.NotFound : ExitCodes.CannotExecute,
        $"{shown}: {Interop.Libc.Describe(errno)}");

    /// <summary>Check's answer for a file that exists but is not executable.</summary>
    private const int NotExecutable = -1;

    /// <summary>0 when path is an executable regular file, <see cref="NotExecutable"/>
    /// when it exists but cannot be run, else stat's errno.</summary>
    private static int Check(byte[] path)
    {
        byte[] z = new byte[path.Length + 1];
        path.CopyTo(z, 0);
        fixed (byte* p = z)
        {
            stat st;
            if (stat(p, &st) != 0)
                return errno;
            if ((st.st_mode & S_IFMT) == S_IFDIR)
                return Errno.EISDIR;
            if ((st.st_mode & S_IFMT) != S_IFREG || access(p, X_OK) != 0)
                return NotExecutable;
            return 0;
        }
    }

    private static IEnumerable<byte[]> SplitPath(byte[] path)
    {
        int start = 0;
        for (int i = 0; i <= path.Length; i++)
        {
            if (i == path.Length || path[i] == (byte)':')
            {
                yield return path[start..i];
                start = i + 1;
            }
        }
    }

    /// <summary>How a byte string appears in a message: see <see cref="UserText.Show(ReadOnlySpan{byte})"/>.</summary>
    public static string Show(ReadOnlySpan<byte> bytes) => UserText.Show(bytes);
}
