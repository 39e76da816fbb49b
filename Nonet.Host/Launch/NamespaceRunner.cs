using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;
using Nonet.Forwarding;
using Nonet.Interop;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.Launch;

/// <summary>What to run: the launcher, the resolved command, its argv (raw
/// bytes, argv[0] first), optionally an fd to become its stdout, and the
/// port forwarding prepared for it.</summary>
internal sealed record LaunchRequest(string LauncherPath, byte[] CommandPath, IReadOnlyList<byte[]> Argv, int StdoutFd = -1, PortForwarder? Forwarder = null);

/// <summary>How a launch went: every status record, the failure if the
/// command never started, and the exit status nonet should end with.</summary>
internal sealed record LaunchResult(IReadOnlyList<StatusRecord> Records, LaunchFailure? Failure, int ExitStatus);

/// <summary>
/// The only code that starts processes, writes /proc/PID/*_map and waits:
/// it runs the launcher and plays the host's part of the protocol in
/// launcher/status.h.  Everything it decides is in pure classes around it.
/// </summary>
internal static unsafe class NamespaceRunner
{
    public static LaunchResult Run(LaunchRequest request)
    {
        int* status = stackalloc int[2];
        int* go = stackalloc int[2];
        if (pipe2(status, O_CLOEXEC) != 0)
            throw new SystemCallException("pipe2", errno);
        if (pipe2(go, O_CLOEXEC) != 0)
        {
            int e = errno;
            close(status[0]);
            close(status[1]);
            throw new SystemCallException("pipe2", e);
        }

        Leftovers.BecomeSubreaper();
        int spawnError = Spawn(request, status[1], go[0], out int launcher);
        close(status[1]);
        close(go[0]);
        request.Forwarder?.LauncherStarted();
        int goFd = go[1];
        if (spawnError != 0)
        {
            close(status[0]);
            close(goFd);
            return new LaunchResult([], new LaunchFailure(Step.SpawnLauncher, spawnError, request.LauncherPath), ExitCodes.NonetFailed);
        }

        var records = new List<StatusRecord>();
        LaunchFailure? failure = null;
        try
        {
            while (ReadRecord(status[0]) is { } record)
            {
                records.Add(record);
                if (!record.Succeeded)
                {
                    failure ??= new LaunchFailure(ToStep(record.Step), record.Errno, record.Step == LauncherStep.Listen
                        ? record.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)
                        : CommandResolver.Show(request.Argv[0]));
                }
                else if (record.Step == LauncherStep.Listen && failure is null)
                {
                    // The child sent its listeners just before this record.
                    // It waits for the host's word before it goes on.
                    int e = request.Forwarder?.ReceiveListeners() ?? EIO;
                    if (e != 0)
                    {
                        failure = new LaunchFailure(Step.ReceiveListeners, e);
                        kill(launcher, SIGKILL); // the child dies with it
                    }
                }
                else if (record.Step == LauncherStep.Clone && failure is null)
                {
                    // The child waits in its new user namespace; the host, in
                    // the caller's namespace, maps the caller's ids into it.
                    failure = WriteIdMaps(record.Value);
                    if (failure is null)
                        Release(goFd);
                    close(goFd);
                    goFd = -1;
                }
            }
        }
        finally
        {
            if (goFd >= 0)
                close(goFd);
            close(status[0]);
        }

