using System;
using System.Linq;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.Interop;

/// <summary>A file's path as the kernel takes it: bytes, which need not be
/// UTF-8 (a HOME or an install directory may hold any byte but NUL).
/// Messages print it with <see cref="UserText.Show(ReadOnlySpan{byte})"/>.</summary>
internal sealed class FilePath(byte[] bytes) : IEquatable<FilePath>
{
    public byte[] Bytes { get; } = bytes;

    public static FilePath Of(string path) => new(System.Text.Encoding.UTF8.GetBytes(path));

    /// <summary>DIRECTORY/NAME, with one '/' between them.</summary>
    public static FilePath Combine(ReadOnlySpan<byte> directory, string name)
    {
        var tail = System.Text.Encoding.UTF8.GetBytes(name);
        bool slash = directory.Length > 0 && directory[^1] == (byte)'/';
        var bytes = new byte[directory.Length + (slash ? 0 : 1) + tail.Length];
        directory.CopyTo(bytes);
        if (!slash)
            bytes[directory.Length] = (byte)'/';
        tail.CopyTo(bytes.AsSpan(bytes.Length - tail.Length));
        return new FilePath(bytes);
    }

    /// <summary>The directory part of an absolute path without "." or ".."
    /// (as readlink of /proc/self/exe gives): everything before the last '/'.</summary>
    public FilePath Parent()
    {
        int slash = Array.LastIndexOf(Bytes, (byte)'/');
        return slash <= 0 ? new FilePath("/"u8.ToArray()) : new FilePath(Bytes[..slash]);
    }

    public string Shown => UserText.Show(Bytes);

    public override string ToString() => Shown;

    public bool Equals(FilePath? other) => other is not null && Bytes.AsSpan().SequenceEqual(other.Bytes);

    public override bool Equals(object? obj) => Equals(obj as FilePath);

    public override int GetHashCode() => Bytes.Aggregate(17, (h, b) => h * 31 + b);
}

/// <summary>stat(2) and friends on raw paths.</summary>
internal static unsafe class RawFile
{
    /// <summary>0 and the mode and size, or stat's errno.</summary>
    public static int Stat(FilePath path, out uint mode, out long size)
    {
        byte[] z = new byte[path.Bytes.Length + 1];
        path.Bytes.CopyTo(z, 0);
        fixed (byte* p = z)
        {
            stat st;
            mode = 0;
            size = 0;
            if (stat(p, &st) != 0)
                return errno;
            mode = (uint)st.st_mode;
            size = (long)st.st_size;
            return 0;
        }
    }

    // The file type bits of st_mode (see inode(7)).
    private const uint TypeMask = 0xf000, Fifo = 0x1000, CharDevice = 0x2000, Directory = 0x4000,
        BlockDevice = 0x6000, Regular = 0x8000, Socket = 0xc000;

    public static bool IsDirectory(uint mode) => (mode & TypeMask) == Directory;

    public static bool IsRegular(uint mode) => (mode & TypeMask) == Regular;

    public static bool IsFifo(uint mode) => (mode & TypeMask) == Fifo;

    /// <summary>What a file that is not a regular one is, in words.</summary>
    public static string Kind(uint mode) => (mode & TypeMask) switch
    {
        Directory => "a directory",
        Fifo => "a FIFO",
        CharDevice => "a character device",
        BlockDevice => "a block device",
        Socket => "a socket",
        _ => "not a regular file",
    };

