using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

/// <summary>
/// nonet's seccomp filter (launcher/filter.c), as the built launcher prints
/// it (--print-filter), run by <see cref="ClassicBpf"/> over crafted calls:
/// the verdicts for every architecture the kernel may run, including i386
/// and x32, which this kernel cannot.  EscapeTests checks the interpreter
/// against the kernel for the native calls.
/// </summary>
public sealed class SeccompFilterTests
{
    public const uint Allow = 0x7fff0000, Notify = 0x7fc00000, KillProcess = 0x80000000;
    public const int EPERM = 1, ENOSYS = 38, EOPNOTSUPP = 95, EAFNOSUPPORT = 97;
    public static uint Refuse(int errno) => 0x00050000u | (uint)errno;

    public const uint AuditX86_64 = 0xc000003e, AuditI386 = 0x40000003, AuditAarch64 = 0xc00000b7, AuditArm = 0x40000028;
    private const uint X32Bit = 0x40000000;

    public const ulong AfUnspec = 0, AfUnix = 1, AfInet = 2, AfInet6 = 10, AfNetlink = 16, AfPacket = 17, AfBluetooth = 31,
        AfAlg = 38, AfVsock = 40, AfMctp = 45, AfFuture = 46;
    public const ulong Tiocsti = 0x5412, Tioclinux = 0x541c, Tiocspgrp = 0x5410, Tiocgpgrp = 0x540f, Tiocsctty = 0x540e,
        Tcsetsw = 0x5403, Tiocgwinsz = 0x5413;
    public const ulong MsgFastopen = 0x20000000, MsgDontwait = 0x40;

    /// <summary>One ABI's numbers for the calls the filter looks at (0: none).</summary>
    public sealed record Abi(string Name, uint Arch, uint Socket, uint Socketpair, uint Socketcall, uint[] Ioctl,
        uint Connect, uint Send, uint Sendto, uint[] Sendmsg, uint[] Sendmmsg, uint IoUringSetup, bool Native)
    {
        public override string ToString() => Name;
    }

    private static uint X32(uint nr) => X32Bit | nr;

    public static readonly Abi X86_64 = new("x86-64", AuditX86_64, 41, 53, 0, [16], 42, 0, 44, [46], [307], 425, true);
    public static readonly Abi X32Abi = new("x32", AuditX86_64, X32(41), X32(53), 0, [X32(514), X32(16)], X32(42), 0, X32(44),
        [X32(518), X32(46)], [X32(538), X32(307)], X32(425), false);
    public static readonly Abi I386 = new("i386", AuditI386, 359, 360, 102, [54], 362, 0, 369, [370], [345], 425, false);
    public static readonly Abi Arm64 = new("arm64", AuditAarch64, 198, 199, 0, [29], 203, 0, 206, [211], [269], 425, true);
    public static readonly Abi Arm32 = new("arm32", AuditArm, 281, 288, 0, [54], 283, 289, 290, [296], [374], 425, false);

    /// <summary>The ABIs a kernel of this machine's architecture runs.</summary>
    public static IEnumerable<Abi> Abis =>
        RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? [Arm64, Arm32] : [X86_64, X32Abi, I386];

    public static Abi NativeAbi => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? Arm64 : X86_64;

    public static readonly string[] Modes = ["base", "report", "allow"];

    private static readonly Dictionary<string, ClassicBpf> programs = new();

    /// <summary>The built launcher's program for <paramref name="mode"/>.</summary>
    public static ClassicBpf Program(string mode)
    {
        lock (programs)
        {
            if (!programs.TryGetValue(mode, out var p))
                programs[mode] = p = ClassicBpf.Load(PrintFilter(mode));
            return p;
        }
    }

