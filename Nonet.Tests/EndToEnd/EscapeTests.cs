using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Nonet.Tests.Unit;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// Ways out of the network namespace that nonet's seccomp filter closes on
/// every run (issue 19, launcher/filter.c): AF_VSOCK, which no network
/// namespace confines, and TIOCSTI, which types into the caller's shell.
/// And the filter as the kernel runs it agrees with the interpreter that
/// checks its verdicts for the architectures this kernel cannot run
/// (Unit/SeccompFilterTests).
/// </summary>
public sealed class EscapeTests(Identity identity) : EndToEndTest(identity)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(45);

    private RunResult Python3(string dir, string script, params string[] args)
    {
        string path = Path.Combine(dir, "driver.py");
        File.WriteAllText(path, script);
        File.SetUnixFileMode(path, (UnixFileMode)0b110_100_100);
        return Harness.Run(Who, Python, [path, .. args], new Dictionary<string, string?> { ["NONET"] = Harness.Nonet },
            workingDirectory: dir, timeout: Timeout);
    }

    private const string VsockDriver = """
        import errno, os, random, socket, subprocess, sys
        inside = r'''
        import errno, socket, sys
        port = int(sys.argv[1])
        for kind, name in ((socket.SOCK_STREAM, "stream"), (socket.SOCK_DGRAM, "dgram"), (socket.SOCK_SEQPACKET, "seqpacket")):
            try:
                s = socket.socket(socket.AF_VSOCK, kind)
            except OSError as e:
                print(name, "socket", errno.errorcode[e.errno])
                continue
            try:
                s.bind((socket.VMADDR_CID_ANY, port))
                print(name, "bind ok")
            except OSError as e:
                print(name, "bind", errno.errorcode[e.errno])
        try:
            socket.socketpair(socket.AF_VSOCK)
            print("socketpair ok")
        except OSError as e:
            print("socketpair", errno.errorcode[e.errno])
        '''
        # A port bound outside: without the filter, it is "in use" inside too.
        outside = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        for _ in range(50):
            port = random.randrange(20000, 60000)
            try:
                outside.bind((socket.VMADDR_CID_ANY, port))
                break
            except OSError:
                continue
        outside.listen()
        print("outside bound", port, flush=True)
        r = subprocess.run([os.environ["NONET"], sys.executable, "-c", inside, str(port)],
                           capture_output=True, text=True, timeout=30)
        sys.stdout.write(r.stdout)
        sys.stdout.write("exit %d\n" % r.returncode)
        sys.stderr.write(r.stderr)
        """;

    [Test]
    public void A_vsock_socket_cannot_be_made_inside()
    {
        // This machine's kind (a Firecracker VM, as CI's) has vsock; no
        // connection is made, only a port bound outside and one tried inside.
        string dir = Harness.TempDirectory(Who);
        var r = Python3(dir, VsockDriver);
        Assert.That(r.Stdout, Does.StartWith("outside bound "),
            "AF_VSOCK must work outside for this test (modprobe vsock_loopback): " + r);
        foreach (var kind in new[] { "stream", "dgram", "seqpacket" })
            Assert.That(r.Stdout, Does.Contain($"\n{kind} socket EAFNOSUPPORT\n"), r.ToString());
        Assert.That(r.Stdout, Does.Contain("\nsocketpair EAFNOSUPPORT\n"), r.ToString());
        Assert.That(r.Stdout, Does.Not.Contain("bind"), r.ToString());
        Assert.That(r.Stdout, Does.EndWith("exit 0\n"), r.ToString());
    }

    [Test]
    public void A_vsock_socket_cannot_be_made_inside_under_report_either()
    {
        string dir = Harness.TempDirectory(Who);
        var r = Python3(dir, VsockDriver.Replace("[os.environ[\"NONET\"], ", "[os.environ[\"NONET\"], \"--report\", "));
        Assert.That(r.Stdout, Does.StartWith("outside bound "), r.ToString());
        Assert.That(r.Stdout, Does.Contain("\nstream socket EAFNOSUPPORT\n"), r.ToString());
        Assert.That(r.Stdout, Does.EndWith("exit 0\n"), r.ToString());
    }

    // io_uring's operations do not pass through seccomp: IORING_OP_SOCKET
    // (Linux 5.19) makes a socket of any family, vsock included.
    private const string UringDriver = """
        import ctypes, errno, mmap, os, struct, subprocess, sys
        probe = r'''
        import ctypes, errno, mmap, struct, sys
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        params = ctypes.create_string_buffer(120)
        fd = libc.syscall(425, 4, params)  # io_uring_setup
        if fd < 0:
            print("io_uring_setup", errno.errorcode[ctypes.get_errno()])
            sys.exit(0)
        sq_entries, cq_entries = struct.unpack_from("<II", params, 0)
        sq_off = struct.unpack_from("<7I", params, 40)  # head tail mask entries flags dropped array
        cq_off = struct.unpack_from("<6I", params, 80)  # head tail mask entries overflow cqes
        rw = mmap.PROT_READ | mmap.PROT_WRITE
        sq = mmap.mmap(fd, sq_off[6] + 4 * sq_entries, mmap.MAP_SHARED, rw, offset=0)
        cq = mmap.mmap(fd, cq_off[5] + 16 * cq_entries, mmap.MAP_SHARED, rw, offset=0x8000000)
        sqes = mmap.mmap(fd, 64 * sq_entries, mmap.MAP_SHARED, rw, offset=0x10000000)
        # IORING_OP_SOCKET (45): fd = family (AF_VSOCK), off = type (SOCK_STREAM), len = protocol
        sqes[0:64] = struct.pack("<BBHiQQII", 45, 0, 0, 40, 1, 0, 0, 0).ljust(64, b"\0")
        tail = struct.unpack_from("<I", sq, sq_off[1])[0]
        struct.pack_into("<I", sq, sq_off[6] + 4 * (tail & sq_off[2]), 0)
        struct.pack_into("<I", sq, sq_off[1], tail + 1)
        if libc.syscall(426, fd, 1, 1, 1, None, 0) < 0:  # io_uring_enter, GETEVENTS
            print("io_uring_enter", errno.errorcode[ctypes.get_errno()])
            sys.exit(0)
        head = struct.unpack_from("<I", cq, cq_off[0])[0]
        res = struct.unpack_from("<QiI", cq, cq_off[5] + 16 * (head & cq_off[2]))[1]
        print("IORING_OP_SOCKET", "made a vsock socket" if res >= 0 else errno.errorcode.get(-res, str(-res)))
        '''
        outside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
        print("outside:", outside.stdout.strip(), outside.stderr.strip())
        for extra in ([], ["--report"]):
            r = subprocess.run([os.environ["NONET"], *extra, sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
            print("inside%s: %s %s" % ("".join(" " + e for e in extra), r.stdout.strip(), "exit %d" % r.returncode))
        """;

    [Test]
    public void io_uring_cannot_make_a_vsock_socket_inside()
    {
        string dir = Harness.TempDirectory(Who);
        var r = Python3(dir, UringDriver);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        // Outside, where io_uring is allowed (kernel.io_uring_disabled=0), it does.
        if (File.ReadAllText("/proc/sys/kernel/io_uring_disabled").Trim() == "0")
            Assert.That(r.Stdout, Does.Contain("outside: IORING_OP_SOCKET made a vsock socket"), r.ToString());
        Assert.That(r.Stdout, Does.Contain("\ninside: io_uring_setup ENOSYS exit 0\n"), r.ToString());
        Assert.That(r.Stdout, Does.Contain("\ninside --report: io_uring_setup ENOSYS exit 0\n"), r.ToString());
    }

    // The attack of issue 19: the command pushes a line into the terminal's
    // input queue; the caller's interactive shell reads it once nonet has
    // exited and runs it outside.  Here the line would create a file.
    private const string TerminalDriver = """
        import os, pty, select, sys, time
        mode, marker = sys.argv[1], sys.argv[2]
        inject = os.path.join(os.getcwd(), "inject.py")
        with open(inject, "w") as f:
            f.write(r'''
        import errno, fcntl, sys
        line = "touch " + sys.argv[1] + "\n"
        try:
            for c in line:
                fcntl.ioctl(0, 0x5412, c.encode())  # TIOCSTI
            print("TIOCSTI ok")
        except OSError as e:
            print("TIOCSTI " + errno.errorcode[e.errno])
        try:
            fcntl.ioctl(0, 0x541c, b"\x0c\0\0\0")  # TIOCLINUX, TIOCL_GETFGCONSOLE
            print("TIOCLINUX ok")
        except OSError as e:
            print("TIOCLINUX " + errno.errorcode[e.errno])
        ''')
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["PS1"] = "$ "
            os.execvp("sh", ["sh", "-i"])
        screen = b""
        def wait_for(token, seconds=30):
            global screen
            end = time.monotonic() + seconds
            while token not in screen:
                left = end - time.monotonic()
                if left <= 0:
                    sys.exit("timed out waiting for %r; the screen: %r" % (token, screen))
                if select.select([fd], [], [], left)[0]:
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        sys.exit("the shell ended; the screen: %r" % screen)
                    screen += chunk
        prefix = '"$NONET" ' if mode == "nonet" else ""
        # The quotes keep the typed line (echoed) from matching the output.
        os.write(fd, (prefix + "python3 " + inject + " " + marker + "; echo ex''it=$?\n").encode())
        wait_for(b"exit=")
        # The shell now reads whatever was typed for it, then this line.
        os.write(fd, b"echo fin''ished\n")
        wait_for(b"finished")
        os.write(fd, b"exit\n")
        os.waitpid(pid, 0)
        sys.stdout.write(screen.decode(errors="replace").replace("\r", ""))
        print("\nmarker", "made" if os.path.exists(marker) else "absent")
        """;

    [Test]
    public void TIOCSTI_cannot_type_into_the_callers_shell()
    {
        string dir = Harness.TempDirectory(Who);
        string marker = Path.Combine(dir, "ran-outside");
        var r = Python3(dir, TerminalDriver, "nonet", marker);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Contain("TIOCSTI EPERM\n"), r.ToString());
        Assert.That(r.Stdout, Does.Contain("TIOCLINUX EPERM\n"), r.ToString());
        Assert.That(r.Stdout, Does.Contain("\nexit=0\n"), r.ToString());
        Assert.That(r.Stdout, Does.EndWith("\nmarker absent\n"), r.ToString());
        Assert.That(File.Exists(marker), Is.False);
    }

    [Test]
    public void The_same_TIOCSTI_outside_nonet_reaches_the_shell_where_the_kernel_allows_it()
    {
        // The control for the test above: this is what nonet prevents.
        // dev.tty.legacy_tiocsti=0 (Linux 6.2 and later) refuses it anyway.
        string setting = "/proc/sys/dev/tty/legacy_tiocsti";
        bool legacy = !File.Exists(setting) || File.ReadAllText(setting).Trim() == "1";
        string dir = Harness.TempDirectory(Who);
        string marker = Path.Combine(dir, "ran-outside");
        var r = Python3(dir, TerminalDriver, "plain", marker);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        if (legacy)
        {
            Assert.That(r.Stdout, Does.Contain("TIOCSTI ok\n"), r.ToString());
            Assert.That(r.Stdout, Does.EndWith("\nmarker made\n"), r.ToString());
        }
        else
        {
            Assert.That(r.Stdout, Does.Contain("TIOCSTI EPERM\n"), r.ToString());
        }
        // A pty is no virtual console: TIOCLINUX fails there on its own, and not with EPERM.
        Assert.That(r.Stdout, Does.Contain("TIOCLINUX ENOTTY\n").Or.Contain("TIOCLINUX EINVAL\n"), r.ToString());
    }

    /// <summary>A native call made inside nonet, and the kernel's own
    /// answer to it without nonet's filter (0: success).</summary>
    private sealed record Probe(string Name, Func<SeccompFilterTests.Abi, SeccompData> Call, string Python, string Unfiltered);

    private static readonly Probe[] Probes =
    [
        new("socket(AF_VSOCK)", a => new(a.Arch, a.Socket, 40, 1), "sys(N.socket, 40, 1, 0)", "0"),
        new("socket(AF_INET)", a => new(a.Arch, a.Socket, 2, 1), "sys(N.socket, 2, 1, 0)", "0"),
        new("socket(AF_NETLINK)", a => new(a.Arch, a.Socket, 16, 3), "sys(N.socket, 16, 3, 0)", "0"),
        new("socket(AF_INET, upper half set)", a => new(a.Arch, a.Socket, 0x1_00000002, 1), "sys(N.socket, 0x100000002, 1, 0)", "0"),
        new("socket(AF_VSOCK, upper half set)", a => new(a.Arch, a.Socket, 0x1_00000028, 1), "sys(N.socket, 0x100000028, 1, 0)", "0"),
        new("socketpair(AF_UNIX)", a => new(a.Arch, a.Socketpair, 1, 1), "sys(N.socketpair, 1, 1, 0, pair)", "0"),
        new("socketpair(AF_VSOCK)", a => new(a.Arch, a.Socketpair, 40, 1), "sys(N.socketpair, 40, 1, 0, pair)", "EOPNOTSUPP"),
        new("ioctl(TIOCSTI)", a => new(a.Arch, a.Ioctl[0], 3, 0x5412), "sys(N.ioctl, null, 0x5412, buf)", "ENOTTY"),
        new("ioctl(TIOCLINUX)", a => new(a.Arch, a.Ioctl[0], 3, 0x541c), "sys(N.ioctl, null, 0x541c, buf)", "ENOTTY"),
        new("ioctl(TIOCSTI, upper half set)", a => new(a.Arch, a.Ioctl[0], 3, 0xffffffff_00005412), "sys(N.ioctl, null, 0xffffffff00005412, buf)", "ENOTTY"),
        new("ioctl(TIOCSPGRP)", a => new(a.Arch, a.Ioctl[0], 3, 0x5410), "sys(N.ioctl, null, 0x5410, buf)", "ENOTTY"),
        new("io_uring_setup(1, NULL)", a => new(a.Arch, a.IoUringSetup, 1, 0), "sys(N.io_uring_setup, 1, 0)", "EFAULT"),
        new("sendto(-1, NULL address)", a => new(a.Arch, a.Sendto, 0xffffffff, 0, 0, 0, 0), "sys(N.sendto, -1, 0, 0, 0, 0, 0)", "EBADF"),
    ];

    private static string ProbeScript(SeccompFilterTests.Abi abi) => $$"""
        import ctypes, errno, os
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        class N:
            socket, socketpair, ioctl, io_uring_setup, sendto = {{abi.Socket}}, {{abi.Socketpair}}, {{abi.Ioctl[0]}}, {{abi.IoUringSetup}}, {{abi.Sendto}}
        null = os.open("/dev/null", os.O_RDWR)
        pair = (ctypes.c_int * 2)()
        buf = ctypes.create_string_buffer(8)
        def sys(nr, *args):
            rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
            return "0" if rc >= 0 else errno.errorcode[ctypes.get_errno()]
        {{string.Join("\n", Probes.Select(p => $"print(\"{p.Name}\", {p.Python}, sep='\\t')"))}}
        """;

    [TestCase("base")]
    [TestCase("report")]
    public void The_kernel_gives_the_verdicts_the_interpreter_reads_in_the_filter(string mode)
    {
        var abi = SeccompFilterTests.NativeAbi;
        var program = SeccompFilterTests.Program(mode);
        string dir = Harness.TempDirectory(Who);
        string script = Path.Combine(dir, "probe.py");
        File.WriteAllText(script, ProbeScript(abi));
        File.SetUnixFileMode(script, (UnixFileMode)0b110_100_100);
        string[] args = mode == "report" ? ["--report", Python, script] : [Python, script];
        var r = Harness.Run(Who, Harness.Nonet, args, workingDirectory: dir, timeout: Timeout);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var seen = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToDictionary(f => f[0], f => f[1]);
        int refused = 0;
        foreach (var probe in Probes)
        {
            uint verdict = program.Run(probe.Call(abi));
            string expected = (verdict & 0xffff0000) == 0x00050000
                ? ErrnoName((int)(verdict & 0xffff))
                : probe.Unfiltered;
            if (expected != probe.Unfiltered)
                refused++;
            Assert.That(seen.GetValueOrDefault(probe.Name), Is.EqualTo(expected), $"{probe.Name}: verdict 0x{verdict:x8}\n{r}");
        }
        // The filter's own answers are among them: vsock, TIOCSTI, ...
        Assert.That(refused, Is.GreaterThanOrEqualTo(mode == "report" ? 6 : 5));
    }

    [Test]
    public void Without_its_filter_the_command_does_not_start()
    {
        // nonet started under a filter of the test's that refuses seccomp(2)
        // itself (with no_new_privs, as an ordinary user must): the launcher
        // cannot install its filter, and the command must not run unfiltered.
        uint seccompNr = SeccompFilterTests.NativeAbi == SeccompFilterTests.Arm64 ? 277u : 317u;
        string dir = Harness.TempDirectory(Who);
        var r = Python3(dir, $$"""
            import ctypes, os, struct, sys
            libc = ctypes.CDLL(None, use_errno=True)
            insns = [(0x20, 0, 0, 0), (0x15, 0, 1, {{seccompNr}}), (0x06, 0, 0, 0x00050001), (0x06, 0, 0, 0x7fff0000)]
            code = b"".join(struct.pack("<HBBI", *i) for i in insns)
            buf = ctypes.create_string_buffer(code, len(code))
            class Prog(ctypes.Structure):
                _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
            prog = Prog(len(insns), ctypes.addressof(buf))
            if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:
                sys.exit("prctl: errno %d" % ctypes.get_errno())
            os.execv(os.environ["NONET"], [os.environ["NONET"], "sh", "-c", "echo the command ran"])
            """);
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stdout, Is.Empty, r.ToString());
        Assert.That(r.Stderr, Is.EqualTo("nonet: cannot install nonet's seccomp filter: Operation not permitted; seccomp filters "
            + "(CONFIG_SECCOMP_FILTER) are needed; check that no security module or container runtime refuses seccomp(2)\n"), r.ToString());
    }

    private static string ErrnoName(int errno) => errno switch
    {
        1 => "EPERM",
        38 => "ENOSYS",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        _ => errno.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
