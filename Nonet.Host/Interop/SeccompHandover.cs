using System.Runtime.InteropServices;

namespace Nonet.Interop;

/// <summary>
/// What the supervision of the seccomp filter needs besides receiving and
/// answering: the calls the filter hands over, answering with an error,
/// putting a descriptor into the caller (SECCOMP_IOCTL_NOTIF_ADDFD, Linux
/// 5.9), copying from the caller's memory, and asking a socket which
/// network namespace it belongs to.  Values of &lt;linux/seccomp.h&gt; and
/// &lt;linux/sockios.h&gt;, the same on x86-64 and arm64.
/// </summary>
internal static unsafe partial class Seccomp
{
    /// <summary>The system calls the filter hands over, by number on this architecture.</summary>
    public static readonly (int Connect, int SendTo, int SendMsg, int SendMmsg) Calls =
        RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? (203, 206, 211, 269) : (42, 44, 46, 307);

    public const ulong IoctlNotifAddFd = 0x40182103; // _IOW('!', 3, struct seccomp_notif_addfd)
    public const uint AddFdFlagSetFd = 1;             // SECCOMP_ADDFD_FLAG_SETFD

    /// <summary>struct seccomp_notif_addfd.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct AddFdRequest
    {
        public ulong Id;
        public uint Flags;
        public uint SrcFd;
        public uint NewFd;
        public uint NewFdFlags;
    }

    /// <summary>Puts <paramref name="srcFd"/> (a file of nonet's) in place of
    /// the caller's descriptor <paramref name="newFd"/>, as dup3() would:
    /// 0, or an errno (ENOENT: the call no longer waits).  Neither
    /// SECCOMP_ADDFD_FLAG_SEND (connect() would then return the descriptor
    /// number) nor a killable wait (a signal must still interrupt the call).</summary>
    public static int AddFd(int listener, ulong id, int srcFd, int newFd, bool closeOnExec)
    {
        var request = new AddFdRequest
        {
            Id = id,
            Flags = AddFdFlagSetFd,
            SrcFd = (uint)srcFd,
            NewFd = (uint)newFd,
            NewFdFlags = closeOnExec ? 0x80000u : 0u, // O_CLOEXEC
        };
        return ioctl(listener, IoctlNotifAddFd, &request) >= 0 ? 0 : LastError;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [LibraryImport(Name, SetLastError = true)]
    private static partial nint process_vm_readv(int pid, IoVec* local, ulong localCount, IoVec* remote, ulong remoteCount, ulong flags);

    /// <summary>Copies <paramref name="length"/> bytes at <paramref name="address"/>
    /// in thread <paramref name="tid"/>'s memory: the count copied, or -errno.</summary>
    public static int ReadMemory(int tid, ulong address, byte* buffer, int length)
    {
        if (length == 0)
            return 0;
        var local = new IoVec { Base = buffer, Length = (nuint)length };
        var remote = new IoVec { Base = (void*)address, Length = (nuint)length };
        nint n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
        return n < 0 ? -LastError : (int)n;
    }

    private const ulong SIOCGSKNS = 0x894c;

    /// <summary>The network namespace of socket <paramref name="fd"/> (a new
    /// descriptor for it), or -errno: EPERM when nonet holds no
    /// CAP_NET_ADMIN over it, as an ordinary user over the host's.</summary>
    public static int NamespaceOf(int fd)
    {
        int ns = ioctl(fd, SIOCGSKNS, null);
        return ns >= 0 ? ns : -LastError;
    }
}
