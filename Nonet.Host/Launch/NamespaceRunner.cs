using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;
using Nonet.Interop;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.Launch;

/// <summary>What to run: the launcher, the resolved command, its argv (raw
/// bytes, argv[0] first), and optionally an fd to become its stdout.</summary>
internal sealed record LaunchRequest(string LauncherPath, byte[] CommandPath, IReadOnlyList<byte[]> Argv, int StdoutFd = -1);

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

        int spawnError = Spawn(request, status[1], go[0], out int launcher);
        close(status[1]);
        close(go[0]);
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
                    failure ??= new LaunchFailure(ToStep(record.Step), record.Errno, CommandResolver.Show(request.Argv[0]));
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
        return new LaunchResult(records, null, ForwardSignalsUntilExit(launcher));
    }

    private static Step ToStep(LauncherStep step) => step switch
    {
        LauncherStep.Start => Step.LauncherStart,
        LauncherStep.Clone => Step.Clone,
        LauncherStep.WaitMaps => Step.WaitMaps,
        LauncherStep.UnshareNet => Step.UnshareNet,
        LauncherStep.LoopbackUp => Step.LoopbackUp,
        LauncherStep.DropCaps => Step.DropCaps,
        _ => Step.Exec,
    };

    private static int Spawn(LaunchRequest request, int statusFd, int goFd, out int pid)
    {
        var argv = new List<byte[]>
        {
            Encoding.UTF8.GetBytes(request.LauncherPath),
            Encoding.ASCII.GetBytes(statusFd.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            Encoding.ASCII.GetBytes(goFd.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            request.CommandPath,
        };
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
                int r = Libc.waitpid(launcher, &st, Libc.WNOHANG);
                if (r == launcher)
                    return ExitStatusOf(st);
                if (r < 0 && Libc.Errno != EINTR)
                    throw new SystemCallException("waitpid", Libc.Errno);

                nint n = (nint)read(sfd, info, 128);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n != 128)
                    throw new SystemCallException("read signalfd", n < 0 ? errno : EIO);
                int signo = *(int*)info;
                int code = *(int*)(info + 8);
                if (signo != SIGCHLD && code <= 0)
                    kill(launcher, signo);
            }
        }
        finally
        {
            close(sfd);
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