    public static byte[] PrintFilter(string mode)
    {
        string launcher = Path.Combine(EndToEnd.Harness.RepositoryRoot, "build", "nonet-launcher");
        if (!File.Exists(launcher))
            Assert.Fail($"{launcher} is missing: run 'make' first (make test does)");
        var psi = new ProcessStartInfo(launcher) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("--print-filter");
        psi.ArgumentList.Add(mode);
        using var process = Process.Start(psi)!;
        var stdout = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            process.Kill();
            Assert.Fail("nonet-launcher --print-filter did not end in 10 s");
        }
        copy.Wait(TimeSpan.FromSeconds(5));
        Assert.That(process.ExitCode, Is.Zero, process.StandardError.ReadToEnd());
        return stdout.ToArray();
    }

    private static uint Verdict(string mode, Abi abi, uint nr, ulong a0 = 0, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0) =>
        Program(mode).Run(new SeccompData(abi.Arch, nr, a0, a1, a2, a3, a4));

    private static IEnumerable<TestCaseData> EveryModeAndAbi() =>
        from mode in Modes from abi in Abis select new TestCaseData(mode, abi).SetArgDisplayNames(mode, abi.Name);

    private static IEnumerable<TestCaseData> WatchedModesAndAbis() =>
        from mode in Modes.Skip(1) from abi in Abis select new TestCaseData(mode, abi).SetArgDisplayNames(mode, abi.Name);

    [TestCaseSource(nameof(EveryModeAndAbi))]
    public void Sockets_of_families_a_network_namespace_confines_are_allowed(string mode, Abi abi)
    {
        foreach (ulong family in new[] { AfUnix, AfInet, AfInet6, AfNetlink, AfPacket, AfAlg })
        {
            Assert.That(Verdict(mode, abi, abi.Socket, family, 1), Is.EqualTo(Allow), $"socket({family})");
            Assert.That(Verdict(mode, abi, abi.Socketpair, family, 1), Is.EqualTo(Allow), $"socketpair({family})");
        }
        // The kernel reads an int: the upper half of the register is not the family.
        Assert.That(Verdict(mode, abi, abi.Socket, 0xffffffff_00000000 | AfInet, 1), Is.EqualTo(Allow));
    }

    [TestCaseSource(nameof(EveryModeAndAbi))]
    public void Vsock_and_every_other_family_are_refused(string mode, Abi abi)
    {
        foreach (ulong family in new ulong[] { AfVsock, AfUnspec, AfBluetooth, AfMctp, AfFuture, 255, 0xffffffff })
        {
            Assert.That(Verdict(mode, abi, abi.Socket, family, 1), Is.EqualTo(Refuse(EAFNOSUPPORT)), $"socket({family})");
            Assert.That(Verdict(mode, abi, abi.Socketpair, family, 1), Is.EqualTo(Refuse(EAFNOSUPPORT)), $"socketpair({family})");
        }
        Assert.That(Verdict(mode, abi, abi.Socket, 0x1_00000000 | AfVsock, 1), Is.EqualTo(Refuse(EAFNOSUPPORT)), "upper half set");
    }

    [TestCaseSource(nameof(EveryModeAndAbi))]
    public void TIOCSTI_and_TIOCLINUX_are_refused_and_job_control_is_not(string mode, Abi abi)
    {
        foreach (uint ioctl in abi.Ioctl)
        {
            Assert.That(Verdict(mode, abi, ioctl, 0, Tiocsti), Is.EqualTo(Refuse(EPERM)), $"{ioctl}: TIOCSTI");
            Assert.That(Verdict(mode, abi, ioctl, 0, Tioclinux), Is.EqualTo(Refuse(EPERM)), $"{ioctl}: TIOCLINUX");
            Assert.That(Verdict(mode, abi, ioctl, 0, 0xffffffff_00000000 | Tiocsti), Is.EqualTo(Refuse(EPERM)), $"{ioctl}: TIOCSTI, upper half set");
            foreach (ulong request in new[] { Tiocspgrp, Tiocgpgrp, Tiocsctty, Tcsetsw, Tiocgwinsz })
                Assert.That(Verdict(mode, abi, ioctl, 0, request), Is.EqualTo(Allow), $"{ioctl}: 0x{request:x}");
        }
    }

    [TestCaseSource(nameof(EveryModeAndAbi))]
    public void Other_calls_pass(string mode, Abi abi)
    {
        // read, write, and numbers the filter has no rule for
        foreach (uint nr in new uint[] { 0, 1, 3, 4, 63, 64, 200, 300, 424, 426, 450 })
        {
            uint call = abi == X32Abi ? X32(nr) : nr;
            if (call == abi.Socket || call == abi.Socketpair || abi.Ioctl.Contains(call) || call == abi.Socketcall
                || call == abi.Connect || call == abi.Send || call == abi.Sendto || abi.Sendmsg.Contains(call) || abi.Sendmmsg.Contains(call))
                continue;
            Assert.That(Verdict(mode, abi, call, 1, 2, 3, 4, 5), Is.EqualTo(Allow), $"call {nr}");
        }
    }

    [TestCaseSource(nameof(Modes))]
    public void i386_socketcall_cannot_make_a_socket_whose_family_is_in_memory(string mode)
    {
        if (!Abis.Contains(I386))
        {
            // arm64 runs no i386 code, and arm32 under arm64 has no socketcall.
            Assert.That(Abis.All(a => a.Socketcall == 0), Is.True);
            return;
        }
        Assert.That(Verdict(mode, I386, 102, 1, 0x1000), Is.EqualTo(Refuse(EAFNOSUPPORT)), "SYS_SOCKET");
        Assert.That(Verdict(mode, I386, 102, 8, 0x1000), Is.EqualTo(Refuse(EAFNOSUPPORT)), "SYS_SOCKETPAIR");
        foreach (ulong call in new ulong[] { 2, 4, 5, 6, 7, 10, 12, 13, 14, 15, 17, 18, 19 })
            Assert.That(Verdict(mode, I386, 102, call, 0x1000), Is.EqualTo(Allow), $"socketcall {call}");
        foreach (ulong call in new ulong[] { 3, 9, 11, 16, 20 })
            Assert.That(Verdict(mode, I386, 102, call, 0x1000), Is.EqualTo(mode == "base" ? Allow : Notify), $"socketcall {call}");
    }

    [Test]
    public void Without_report_or_allow_nothing_is_handed_over()
    {
        foreach (var abi in Abis)
        {
            foreach (uint nr in new[] { abi.Connect, abi.Send, abi.Sendto }.Concat(abi.Sendmsg).Concat(abi.Sendmmsg).Where(n => n != 0))
                Assert.That(Verdict("base", abi, nr, 3, 0x1000, 16, MsgFastopen, 0x2000), Is.EqualTo(Allow), $"{abi}: {nr}");
        }
    }

    [TestCaseSource(nameof(EveryModeAndAbi))]
    public void io_uring_is_refused_on_every_run(string mode, Abi abi)
    {
        // IORING_OP_SOCKET makes a socket of any family without socket().
        Assert.That(Verdict(mode, abi, abi.IoUringSetup, 8, 0x1000), Is.EqualTo(Refuse(ENOSYS)));
    }

    [TestCaseSource(nameof(WatchedModesAndAbis))]
    public void Report_and_allow_hand_over_connect_and_sends_refuse_io_uring(string mode, Abi abi)
    {
        Assert.That(Verdict(mode, abi, abi.Connect, 3, 0x1000, 16), Is.EqualTo(Notify), "connect");
        Assert.That(Verdict(mode, abi, abi.Connect, 0xffffffff, 0, 0), Is.EqualTo(Notify), "connect(-1, NULL, 0): the launcher's wait");
        Assert.That(Verdict(mode, abi, abi.Sendto, 3, 0x1000, 16, 0, 0x2000), Is.EqualTo(Notify), "sendto with an address");
        Assert.That(Verdict(mode, abi, abi.Sendto, 3, 0x1000, 16, 0, 0x1_00000000), Is.EqualTo(Notify), "sendto, address above 4 GiB");
        foreach (uint nr in abi.Sendmsg)
            Assert.That(Verdict(mode, abi, nr, 3, 0x1000, 0), Is.EqualTo(Notify), $"sendmsg {nr}");
        foreach (uint nr in abi.Sendmmsg)
            Assert.That(Verdict(mode, abi, nr, 3, 0x1000, 2, 0), Is.EqualTo(Notify), $"sendmmsg {nr}");
        Assert.That(Verdict(mode, abi, abi.IoUringSetup, 8, 0x1000), Is.EqualTo(Refuse(ENOSYS)), "io_uring_setup");
    }

    [TestCaseSource(nameof(Modes))]
    public void A_native_send_without_an_address_is_not_handed_over(string mode)
    {
        var abi = NativeAbi;
        Assert.That(Verdict(mode, abi, abi.Sendto, 3, 0x1000, 64, 0, 0), Is.EqualTo(Allow), "send()");
        Assert.That(Verdict(mode, abi, abi.Sendto, 3, 0x1000, 64, MsgDontwait, 0), Is.EqualTo(Allow), "send(MSG_DONTWAIT)");
    }

    [TestCaseSource(nameof(WatchedModesAndAbis))]
    public void Every_network_call_of_another_ABI_is_handed_over(string mode, Abi abi)
    {
        if (abi.Native)
        {
            Assert.That(Verdict(mode, abi, abi.Sendto, 3, 0x1000, 64, 0, 0), Is.EqualTo(Allow), "native send()");
            return;
        }
        // The host cannot read 32-bit layouts: it answers ENOSYS.  A send
        // without an address too, and MSG_FASTOPEN under --allow.
        Assert.That(Verdict(mode, abi, abi.Sendto, 3, 0x1000, 64, 0, 0), Is.EqualTo(Notify), "send()");
        Assert.That(Verdict(mode, abi, abi.Sendto, 3, 0x1000, 64, MsgFastopen, 0x2000), Is.EqualTo(Notify), "sendto(MSG_FASTOPEN)");
        if (abi.Send != 0)
            Assert.That(Verdict(mode, abi, abi.Send, 3, 0x1000, 64, 0), Is.EqualTo(Notify), "send");
    }

    [Test]
    public void Under_report_MSG_FASTOPEN_is_handed_over_like_any_send()
    {
        var abi = NativeAbi;
        Assert.That(Verdict("report", abi, abi.Sendto, 3, 0x1000, 64, MsgFastopen, 0x2000), Is.EqualTo(Notify));
        Assert.That(Verdict("report", abi, abi.Sendmsg[0], 3, 0x1000, MsgFastopen), Is.EqualTo(Notify));
        Assert.That(Verdict("report", abi, abi.Sendmmsg[0], 3, 0x1000, 1, MsgFastopen), Is.EqualTo(Notify));
    }

    [Test]
    public void Under_allow_MSG_FASTOPEN_is_refused_on_every_native_send()
    {
        var abi = NativeAbi;
        foreach (ulong flags in new[] { MsgFastopen, MsgFastopen | MsgDontwait, 0xffffffff_00000000 | MsgFastopen })
        {
            Assert.That(Verdict("allow", abi, abi.Sendto, 3, 0x1000, 64, flags, 0x2000), Is.EqualTo(Refuse(EOPNOTSUPP)), $"sendto 0x{flags:x}");
            Assert.That(Verdict("allow", abi, abi.Sendto, 3, 0x1000, 64, flags, 0), Is.EqualTo(Refuse(EOPNOTSUPP)), $"sendto NULL 0x{flags:x}");
            Assert.That(Verdict("allow", abi, abi.Sendmsg[0], 3, 0x1000, flags), Is.EqualTo(Refuse(EOPNOTSUPP)), $"sendmsg 0x{flags:x}");
            Assert.That(Verdict("allow", abi, abi.Sendmmsg[0], 3, 0x1000, 2, flags), Is.EqualTo(Refuse(EOPNOTSUPP)), $"sendmmsg 0x{flags:x}");
        }
        // sendmmsg's third argument is the count, not flags.
        Assert.That(Verdict("allow", abi, abi.Sendmmsg[0], 3, 0x1000, MsgFastopen, 0), Is.EqualTo(Notify));
        Assert.That(Verdict("allow", abi, abi.Sendto, 3, 0x1000, 64, MsgDontwait, 0), Is.EqualTo(Allow), "send(MSG_DONTWAIT)");
    }

    [TestCaseSource(nameof(Modes))]
    public void An_architecture_the_kernel_cannot_run_here_is_killed_not_let_through(string mode)
    {
        foreach (uint arch in new uint[] { AuditX86_64, AuditI386, AuditAarch64, AuditArm, 0, 0x12345678 }.Where(a => Abis.All(abi => abi.Arch != a)))
            Assert.That(Program(mode).Run(new SeccompData(arch, 1)), Is.EqualTo(KillProcess), $"arch 0x{arch:x}");
    }

    [TestCaseSource(nameof(Modes))]
    public void On_x86_64_the_x32_only_numbers_without_the_x32_bit_fail(string mode)
    {
        if (NativeAbi != X86_64)
        {
            Assert.That(Verdict(mode, NativeAbi, 514, 0, Tiocsti), Is.EqualTo(Allow), "arm64's 514 is an ordinary call");
            return;
        }
        // Kernels before 5.4 let a 64-bit program call x32's compat ioctl (514) and sendmsg.
        foreach (uint nr in new uint[] { 512, 514, 518, 538, 547 })
            Assert.That(Verdict(mode, X86_64, nr, 0, Tiocsti), Is.EqualTo(Refuse(ENOSYS)), $"call {nr}");
        Assert.That(Verdict(mode, X86_64, 511, 0, Tiocsti), Is.EqualTo(Allow));
        Assert.That(Verdict(mode, X86_64, 548, 0, Tiocsti), Is.EqualTo(Allow));
    }

    [Test]
    public void The_interpreter_refuses_what_the_kernel_refuses()
    {
        byte[] Insn(ushort code, byte jt, byte jf, uint k)
        {
            var b = new byte[8];
            BitConverter.GetBytes(code).CopyTo(b, 0);
            b[2] = jt;
            b[3] = jf;
            BitConverter.GetBytes(k).CopyTo(b, 4);
            return b;
        }
        byte[] ret = Insn(0x06, 0, 0, Allow);
        Assert.Throws<FormatException>(() => ClassicBpf.Load([]));
        Assert.Throws<FormatException>(() => ClassicBpf.Load(Insn(0x20, 0, 0, 0)), "no return at the end");
        Assert.Throws<FormatException>(() => ClassicBpf.Load([.. Insn(0x20, 0, 0, 2), .. ret]), "unaligned load");
        Assert.Throws<FormatException>(() => ClassicBpf.Load([.. Insn(0x20, 0, 0, 64), .. ret]), "load past seccomp_data");
        Assert.Throws<FormatException>(() => ClassicBpf.Load([.. Insn(0x15, 1, 0, 0), .. ret]), "jump past the end");
        var ok = ClassicBpf.Load([.. Insn(0x20, 0, 0, 4), .. Insn(0x15, 1, 0, 7), .. ret, .. Insn(0x16, 0, 0, 0)]);
        Assert.That(ok.Run(new SeccompData(7, 0)), Is.EqualTo(7u), "RET A after a taken jump");
        Assert.That(ok.Run(new SeccompData(8, 0)), Is.EqualTo(Allow));
    }

    [Test]
    public void A_mode_the_launcher_does_not_know_is_refused()
    {
        string launcher = Path.Combine(EndToEnd.Harness.RepositoryRoot, "build", "nonet-launcher");
        var psi = new ProcessStartInfo(launcher, ["--print-filter", "everything"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        Assert.That(process.WaitForExit(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(process.ExitCode, Is.EqualTo(125));
        Assert.That(process.StandardOutput.ReadToEnd(), Is.Empty);
    }
}
