using System;
using System.Buffers.Binary;
using Nonet.Interop;

namespace Nonet.Report;

/// <summary>
/// The namespace's own sockets, seen through a NETLINK_SOCK_DIAG socket that
/// the launcher's child made inside (launcher/report.c) and nonet took with
/// pidfd_getfd(2): sock_diag answers for the network namespace a socket was
/// made in, and nonet's host is outside.  It tells whether a path-based
/// Unix socket was bound inside (UNIX_DIAG_VFS: the device and inode of the
/// file bind() made), and the namespace's cookie (SO_NETNS_COOKIE), which a
/// socket made outside does not carry.
/// </summary>
internal sealed unsafe class NamespaceSockets : IDisposable
{
    private const int SoNetnsCookie = 71;      // Linux 5.14
    private const ushort SockDiagByFamily = 20;
    private const ushort NlmFRequest = 0x1, NlmFDump = 0x300;
    private const ushort NlmsgError = 2, NlmsgDone = 3;
    private const uint UdiagShowVfs = 0x2;
    private const ushort UnixDiagVfs = 1;
    private const int HeaderSize = 16, UnixDiagMsgSize = 16;

    private int fd;
    private uint sequence;

    private NamespaceSockets(int fd)
    {
        this.fd = fd;
        Cookie = CookieOf(fd);
    }

    /// <summary>The namespace's cookie, or 0 where the kernel has none.</summary>
    public ulong Cookie { get; }

    public static NamespaceSockets? Adopt(int fd) => fd < 0 ? null : new NamespaceSockets(fd);

    /// <summary>The network namespace cookie of a socket, or 0.</summary>
    public static ulong CookieOf(int socket)
    {
        ulong cookie = 0;
        int length = sizeof(ulong);
        return Sockets.getsockopt(socket, Sockets.SOL_SOCKET, SoNetnsCookie, &cookie, &length) == 0 ? cookie : 0;
    }

    /// <summary>Whether a Unix socket of the namespace is bound to the file
    /// with this device (major, minor) and inode: true, false, or null
    /// when the kernel could not be asked.</summary>
    public bool? HasUnixSocketBoundTo(uint major, uint minor, ulong inode)
    {
        byte* request = stackalloc byte[HeaderSize + 24];
        new Span<byte>(request, HeaderSize + 24).Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(request, 4), HeaderSize + 24);
        BinaryPrimitives.WriteUInt16LittleEndian(new Span<byte>(request + 4, 2), SockDiagByFamily);
        BinaryPrimitives.WriteUInt16LittleEndian(new Span<byte>(request + 6, 2), NlmFRequest | NlmFDump);
        uint seq = ++sequence;
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(request + 8, 4), seq);
        request[HeaderSize] = 1; // AF_UNIX
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(request + HeaderSize + 4, 4), 0xffffffff); // every state
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(request + HeaderSize + 12, 4), UdiagShowVfs);
        if (Sockets.send(fd, request, HeaderSize + 24, 0) != HeaderSize + 24)
            return null;
        var buffer = new byte[32768];
        bool found = false;
        while (true)
        {
            nint n;
            fixed (byte* b = buffer)
                n = Sockets.recv(fd, b, (nuint)buffer.Length, 0);
            if (n < 0 && Sockets.LastError == Errno.EINTR)
                continue;
            if (n <= 0)
                return null;
            var data = buffer.AsSpan(0, (int)n);
            while (data.Length >= HeaderSize)
            {
                int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(data);
                ushort type = BinaryPrimitives.ReadUInt16LittleEndian(data[4..]);
                if (length < HeaderSize || length > data.Length)
                    return null;
                if (BinaryPrimitives.ReadUInt32LittleEndian(data[8..]) != seq)
                {
                    // What an earlier, abandoned dump left.
                    int skip = (length + 3) & ~3;
                    data = skip >= data.Length ? [] : data[skip..];
                    continue;
                }
                if (type == NlmsgDone)
                    return found;
                if (type == NlmsgError)
                    return null;
                if (!found && length >= HeaderSize + UnixDiagMsgSize)
                    found = VfsMatches(data[(HeaderSize + UnixDiagMsgSize)..length], major, minor, inode);
                int next = (length + 3) & ~3;
                data = next >= data.Length ? [] : data[next..];
            }
        }
    }

    /// <summary>Whether the attributes hold UNIX_DIAG_VFS for this file.
    /// The kernel gives the device as its own dev_t (major &lt;&lt; 20 |
    /// minor) and the inode's low 32 bits.</summary>
    internal static bool VfsMatches(ReadOnlySpan<byte> attributes, uint major, uint minor, ulong inode)
    {
        while (attributes.Length >= 4)
        {
            int length = BinaryPrimitives.ReadUInt16LittleEndian(attributes);
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(attributes[2..]);
            if (length < 4 || length > attributes.Length)
                return false;
            if (type == UnixDiagVfs && length >= 12)
            {
                uint ino = BinaryPrimitives.ReadUInt32LittleEndian(attributes[4..]);
                uint dev = BinaryPrimitives.ReadUInt32LittleEndian(attributes[8..]);
                return ino == (uint)inode && dev >> 20 == major && (dev & 0xfffff) == minor;
            }
            int next = (length + 3) & ~3;
            attributes = next >= attributes.Length ? [] : attributes[next..];
        }
        return false;
    }

    /// <summary>glibc's major() and minor() of a stat's st_dev.</summary>
    public static (uint Major, uint Minor) Split(ulong dev) =>
        ((uint)(((dev >> 8) & 0xfff) | ((dev >> 32) & 0xfffff000)), (uint)((dev & 0xff) | ((dev >> 12) & 0xffffff00)));

    public void Dispose()
    {
        if (fd >= 0)
            Sockets.close(fd);
        fd = -1;
    }
}
