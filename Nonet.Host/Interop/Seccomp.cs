using System.Runtime.InteropServices;

namespace Nonet.Interop;

/// <summary>
/// seccomp user notification (seccomp_unotify(2)), pidfds and process
/// memory, for --report.  Structures and ioctl numbers are those of
/// &lt;linux/seccomp.h&gt;, the same on x86-64 and arm64.
/// </summary>
internal static unsafe partial class Seccomp
{
    private const string Name = "libc";

    public const ulong IoctlNotifRecv = 0xc0502100;    // _IOWR('!', 0, struct seccomp_notif)
    public const ulong IoctlNotifSend = 0xc0182101;    // _IOWR('!', 1, struct seccomp_notif_resp)
    public const ulong IoctlNotifIdValid = 0x40082102; // _IOW('!', 2, __u64)
    public const uint FlagContinue = 1;                // SECCOMP_USER_NOTIF_FLAG_CONTINUE

    public const short POLLIN = 0x1;
    public const short POLLHUP = 0x10;

    private const long SysPidfdOpen = 434;
    private const long SysPidfdGetfd = 438;
    public const uint PidfdThread = 0x80; // O_EXCL: PIDFD_THREAD, Linux 6.9

    /// <summary>struct seccomp_notif: the id, the calling thread and its
    /// struct seccomp_data.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Notification
    {
        public ulong Id;
        public uint Pid;
        public uint Flags;
        public int Nr;
        public uint Arch;
        public ulong InstructionPointer;
        public fixed ulong Args[6];
    }

    /// <summary>struct seccomp_notif_resp.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Response
    {
        public ulong Id;
        public long Val;
        public int Error;
        public uint Flags;
    }

    [LibraryImport(Name, SetLastError = true)]
    public static partial int ioctl(int fd, ulong request, void* argument);

    [LibraryImport(Name, SetLastError = true)]
    private static partial long syscall(long number, long a1, long a2, long a3);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint pread(int fd, void* buffer, nuint count, long offset);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int poll(PollFd* fds, ulong count, int timeout);

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(Name, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall4(long number, long a1, long a2, long a3, long a4);

    private const long SysOpenat2 = 437;
    private const ulong ResolveInRoot = 0x10;
    public const int O_PATH = 0x200000;

    /// <summary>openat2(2) with RESOLVE_IN_ROOT: <paramref name="path"/>
    /// resolved as if <paramref name="rootFd"/> were "/", absolute symbolic
    /// links included (Linux 5.6).</summary>
    public static int OpenInRoot(int rootFd, byte* path, int flags) => OpenAt2(rootFd, path, flags, ResolveInRoot);

    /// <summary>openat(2), relative to <paramref name="dirFd"/>, through openat2.</summary>
    public static int OpenAt(int dirFd, byte* path, int flags) => OpenAt2(dirFd, path, flags, 0);

    private static int OpenAt2(int dirFd, byte* path, int flags, ulong resolve)
    {
        ulong* how = stackalloc ulong[3];
        how[0] = (ulong)flags;
        how[1] = 0;
        how[2] = resolve;
        return (int)syscall4(SysOpenat2, dirFd, (long)path, (long)how, 24);
    }

    public static int PidfdOpen(int pid, uint flags) => (int)syscall(SysPidfdOpen, pid, flags, 0);

    /// <summary>A copy, close-on-exec, of descriptor <paramref name="targetFd"/> of the process.</summary>
    public static int PidfdGetfd(int pidfd, int targetFd) => (int)syscall(SysPidfdGetfd, pidfd, targetFd, 0);

    public static int LastError => Marshal.GetLastPInvokeError();

    /// <summary>Waits for a notification (or the end of every filtered
    /// process): poll()'s revents, 0 on timeout, -1 on error.</summary>
    public static int Wait(int fd, int timeoutMs)
    {
        var p = new PollFd { Fd = fd, Events = POLLIN };
        int n = poll(&p, 1, timeoutMs);
        return n <= 0 ? n : p.Revents;
    }

    public static int Receive(int fd, out Notification notification)
    {
        Notification n = default; // the kernel insists on zeroes
        int rc = ioctl(fd, IoctlNotifRecv, &n);
        notification = n;
        return rc == 0 ? 0 : LastError;
    }

    /// <summary>Whether the notification's call still waits, so that what
    /// was read from the process's memory was its.</summary>
    public static bool StillValid(int fd, ulong id) => ioctl(fd, IoctlNotifIdValid, &id) == 0;

    /// <summary>Answers: carry the call out as without the filter.</summary>
    public static int Continue(int fd, ulong id) => Respond(fd, new Response { Id = id, Flags = FlagContinue });

    /// <summary>Answers for the kernel: the call returns <paramref name="value"/>.</summary>
    public static int Return(int fd, ulong id, long value) => Respond(fd, new Response { Id = id, Val = value });

    /// <summary>Answers for the kernel: the call fails with <paramref name="errno"/>.</summary>
    public static int Fail(int fd, ulong id, int errno) => Respond(fd, new Response { Id = id, Error = -errno });

    private static int Respond(int fd, Response response) =>
        ioctl(fd, IoctlNotifSend, &response) == 0 ? 0 : LastError;
}
