using System;
using System.Collections.Generic;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace Nonet.Interop;

/// <summary>
/// What --allow asks of the host: its own addresses (getifaddrs, netlink
/// underneath, no NSS), the kernel's release (uname), and a timerfd for the
/// DNS forwarder's deadlines on the event loop.
/// </summary>
internal static unsafe partial class HostNetwork
{
    private const string Name = "libc";

    public const int CLOCK_MONOTONIC = 1;
    public const int TFD_NONBLOCK = 0x800;
    public const int TFD_CLOEXEC = 0x80000;

    [LibraryImport(Name, SetLastError = true)]
    private static partial int getifaddrs(byte** list);

    [LibraryImport(Name)]
    private static partial void freeifaddrs(byte* list);

    [LibraryImport(Name, SetLastError = true)]
    private static partial int uname(byte* buffer);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int timerfd_create(int clock, int flags);

    /// <summary>struct itimerspec: interval, then value (seconds, nanoseconds).</summary>
    [LibraryImport(Name, SetLastError = true)]
    public static partial int timerfd_settime(int fd, int flags, long* newValue, long* oldValue);

    [LibraryImport(Name, SetLastError = true)]
    private static partial nint getrandom(void* buffer, nuint length, uint flags);

    /// <summary>A random 16-bit number from the kernel (getrandom(2)):
    /// System.Security.Cryptography would load libcrypto with dlopen, which
    /// a static executable must not do.</summary>
    public static ushort RandomId()
    {
        ushort value = 0;
        while (getrandom(&value, 2, 0) != 2)
        {
        }
        return value;
    }

    /// <summary>Every address of every interface of the host's network
    /// namespace (link-local ones without their zone); empty if the kernel
    /// does not say.</summary>
    public static HashSet<IPAddress> Addresses()
    {
        var found = new HashSet<IPAddress>();
        byte* list;
        if (getifaddrs(&list) != 0)
            return found;
        try
        {
            // struct ifaddrs: next, name, flags (+pad), addr, ...
            for (byte* entry = list; entry != null; entry = *(byte**)entry)
            {
                byte* sa = *(byte**)(entry + 3 * sizeof(nint));
                if (sa == null)
                    continue;
                ushort family = *(ushort*)sa;
                if (family == Sockets.AF_INET)
                    found.Add(new IPAddress(new ReadOnlySpan<byte>(sa + 4, 4)));
                else if (family == Sockets.AF_INET6)
                    found.Add(new IPAddress(new ReadOnlySpan<byte>(sa + 8, 16)));
            }
        }
        finally
        {
            freeifaddrs(list);
        }
        return found;
    }

    /// <summary>The kernel's release, as uname -r says it ("6.18.4-..."),
    /// or null.</summary>
    public static string? KernelRelease()
    {
        // struct utsname: six fields of 65 bytes; release is the third.
        byte* buffer = stackalloc byte[6 * 65];
        if (uname(buffer) != 0)
            return null;
        var release = new ReadOnlySpan<byte>(buffer + 2 * 65, 65);
        int end = release.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? release : release[..end]);
    }
}