        if (failure is null && (records.Count == 0 || records[^1] != new StatusRecord(LauncherStep.Exec, 0, 0)))
            failure = new LaunchFailure(Step.LauncherEnded, 0);
        if (failure is not null)
        {
            int code = WaitForExit(launcher);
            if (failure.Step == Step.LauncherEnded)
                failure = failure with { Subject = $" (launcher exit status {code})" };
            return new LaunchResult(records, failure, code);
        }
        int exitStatus = request.Forwarder is { } forwarder
            ? SuperviseWithForwarding(launcher, forwarder)
            : ForwardSignalsUntilExit(launcher);
        return new LaunchResult(records, null, exitStatus);
    }

    private static Step ToStep(LauncherStep step) => step switch
    {
        LauncherStep.Start => Step.LauncherStart,
        LauncherStep.Clone => Step.Clone,
        LauncherStep.WaitMaps => Step.WaitMaps,
        LauncherStep.UnshareNet => Step.UnshareNet,
        LauncherStep.LoopbackUp => Step.LoopbackUp,
        LauncherStep.DropCaps => Step.DropCaps,
        LauncherStep.Listen => Step.Listen,
        LauncherStep.Helper => Step.Helper,
        _ => Step.Exec,
    };

    private static int Spawn(LaunchRequest request, int statusFd, int goFd, out int pid)
    {
        var argv = new List<byte[]> { Encoding.UTF8.GetBytes(request.LauncherPath) };
        if (request.Forwarder is { } forwarder)
            argv.AddRange(forwarder.LauncherArguments());
        argv.AddRange(new List<byte[]>
        {
            Encoding.ASCII.GetBytes(statusFd.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            Encoding.ASCII.GetBytes(goFd.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            request.CommandPath,
        });
        argv.AddRange(request.Argv);

        using var nativeArgv = new NativeStringArray(argv);
        byte* attr = stackalloc byte[Libc.SpawnAttrSize];
        byte* actions = stackalloc byte[Libc.FileActionsSize];
        Libc.posix_spawnattr_init(attr);
        Libc.posix_spawn_file_actions_init(actions);
        try
        {
            // The launcher starts with the signal mask nonet was given, and
            // SIGPIPE back at its default (the .NET runtime ignores it).
            sigset_t mask = SignalForwarding.OriginalMask;
            sigset_t defaults;
            sigemptyset(&defaults);
            sigaddset(&defaults, SIGPIPE);
            Libc.posix_spawnattr_setsigmask(attr, &mask);
            Libc.posix_spawnattr_setsigdefault(attr, &defaults);
            Libc.posix_spawnattr_setflags(attr, Libc.POSIX_SPAWN_SETSIGMASK | Libc.POSIX_SPAWN_SETSIGDEF);
            // dup2 onto itself clears close-on-exec in the launcher only:
            // these two pipe ends reach it and nothing else does.
            Libc.posix_spawn_file_actions_adddup2(actions, statusFd, statusFd);
            Libc.posix_spawn_file_actions_adddup2(actions, goFd, goFd);
            if (request.Forwarder is { } f)
                Libc.posix_spawn_file_actions_adddup2(actions, f.LauncherEnd, f.LauncherEnd);
            if (request.StdoutFd >= 0)
                Libc.posix_spawn_file_actions_adddup2(actions, request.StdoutFd, 1);
            int p;
            int rc = Libc.posix_spawn(&p, nativeArgv[0], actions, attr, nativeArgv.Pointer, Libc.Environ);
            pid = p;
            return rc;
        }
        finally
        {
            Libc.posix_spawn_file_actions_destroy(actions);
            Libc.posix_spawnattr_destroy(attr);
        }
    }

    private static StatusRecord? ReadRecord(int fd)
    {
        byte* buffer = stackalloc byte[StatusProtocol.RecordSize];
        int got = 0;
        while (got < StatusProtocol.RecordSize)
        {
            nint n = (nint)read(fd, buffer + got, (size_t)(StatusProtocol.RecordSize - got));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                throw new SystemCallException("read status pipe", errno);
            if (n == 0)
            {
                if (got == 0)
                    return null;
                throw new NonetException(ExitCodes.NonetFailed, "internal error: truncated record from the launcher");
            }
            got += (int)n;
        }
        try
        {
            return StatusProtocol.Decode(new ReadOnlySpan<byte>(buffer, StatusProtocol.RecordSize));
        }
        catch (FormatException e)
        {
            throw new NonetException(ExitCodes.NonetFailed, "internal error: " + e.Message);
        }
    }

    /// <summary>Identity maps for the caller's effective ids, setgroups denied
    /// first as the kernel requires of an unprivileged writer (see
    /// user_namespaces(7) and CVE-2014-8989).</summary>
    private static LaunchFailure? WriteIdMaps(int child)
    {
        uint uid = geteuid();
        uint gid = getegid();
        string proc = $"/proc/{child}/";
        int e = WriteProcFile(proc + "setgroups", "deny");
        if (e != 0 && e != ENOENT) // ENOENT: a kernel older than 3.19 has no such file
            return new LaunchFailure(Step.WriteSetgroups, e, proc + "setgroups");
        e = WriteProcFile(proc + "uid_map", $"{uid} {uid} 1\n");
        if (e != 0)
            return new LaunchFailure(Step.WriteUidMap, e, proc + "uid_map");
        e = WriteProcFile(proc + "gid_map", $"{gid} {gid} 1\n");
        if (e != 0)
            return new LaunchFailure(Step.WriteGidMap, e, proc + "gid_map");
        return null;
    }

    /// <summary>One open and one write(): procfs map files take exactly one.</summary>
    private static int WriteProcFile(string path, string content)
    {
        byte[] name = Encoding.UTF8.GetBytes(path + "\0");
        byte[] data = Encoding.ASCII.GetBytes(content);
        fixed (byte* n = name)
        fixed (byte* d = data)
        {
            int fd = open(n, O_WRONLY | O_CLOEXEC, 0);
            if (fd < 0)
                return errno;
            nint written = (nint)write(fd, d, (size_t)data.Length);
            int e = written < 0 ? errno : written != data.Length ? EIO : 0;
            close(fd);
            return e;
        }
    }

    private static void Release(int goFd)
    {
        byte go = 1;
        nint n;
        do
            n = (nint)write(goFd, &go, 1);
        while (n < 0 && errno == EINTR);
    }

    private static int WaitForExit(int pid)
    {
        int st;
        while (Libc.waitpid(pid, &st, 0) < 0)
        {
            if (Libc.Errno != EINTR)
                throw new SystemCallException("waitpid", Libc.Errno);
        }
        return ExitStatusOf(st);
    }

    /// <summary>The launcher already turns "killed by signal N" into 128+N.</summary>
    public static int ExitStatusOf(int waitStatus)
    {
        int signal = waitStatus & 0x7f;
        return signal == 0 ? (waitStatus >> 8) & 0xff : ExitCodes.SignalBase + signal;
    }

    /// <summary>
    /// While the command runs: pass each signal someone sent to nonet on to
    /// the launcher (which passes it to the command), until the launcher
    /// exits.  Signals from the terminal or kernel (si_code &gt; 0) already
    /// reached the command through its process group and are not doubled.
    /// </summary>
    private static int ForwardSignalsUntilExit(int launcher)
    {
        sigset_t held = SignalForwarding.Held;
        int sfd = Libc.signalfd(-1, &held, Libc.SFD_CLOEXEC);
        if (sfd < 0)
            throw new SystemCallException("signalfd", Libc.Errno);
        try
        {
            byte* info = stackalloc byte[128]; // struct signalfd_siginfo
            while (true)
            {
                int st;
                int r = Libc.waitpid(launcher, &st, JobControl.WaitFlags);
                if (r == launcher && JobControl.Follow(st, launcher))
                    continue;
                if (r == launcher)
                {
                    Leftovers.LauncherEnded(st);
                    return ExitStatusOf(st);
                }
                if (r < 0 && Libc.Errno != EINTR)
                    throw new SystemCallException("waitpid", Libc.Errno);

                nint n = (nint)read(sfd, info, 128);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n != 128)
                    throw new SystemCallException("read signalfd", n < 0 ? errno : EIO);
                PassOn(info, launcher);
            }
        }
        finally
        {
            close(sfd);
        }
    }

    /// <summary>One signal nonet received (a struct signalfd_siginfo): a
    /// user's signal goes on to the launcher, and from it to the command;
    /// SIGCONT, whoever sent it, continues them (see <see cref="JobControl"/>).</summary>
    private static void PassOn(byte* info, int launcher)
    {
        int signo = *(int*)info;
        int code = *(int*)(info + 8);
        if (signo == SIGCONT)
            JobControl.Continue(launcher);
        else if (signo != SIGCHLD && code <= 0)
            kill(launcher, signo);
    }

    /// <summary>After the command exits, how long nonet keeps relaying what it
    /// sent before the end (a server's last reply, say).</summary>
    private const int DrainMilliseconds = 1000;

    /// <summary>
    /// <see cref="ForwardSignalsUntilExit"/> with port forwarding: one epoll
    /// loop serves the signals and every listener and connection.  When the
    /// launcher exits, listeners close at once; data the command already
    /// sent is still passed on, for at most <see cref="DrainMilliseconds"/>.
    /// </summary>
    private static int SuperviseWithForwarding(int launcher, PortForwarder forwarder)
    {
        sigset_t held = SignalForwarding.Held;
        int sfd = Libc.signalfd(-1, &held, Libc.SFD_CLOEXEC | Libc.SFD_NONBLOCK);
        if (sfd < 0)
            throw new SystemCallException("signalfd", Libc.Errno);
        using var loop = new EventLoop();
        try
        {
            loop.Add(sfd, Sockets.EPOLLIN, new SignalReader(sfd, launcher));
            forwarder.Attach(loop);
            int status;
            while (true)
            {
                int st;
                int r = Libc.waitpid(launcher, &st, JobControl.WaitFlags);
                if (r == launcher && JobControl.Follow(st, launcher))
                    continue;
                if (r == launcher)
                {
                    status = ExitStatusOf(st);
                    Leftovers.LauncherEnded(st);
                    // Its pid is free for reuse: nothing more is sent to it.
                    loop.Remove(sfd);
                    break;
                }
                if (r < 0 && Libc.Errno != EINTR)
                    throw new SystemCallException("waitpid", Libc.Errno);
                loop.RunOnce(forwarder.AcceptStalled ? 100 : -1);
                forwarder.RetryAccepting();
            }

            forwarder.StopAccepting();
            long deadline = Environment.TickCount64 + DrainMilliseconds;
            while (forwarder.InsideSending)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                    break;
                loop.RunOnce((int)left);
            }
            return status;
        }
        finally
        {
            forwarder.Dispose();
            close(sfd);
        }
    }

    private sealed class SignalReader(int sfd, int launcher) : IReadyHandler
    {
        public void OnReady(int fd, uint events)
        {
            byte* info = stackalloc byte[128]; // struct signalfd_siginfo
            while (true)
            {
                nint n = (nint)read(sfd, info, 128);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n != 128)
                    return; // EAGAIN: all read
                PassOn(info, launcher);
            }
        }
    }
}

/// <summary>A NULL-terminated array of NUL-terminated byte strings in native
/// memory, for execve-style argv.</summary>
internal sealed unsafe class NativeStringArray : IDisposable
{
    private readonly byte** array;
    private readonly int count;

    public NativeStringArray(IReadOnlyList<byte[]> strings)
    {
        count = strings.Count;
        array = (byte**)NativeMemory.AllocZeroed((nuint)(count + 1), (nuint)sizeof(byte*));
        for (int i = 0; i < count; i++)
        {
            byte* s = (byte*)NativeMemory.Alloc((nuint)strings[i].Length + 1);
            strings[i].AsSpan().CopyTo(new Span<byte>(s, strings[i].Length));
            s[strings[i].Length] = 0;
            array[i] = s;
        }
    }

    public byte** Pointer => array;

    public byte* this[int index] => array[index];

    public void Dispose()
    {
        for (int i = 0; i < count; i++)
            NativeMemory.Free(array[i]);
        NativeMemory.Free(array);
    }
}
