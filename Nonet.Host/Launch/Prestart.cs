using System;
using System.Runtime.InteropServices;

namespace Nonet.Launch;

/// <summary>A running launcher and the host's ends of its descriptors: the
/// status pipe to read, the go pipe to send the run message on, and the
/// control socket (launcher/status.h).</summary>
internal readonly record struct StartedLauncher(int Pid, int StatusFd, int GoFd, int ControlFd);

/// <summary>
/// The launcher Native/prestart.c started before the runtime did, when
/// nonet was run as 'nonet COMMAND': the host takes it when it would have
/// started the same one itself, and otherwise ends it, silently.  On the
/// JIT (unit tests) there is none.
/// </summary>
internal static unsafe partial class Prestart
{
    [LibraryImport(Interop.EarlySignals.Library, EntryPoint = "nonet_prestarted")]
    private static partial int Prestarted(int* fds, int* pid, byte* path, int size);

    [LibraryImport(Interop.EarlySignals.Library, EntryPoint = "nonet_prestart_cancel")]
    private static partial void NativeCancel();

    private const int PathMax = 4096;

    /// <summary>The prestarted launcher if it is <paramref name="launcherPath"/>
    /// and <paramref name="usable"/>; else null, and any prestarted one is ended.</summary>
    public static StartedLauncher? Take(ReadOnlySpan<byte> launcherPath, bool usable)
    {
        if (!usable)
        {
            Cancel();
            return null;
        }
        int* fds = stackalloc int[3];
        int pid;
        byte* path = stackalloc byte[PathMax];
        try
        {
            if (Prestarted(fds, &pid, path, PathMax) != 1)
                return null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
        var started = new StartedLauncher(pid, fds[0], fds[1], fds[2]);
        if (MemoryMarshal.CreateReadOnlySpanFromNullTerminated(path).SequenceEqual(launcherPath))
            return started;
        End(started);
        return null;
    }

    /// <summary>Ends a prestarted launcher nobody took (nonet is about to
    /// exit without running the command); nothing when there is none.</summary>
    public static void Cancel()
    {
        try
        {
            NativeCancel();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    /// <summary>With the go pipe closed, the launcher's child ends without
    /// running anything and the launcher with it; reaped here.</summary>
    private static void End(StartedLauncher started)
    {
        Tmds.Linux.LibC.close(started.GoFd);
        Tmds.Linux.LibC.close(started.ControlFd);
        Tmds.Linux.LibC.close(started.StatusFd);
        int st;
        while (Interop.Libc.waitpid(started.Pid, &st, 0) < 0 && Interop.Libc.Errno == Tmds.Linux.LibC.EINTR)
        {
        }
    }
}
