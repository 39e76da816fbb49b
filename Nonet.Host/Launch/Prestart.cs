using System;
using System.Runtime.InteropServices;

namespace Nonet.Launch;

/// <summary>A running launcher and the host's ends of its descriptors: the
/// status pipe to read, the go pipe to send the run message on, and the
/// control socket (launcher/status.h).</summary>
internal readonly record struct StartedLauncher(int Pid, int StatusFd, int GoFd, int ControlFd);

/// <summary>
/// Native/prestart.c: it starts the launcher, for the host as for itself,
/// and the launcher it started before the runtime did, when nonet was run
/// as 'nonet COMMAND', is the host's to take when it would have started the
/// same one; otherwise it is ended, silently.  On the JIT (unit tests)
/// there is no native code and no launch.
/// </summary>
internal static unsafe partial class Prestart
{
    [LibraryImport(Interop.EarlySignals.Library, EntryPoint = "nonet_spawn_launcher")]
    private static partial int NativeSpawn(byte* path, int stdoutFd, int* fds, int* pid);

    [LibraryImport(Interop.EarlySignals.Library, EntryPoint = "nonet_prestarted_path")]
    private static partial byte* PrestartedPath();

    [LibraryImport(Interop.EarlySignals.Library, EntryPoint = "nonet_prestarted")]
    private static partial int Prestarted(int* fds, int* pid);

    [LibraryImport(Interop.EarlySignals.Library, EntryPoint = "nonet_prestart_cancel")]
    private static partial void NativeCancel();

    /// <summary>The prestarted launcher if it is <paramref name="launcherPath"/>
    /// and <paramref name="usable"/>; else null, and any prestarted one is ended.</summary>
    public static StartedLauncher? Take(ReadOnlySpan<byte> launcherPath, bool usable)
    {
        byte* path;
        try
        {
            path = PrestartedPath();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
        if (path == null)
            return null;
        if (!usable || !MemoryMarshal.CreateReadOnlySpanFromNullTerminated(path).SequenceEqual(launcherPath))
        {
            NativeCancel();
            return null;
        }
        int* fds = stackalloc int[3];
        int pid;
        return Prestarted(fds, &pid) == 1 ? new StartedLauncher(pid, fds[0], fds[1], fds[2]) : null;
    }

    /// <summary>Starts <paramref name="launcherPath"/> now, as the prestart
    /// does: null and the error of posix_spawn when it cannot start.</summary>
    public static StartedLauncher? Spawn(byte[] launcherPath, int stdoutFd, out int error)
    {
        byte[] path = [.. launcherPath, 0];
        int* fds = stackalloc int[3];
        int pid;
        int rc;
        fixed (byte* p = path)
            rc = NativeSpawn(p, stdoutFd, fds, &pid);
        if (rc < 0)
            throw new Interop.SystemCallException("pipe2", -rc);
        error = rc;
        return rc == 0 ? new StartedLauncher(pid, fds[0], fds[1], fds[2]) : null;
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
}
