using System;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Nonet.Interop;

/// <summary>
/// The socket and epoll calls that port forwarding makes on raw
/// descriptors.  Sockets made inside nonet's namespace arrive as plain fds
/// (SCM_RIGHTS), and one epoll loop serves them all, so it works on
/// descriptors rather than System.Net.Sockets objects.  Constants are the
/// Linux values shared by x86-64 and arm64.
/// </summary>
internal static unsafe partial class Sockets
{
    private const string Name = "libc";

    public const int AF_UNIX = 1;
    public const int AF_INET = 2;
    public const int AF_INET6 = 10;
    public const int SOCK_STREAM = 1;
    public const int SOCK_DGRAM = 2;
    public const int SOCK_SEQPACKET = 5;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1;
    public const int SO_REUSEADDR = 2;
    public const int SO_ERROR = 4;
    public const int SO_LINGER = 13;
    public const int IPPROTO_IPV6 = 41;
    public const int IPV6_V6ONLY = 26;
    public const int SHUT_WR = 1;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;
    public const int MSG_CMSG_CLOEXEC = 0x40000000;
    public const int SCM_RIGHTS = 1;
    public const int SOMAXCONN = 4096;

    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const int EPOLL_CTL_MOD = 3;
    public const uint EPOLLIN = 0x1;
    public const uint EPOLLOUT = 0x4;
    public const uint EPOLLERR = 0x8;
    public const uint EPOLLHUP = 0x10;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLET = 1u << 31;

    public const int RLIMIT_NOFILE = 7;

    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int EPIPE = 32;
    public const int EAFNOSUPPORT = 97;
    public const int EADDRINUSE = 98;
    public const int EADDRNOTAVAIL = 99;
    public const int ECONNABORTED = 103;
    public const int ECONNRESET = 104;
    public const int ENOBUFS = 105;
    public const int ECONNREFUSED = 111;
    public const int EINPROGRESS = 115;

    /// <summary>struct epoll_event is packed on x86-64 (12 bytes), naturally aligned elsewhere (16).</summary>
    public static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    public static readonly int EpollDataOffset = EpollEventSize == 12 ? 4 : 8;

    [LibraryImport(Name, SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int socketpair(int domain, int type, int protocol, int* fds);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int bind(int fd, byte* address, int length);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int listen(int fd, int backlog);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int accept4(int fd, byte* address, int* length, int flags);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int connect(int fd, byte* address, int length);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int getsockname(int fd, byte* address, int* length);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int getsockopt(int fd, int level, int name, void* value, int* length);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, void* value, int length);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int shutdown(int fd, int how);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint send(int fd, void* buffer, nuint length, int flags);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint recv(int fd, void* buffer, nuint length, int flags);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint recvmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint recvfrom(int fd, void* buffer, nuint length, int flags, byte* address, int* addressLength);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint sendto(int fd, void* buffer, nuint length, int flags, byte* address, int addressLength);


    [LibraryImport(Name, SetLastError = true)]
    public static partial int close(int fd);



    [LibraryImport(Name, SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int epoll_wait(int epfd, byte* events, int maxEvents, int timeout);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int getrlimit(int resource, ulong* limits);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int setrlimit(int resource, ulong* limits);

    public static int LastError => Marshal.GetLastPInvokeError();

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public int NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>struct cmsghdr's header; data follows at <see cref="CmsgDataOffset"/>.</summary>
    public static readonly int CmsgDataOffset = IntPtr.Size == 8 ? 16 : 12;

    /// <summary>A sockaddr_in or sockaddr_in6 for <paramref name="address"/>:<paramref name="port"/>.</summary>
    public static int FillAddress(byte* buffer, IPAddress address, int port)
    {
        new Span<byte>(buffer, 28).Clear();
        buffer[2] = (byte)(port >> 8);
        buffer[3] = (byte)port;
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            *(ushort*)buffer = AF_INET6;
            address.TryWriteBytes(new Span<byte>(buffer + 8, 16), out _);
            *(uint*)(buffer + 24) = (uint)address.ScopeId;
            return 28;
        }
        *(ushort*)buffer = AF_INET;
        address.TryWriteBytes(new Span<byte>(buffer + 4, 4), out _);
        return 16;
    }

    public static int FamilyOf(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 ? AF_INET6 : AF_INET;

    /// <summary>The port a bound socket got (for port 0).</summary>
    public static int LocalPort(int fd)
    {
        byte* buffer = stackalloc byte[28];
        int length = 28;
        if (getsockname(fd, buffer, &length) != 0)
            return -1;
        return (buffer[2] << 8) | buffer[3];
    }

    /// <summary>Closes with an RST rather than a FIN, so that the peer sees
    /// its connection reset rather than ended.</summary>
    public static void Reset(int fd)
    {
        int* linger = stackalloc int[2];
        linger[0] = 1;
        linger[1] = 0;
        setsockopt(fd, SOL_SOCKET, SO_LINGER, linger, 8);
        close(fd);
    }

    [LibraryImport(Name, SetLastError = true)]
    public static partial int getpeername(int fd, byte* address, int* length);

    /// <summary>A TCP simultaneous open of a socket with itself: the same
    /// address and port at both ends.</summary>
    public static bool IsConnectedToItself(int fd)
    {
        byte* local = stackalloc byte[28];
        byte* peer = stackalloc byte[28];
        int localLength = 28, peerLength = 28;
        return getsockname(fd, local, &localLength) == 0 && getpeername(fd, peer, &peerLength) == 0
            && localLength == peerLength && new ReadOnlySpan<byte>(local, localLength).SequenceEqual(new ReadOnlySpan<byte>(peer, peerLength));
    }

    public static int SocketError(int fd)
    {
        int error = 0;
        int length = sizeof(int);
        return getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 ? error : LastError;
    }
}
