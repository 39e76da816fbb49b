using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Nonet.Interop;

/// <summary>
/// argv and the environment as the kernel gave them: bytes.  .NET decodes both
/// as UTF-8 and replaces invalid bytes, and nonet must pass them on unchanged.
/// </summary>
internal static unsafe partial class RawProcess
{
    [System.Runtime.InteropServices.LibraryImport(EarlySignals.Library, EntryPoint = "nonet_arguments")]
    private static partial int NativeArguments(byte*** argv);

    /// <summary>argv without argv[0]: from the native start-up code, which
    /// saw it before the runtime started; on the JIT (unit tests), from
    /// /proc/self/cmdline.</summary>
    public static IReadOnlyList<byte[]> Arguments()
    {
        byte** argv = null;
        int argc;
        try
        {
            argc = NativeArguments(&argv);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            argc = 0;
        }
        if (argc > 0)
        {
            var fromStart = new byte[argc - 1][];
            for (int i = 1; i < argc; i++)
                fromStart[i - 1] = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(argv[i]).ToArray();
            return fromStart;
        }
        return FromProcCmdline();
    }

    private static IReadOnlyList<byte[]> FromProcCmdline()
    {
        byte[] cmdline = File.ReadAllBytes("/proc/self/cmdline");
        var args = new List<byte[]>();
        int start = 0;
        for (int i = 0; i < cmdline.Length; i++)
        {
            if (cmdline[i] != 0)
                continue;
            args.Add(cmdline[start..i]);
            start = i + 1;
        }
        if (args.Count > 0)
            args.RemoveAt(0);
        return args;
    }

    /// <summary>The value of an environment variable, as bytes, or null.</summary>
    public static byte[]? GetEnvironmentVariable(string name)
    {
        byte[] prefix = Encoding.ASCII.GetBytes(name + "=");
        for (byte** env = Libc.Environ; env != null && *env != null; env++)
        {
            var entry = new ReadOnlySpan<byte>(*env, int.MaxValue);
            entry = entry[..entry.IndexOf((byte)0)];
            if (entry.StartsWith(prefix))
                return entry[prefix.Length..].ToArray();
        }
        return null;
    }
}

/// <summary>nonet's own output, written straight to fds 1 and 2 with write(2).
/// System.Console is not used: on a terminal it changes terminal settings and
/// installs signal handling, both of which belong to the command.  Nor is
/// FileStream: on a regular file it writes at its own offset (pwrite) and
/// would overwrite what others wrote to a shared stdout.</summary>
internal static class StdStreams
{
    private static TextWriter? output;

    public static TextWriter Out => output ??= new StreamWriter(new FdStream(1), new UTF8Encoding(false)) { NewLine = "\n" };

    public static void Flush() => output?.Flush();

    /// <summary>One line on stderr, prefixed "nonet: ".  When stderr itself
    /// fails there is nobody to tell: the exit status says it.</summary>
    public static void Error(string line)
    {
        byte[] bytes = Encoding.UTF8.GetBytes("nonet: " + line + "\n");
        try
        {
            new FdStream(2).Write(bytes);
        }
        catch (OutputException)
        {
        }
    }
}

/// <summary>Writing to stdout or stderr failed (a full disk, a closed
/// descriptor, a reader gone): as coreutils do, nonet says so and fails.</summary>
internal sealed class OutputException(int fd, int errno)
    : NonetException(ExitCodes.NonetFailed,
        $"cannot write to standard {(fd == 2 ? "error" : "output")}: {Libc.Describe(errno)}")
{
    public int Fd { get; } = fd;

    public int Errno { get; } = errno;
}

/// <summary>An unowned, unbuffered, append-as-you-go stream over a file descriptor.</summary>
internal sealed unsafe class FdStream(int fd) : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                nint n = (nint)Tmds.Linux.LibC.write(fd, p + done, (Tmds.Linux.size_t)(buffer.Length - done));
                if (n < 0 && Tmds.Linux.LibC.errno == Tmds.Linux.LibC.EINTR)
                    continue;
                if (n <= 0)
                    throw new OutputException(fd, n < 0 ? Tmds.Linux.LibC.errno : Errno.EIO);
                done += (int)n;
            }
        }
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
