using System;
using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.Interop;

/// <summary>Small reads of the host's files on the path before the command
/// starts, with plain system calls: no FileStream, no exceptions.</summary>
internal static unsafe class HostFiles
{
    /// <summary>The file's text (UTF-8), at most <paramref name="limit"/>
    /// bytes of it; null if it cannot be read.</summary>
    public static string? ReadSmall(string path, int limit = 64 * 1024)
    {
        byte[] name = Encoding.UTF8.GetBytes(path + "\0");
        int fd;
        fixed (byte* n = name)
            fd = open(n, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
        if (fd < 0)
            return null;
        try
        {
            var buffer = new byte[Math.Min(limit, 4096)];
            int filled = 0;
            while (true)
            {
                if (filled == buffer.Length)
                {
                    if (buffer.Length >= limit)
                        break;
                    Array.Resize(ref buffer, Math.Min(limit, buffer.Length * 4));
                }
                nint got;
                fixed (byte* b = buffer)
                    got = (nint)read(fd, b + filled, (size_t)(buffer.Length - filled));
                if (got < 0 && errno == EINTR)
                    continue;
                if (got <= 0)
                    break;
                filled += (int)got;
            }
            return Encoding.UTF8.GetString(buffer, 0, filled);
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>Whether something (a socket, say) is at <paramref name="path"/>,
    /// following symbolic links.</summary>
    public static bool Exists(string path)
    {
        byte[] name = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* n = name)
            return access(n, F_OK) == 0;
    }
}
