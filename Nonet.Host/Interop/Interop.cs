using System;
using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Nonet.Interop;

/// <summary>
/// libc calls that Tmds.LibC 0.5.0 lacks.  Everything else comes from
/// Tmds.Linux.LibC.  Each call's errno is read right after it, through
/// <see cref="Marshal.GetLastPInvokeError"/>, and carried by
/// <see cref="SystemCallException"/> with the name of the operation.
/// </summary>
internal static unsafe partial class Libc
{
    private const string Name = "libc";

    public const int WNOHANG = 1;
    public const int __WALL = 0x40000000;
    public const int WUNTRACED = 2;
    public const int WCONTINUED = 8;
    public const int SFD_CLOEXEC = 0x80000;
    public const int SFD_NONBLOCK = 0x800;
    public const int SI_KERNEL = 0x80;

    // glibc's posix_spawn_file_actions_t is 80 bytes on 64-bit targets;
    // this buffer is larger on purpose.
    public const int FileActionsSize = 256;

    [LibraryImport(Name, SetLastError = true)]
    public static partial int waitpid(int pid, int* status, int options);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int signalfd(int fd, sigset_t* mask, int flags);

    public const int RLIMIT_NPROC = 6;
    public const int RLIMIT_NOFILE = 7;

    /// <summary>struct rlimit: rlim_cur, rlim_max.</summary>
    [LibraryImport(Name, SetLastError = true)]
    public static partial int getrlimit(int resource, ulong* limits);

    /// <summary>A soft limit as 'ulimit' shows it ("unlimited" or a number), or null.</summary>
    public static string? SoftLimit(int resource)
    {
        ulong* limits = stackalloc ulong[2];
        if (getrlimit(resource, limits) != 0)
            return null;
        return limits[0] == ulong.MaxValue ? "unlimited" : limits[0].ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    [LibraryImport(Name)]
    public static partial int posix_spawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport(Name)]
    public static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport(Name)]
    public static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport(Name)]
    public static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);

    [LibraryImport(Name, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall4(long number, int a, int b, nint c, uint d);

    private const long SYS_pidfd_send_signal = 424; // the same number on every architecture

    /// <summary>Signals the process whose /proc/PID directory is
    /// <paramref name="procDirFd"/>, never a successor with its pid;
    /// kill() only on kernels older than 5.1.</summary>
    public static void PidfdSendSignal(int procDirFd, int pid, int signal)
    {
        if (syscall4(SYS_pidfd_send_signal, procDirFd, signal, 0, 0) < 0 && Errno == Tmds.Linux.LibC.ENOSYS)
            Tmds.Linux.LibC.kill(pid, signal);
    }

    /// <summary>Whether <paramref name="signal"/> (0: none, a check) reached
    /// the process whose /proc/PID directory is <paramref name="procDirFd"/>;
    /// it is alive (or a zombie) when 0 does.</summary>
    public static bool TryPidfdSendSignal(int procDirFd, int signal) =>
        syscall4(SYS_pidfd_send_signal, procDirFd, signal, 0, 0) == 0;

    /// <summary>The process environment exactly as the kernel and libc hold it:
    /// bytes, not the UTF-8-decoded copy .NET keeps.</summary>
    public static byte** Environ
    {
        get
        {
            // Constant in the NativeAOT build, which keeps only the first
            // branch: no dlsym() in the static executable.
            if (!System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported)
                return NativeEnviron();
            // On the JIT (unit tests), libc's own symbol.
            var handle = NativeLibrary.GetMainProgramHandle();
            return NativeLibrary.TryGetExport(handle, "environ", out var address)
                ? *(byte***)address
                : null;
        }
    }

    /// <summary>Native/runtime_start.c: the static host has no dynamic
    /// symbol table, so 'environ' comes from C.</summary>
    [LibraryImport(EarlySignals.Library, EntryPoint = "nonet_environ")]
    private static partial byte** NativeEnviron();

    /// <summary>errno of the last call declared here (SetLastError).</summary>
    public static int Errno => Marshal.GetLastPInvokeError();

    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}

/// <summary>A failed system call: which operation, and its errno.</summary>
internal sealed class SystemCallException(string operation, int errno)
    : Exception($"{operation}: {Libc.Describe(errno)}")
{
    public string Operation { get; } = operation;
    public int Errno { get; } = errno;
}
