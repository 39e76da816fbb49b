using System.Runtime.InteropServices;
using System.Threading;

namespace Nonet.Interop;

/// <summary>
/// Whether this kernel carries out SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9),
/// on which --allow's connect hand-over rests, asked of the kernel itself
/// rather than read off its version (a distribution kernel may carry it
/// back; a container runtime may refuse seccomp listeners).  For
/// <c>nonet --self-test</c>.
/// </summary>
internal static unsafe partial class Seccomp
{
    private const int PrSetNoNewPrivs = 38;              // PR_SET_NO_NEW_PRIVS
    private const long SetModeFilter = 1;                // SECCOMP_SET_MODE_FILTER
    private const long FilterFlagNewListener = 1 << 3;   // SECCOMP_FILTER_FLAG_NEW_LISTENER (Linux 5.0)
    private const ushort BpfRetK = 0x06;                 // BPF_RET | BPF_K
    private const uint RetAllow = 0x7fff0000;            // SECCOMP_RET_ALLOW

    private static readonly long SysSeccomp = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 277 : 317;

    /// <summary>struct sock_filter.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct SockFilter
    {
        public ushort Code;
        public byte JumpTrue;
        public byte JumpFalse;
        public uint K;
    }

    /// <summary>struct sock_fprog.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct SockFprog
    {
        public ushort Length;
        public SockFilter* Filter;
    }

    /// <summary>What <see cref="ProbeAddFd"/> found: which call answered
    /// what (errno 0: it succeeded).</summary>
    public readonly record struct AddFdProbe(bool Supported, string Call, int Error);

    /// <summary>
    /// Asks the kernel for SECCOMP_IOCTL_NOTIF_ADDFD, the way --allow uses
    /// it (SECCOMP_ADDFD_FLAG_SETFD), on a thread of its own: that thread
    /// gets a filter that allows every call and a listener for it
    /// (SECCOMP_FILTER_FLAG_NEW_LISTENER), and the listener is asked to put
    /// a descriptor into a call that is not waiting.  A kernel that has the
    /// request looks for that call and answers ENOENT; one without it
    /// answers EINVAL to an ioctl it does not know (kernel/seccomp.c,
    /// seccomp_notify_ioctl).  no_new_privs and the filter belong to the
    /// thread alone, which ends here: the process goes on as before.
    /// EBUSY from seccomp() means a listener is already in force above this
    /// process (nonet run under nonet --report or --allow): --allow's own
    /// filter would be refused the same way.
    /// </summary>
    public static AddFdProbe ProbeAddFd()
    {
        AddFdProbe result = default;
        var thread = new Thread(() => result = ProbeAddFdOnThisThread()) { IsBackground = true, Name = "nonet addfd probe" };
        thread.Start();
        thread.Join();
        return result;
    }

    private static AddFdProbe ProbeAddFdOnThisThread()
    {
        // The filter needs no_new_privs (or CAP_SYS_ADMIN, which a command
        // of nonet's has not): for this thread only.
        if (Libc.prctl(PrSetNoNewPrivs, 1, 0, 0, 0) != 0)
            return new(false, "prctl(PR_SET_NO_NEW_PRIVS)", LastError);
        var allowAll = new SockFilter { Code = BpfRetK, K = RetAllow };
        var program = new SockFprog { Length = 1, Filter = &allowAll };
        int listener = (int)syscall(SysSeccomp, SetModeFilter, FilterFlagNewListener, (long)&program);
        if (listener < 0)
            return new(false, "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)", LastError);
        try
        {
            // Notification ids start at a random number and no call of this
            // filter ever waits (it allows everything): id 0 waits nowhere.
            // Success (0) is not an answer a kernel gives: no call waits.
            int error = AddFd(listener, 0, listener, listener, closeOnExec: false);
            return new(error == Errno.ENOENT, "SECCOMP_IOCTL_NOTIF_ADDFD", error);
        }
        finally
        {
            Sockets.close(listener);
        }
    }
}