    /// <summary>
    /// Reads a whole regular file of at most <paramref name="maxBytes"/>.  It
    /// is opened without blocking (a FIFO or a device must not hang nonet),
    /// then checked: only a regular file of a sane size is read.  Returns
    /// null when the file does not exist (ENOENT, ENOTDIR); any other
    /// problem is a <see cref="FileProblem"/>.
    /// </summary>
    public static byte[]? ReadSmallFile(FilePath path, int maxBytes)
    {
        byte[] z = new byte[path.Bytes.Length + 1];
        path.Bytes.CopyTo(z, 0);
        int fd;
        fixed (byte* p = z)
            fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0);
        if (fd < 0)
        {
            int e = errno;
            return e is Errno.ENOENT or Errno.ENOTDIR ? null : throw new FileProblem(e, "cannot read: " + Libc.Describe(e));
        }
        try
        {
            stat st;
            if (fstat(fd, &st) != 0)
                throw new FileProblem(errno, "cannot read: " + Libc.Describe(errno));
            uint mode = (uint)st.st_mode;
            if (IsDirectory(mode))
                throw new FileProblem(Errno.EISDIR, "is a directory, not a configuration file");
            if (!IsRegular(mode))
                throw new FileProblem(Errno.EINVAL, $"is {Kind(mode)}, not a regular file");
            if ((long)st.st_size > maxBytes)
                throw new FileProblem(Errno.EFBIG, $"is too large ({(long)st.st_size} bytes; at most {maxBytes})");
            var data = new byte[Math.Min((long)st.st_size, maxBytes) + 1];
            int total = 0;
            while (true)
            {
                if (total == data.Length)
                {
                    if (data.Length > maxBytes)
                        throw new FileProblem(Errno.EFBIG, $"is too large (more than {maxBytes} bytes)");
                    Array.Resize(ref data, Math.Min(data.Length * 2, maxBytes + 1));
                }
                nint n;
                fixed (byte* d = data)
                    n = (nint)read(fd, d + total, (size_t)(data.Length - total));
                if (n < 0 && errno == EINTR)
                    continue;
                if (n < 0)
                    throw new FileProblem(errno, "cannot read: " + Libc.Describe(errno));
                if (n == 0)
                    return data[..total];
                total += (int)n;
            }
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>The first bytes of a file (up to <paramref name="count"/>), or
    /// none if it cannot be read.</summary>
    public static byte[] ReadHead(FilePath path, int count) => TryReadHead(path, count) ?? [];

    /// <summary>A small file's text (UTF-8), at most <paramref name="count"/>
    /// bytes of it, whatever kind of file it is (resolv.conf, /proc); null if
    /// it cannot be opened.  No exceptions: for the path before the command
    /// starts and for the event loop.</summary>
    public static string? ReadText(string path, int count = 64 * 1024) =>
        TryReadHead(FilePath.Of(path), count) is { } bytes ? System.Text.Encoding.UTF8.GetString(bytes) : null;

    private static byte[]? TryReadHead(FilePath path, int count)
    {
        byte[] z = new byte[path.Bytes.Length + 1];
        path.Bytes.CopyTo(z, 0);
        int fd;
        fixed (byte* p = z)
            fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0);
        if (fd < 0)
            return null;
        var buffer = new byte[Math.Min(count, 4096)];
        int total = 0;
        try
        {
            while (true)
            {
                if (total == buffer.Length)
                {
                    if (buffer.Length >= count)
                        break;
                    Array.Resize(ref buffer, Math.Min(count, buffer.Length * 4));
                }
                nint n;
                fixed (byte* b = buffer)
                    n = (nint)read(fd, b + total, (size_t)(buffer.Length - total));
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0)
                    break;
                total += (int)n;
            }
        }
        finally
        {
            close(fd);
        }
        return buffer[..total];
    }

    /// <summary>Whether anything (a socket, say) is at <paramref name="path"/>,
    /// following symbolic links.</summary>
    public static bool Exists(string path) => Stat(FilePath.Of(path), out _, out _) == 0;

    /// <summary>The target of a symbolic link, as bytes, or null.</summary>
    public static byte[]? ReadLink(string path)
    {
        byte[] z = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        var buffer = new byte[4096];
        fixed (byte* p = z)
        fixed (byte* b = buffer)
        {
            nint n = (nint)readlink(p, b, (size_t)buffer.Length);
            return n <= 0 || n >= buffer.Length ? null : buffer[..(int)n];
        }
    }
}

/// <summary>A file that is there but cannot be used; the message says why.</summary>
internal sealed class FileProblem(int errno, string problem) : Exception(problem)
{
    public int Errno { get; } = errno;
}
