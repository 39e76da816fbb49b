using System.Runtime.InteropServices;

namespace Nonet.Report;

/// <summary>
/// Calls that are not the machine's native ones: an i386 program's
/// (AUDIT_ARCH_I386, or 32-bit ARM on arm64) or an x32 program's (the
/// native AUDIT_ARCH_X86_64 with bit 0x40000000 in the number).  Their
/// arguments follow other layouts, so under --report nonet does not read
/// them: it records the refusal and the call fails with ENOSYS.  Pure.
/// </summary>
internal static class ForeignCalls
{
    public const uint AuditArchX8664 = 0xc000003e;
    public const uint AuditArchAarch64 = 0xc00000b7;
    public const uint AuditArchI386 = 0x40000003;
    public const uint AuditArchArm = 0x40000028;
    public const int X32SyscallBit = 0x40000000;

    public const string Refused = "refused: 32-bit/x32 call";

    public static uint Native { get; } =
        RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? AuditArchAarch64 : AuditArchX8664;

    /// <summary>Null for a native call; else what it is, such as
    /// "i386 socketcall connect" or "x32 sendto".</summary>
    public static string? Name(uint arch, int nr, ulong firstArgument, uint native)
    {
        if (arch == native && (nr & X32SyscallBit) == 0)
            return null;
        if (arch == AuditArchI386)
        {
            return "i386 " + (nr switch
            {
                102 => "socketcall" + (firstArgument switch
                {
                    1 => " socket",
                    3 => " connect",
                    9 => " send",
                    11 => " sendto",
                    16 => " sendmsg",
                    20 => " sendmmsg",
                    _ => $" {firstArgument & 0xffffffff}",
                }),
                359 => "socket",
                362 => "connect",
                369 => "sendto",
                370 => "sendmsg",
                345 => "sendmmsg",
                _ => $"syscall {nr}",
            });
        }
        if (arch == AuditArchX8664 && (nr & X32SyscallBit) != 0)
        {
            return "x32 " + ((nr & ~X32SyscallBit) switch
            {
                41 => "socket",
                42 => "connect",
                44 => "sendto",
                518 => "sendmsg",
                538 => "sendmmsg",
                int other => $"syscall {other}",
            });
        }
        if (arch == AuditArchArm)
            return $"arm syscall {nr}";
        return $"arch 0x{arch:x8} syscall {nr}";
    }
}
