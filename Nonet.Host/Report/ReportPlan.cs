using System;
using System.Text;
using Nonet.Config;
using static Tmds.Linux.LibC;

namespace Nonet.Report;

/// <summary>What --report and --report-file (or the 'report' and
/// 'report-file' settings) ask for.  Without either, nothing is watched
/// and the launch costs nothing more.</summary>
internal sealed record ReportPlan(bool Summary, string? File, string FileSource)
{
    public bool IsEmpty => !Summary && File is null;

    public static ReportPlan From(NonetConfiguration configuration)
    {
        var report = configuration.Describe("report");
        var file = configuration.Describe("report-file");
        bool summary = report.Value?.Trim().ToLowerInvariant() switch
        {
            null or "" or "off" or "no" or "false" or "0" => false,
            "on" or "yes" or "true" or "1" => true,
            _ => throw new NonetException(ExitCodes.NonetFailed,
                $"{report.Source}: report must be on or off, not '{report.Value}'"),
        };
        return new ReportPlan(summary, string.IsNullOrEmpty(file.Value) ? null : file.Value, file.Source);
    }

    /// <summary>The file, created with mode 0600 or truncated, before the
    /// command starts: a path that cannot be written stops nonet (125).</summary>
    public ReportFile? OpenFile()
    {
        if (File is null)
            return null;
        return ReportFile.Open(File);
    }
}

/// <summary>--report-file's descriptor; each line goes out in one write().</summary>
internal sealed unsafe class ReportFile : IDisposable
{
    private ReportFile(int fd) => Fd = fd;

    public int Fd { get; private set; }

    /// <summary>Opened without blocking, so that a FIFO with no reader
    /// fails at once (ENXIO) instead of waiting in open() for one, with
    /// nonet's signals already held (issue 19); writes block as usual
    /// afterwards.  A FIFO or terminal that can be written is accepted.</summary>
    public static ReportFile Open(string path)
    {
        byte[] name = Encoding.UTF8.GetBytes(path + "\0");
        int fd;
        fixed (byte* n = name)
            fd = open(n, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0x180 /* 0600 */);
        if (fd < 0)
        {
            int e = errno;
            bool fifo = e == ENXIO && Interop.RawFile.Stat(Interop.FilePath.Of(path), out uint mode, out _) == 0 && Interop.RawFile.IsFifo(mode);
            throw Unwritable(path, fifo ? "a FIFO with no reader" : Interop.Libc.Describe(e));
        }
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        {
            int e = errno;
            close(fd);
            throw Unwritable(path, Interop.Libc.Describe(e));
        }
        return new ReportFile(fd);
    }

    private static NonetException Unwritable(string path, string why) =>
        new(ExitCodes.NonetFailed, $"cannot write the report to {Launch.CommandResolver.Show(Encoding.UTF8.GetBytes(path))}: {why}");

    public void Dispose()
    {
        if (Fd >= 0)
            close(Fd);
        Fd = -1;
    }
}
