using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;
using Nonet.Dns;
using Nonet.Interop;
using Nonet.Runtime;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.Launch;

/// <summary>What to run: the launcher, the resolved command, its argv (raw
/// bytes, argv[0] first), what the namespace holds besides "lo", what nonet
/// runs beside the command (its DNS room, relays, supervisor), and
/// optionally an fd to become its stdout.</summary>
internal sealed record LaunchRequest(byte[] LauncherPath, byte[] CommandPath, IReadOnlyList<byte[]> Argv, InsidePlan Inside, RunTime RunTime, int StdoutFd = -1);

/// <summary>How a launch went: every status record, the failure if the
/// command never started, the exit status nonet should end with, and the
/// name lookups nonet answered while the command ran.</summary>
internal sealed record LaunchResult(IReadOnlyList<StatusRecord> Records, LaunchFailure? Failure, int ExitStatus, DnsTally Lookups);

/// <summary>
/// The only code that starts processes, writes /proc/PID/*_map and waits:
/// it runs the launcher and plays the host's part of the protocol in
/// launcher/status.h.  Everything it decides is in pure classes around it.
/// </summary>
internal static unsafe class NamespaceRunner
{
    public static LaunchResult Run(LaunchRequest request)
    {
        Leftovers.BecomeSubreaper();
        var runTime = request.RunTime;
        // The launcher Native/prestart.c started before the runtime, when it
        // is the one this run needs; else one started now.
        int spawnError = 0;
        var started = Prestart.Take(request.LauncherPath, usable: request.StdoutFd < 0)
            ?? Prestart.Spawn(request.LauncherPath, request.StdoutFd, out spawnError);
        runTime.LauncherStarted();
        if (started is not { } launcher)
            return new LaunchResult([], new LaunchFailure(Step.SpawnLauncher, spawnError, UserText.Show(request.LauncherPath)), ExitCodes.NonetFailed, runTime.Dns.Tally);
        using var channel = ControlChannel.Adopt(launcher.ControlFd);
        int goFd = launcher.GoFd;

        var records = new List<StatusRecord>();
        LaunchFailure? failure = null;
        LaunchFailure? mapFailure = null;
        int child = -1;
        try
        {
            while (ReadRecord(launcher.StatusFd) is { } record)
            {
                records.Add(record);
                if (!record.Succeeded)
                {
                    // Without the maps the child was never released: that
                    // failure is told, not its consequence.
                    if (mapFailure is not null && record.Step == LauncherStep.WaitMaps)
                        continue;
                    failure ??= new LaunchFailure(ToStep(record.Step), record.Errno, record.Step switch
                    {
                        LauncherStep.Listen => record.Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        LauncherStep.Dns => request.Inside.NameserverSubject(record.Value),
                        LauncherStep.Mounts => request.Inside.MountSubject(record.Value) ?? "",
                        LauncherStep.Report => record.Value < 0 ? "waiting for nonet: " : "seccomp: ",
                        LauncherStep.LoopbackUp when record.Value > 0 => request.RunTime.Allow?.LoopbackAddressSubject(record.Value) ?? "",
                        _ => CommandResolver.Show(request.Argv[0]),
                    });
                }
                else if (record.Step == LauncherStep.Listen && failure is null)
                {
                    // The child sent its sockets just before this record.
                    // It waits for the host's word before it goes on.
                    int e = runTime.TakeInsideSockets(channel);
                    if (e != 0)
                    {
                        failure = new LaunchFailure(Step.ReceiveListeners, e);
                        kill(launcher.Pid, SIGKILL); // the child dies with it
                    }
                }
                else if (record.Step == LauncherStep.Report && failure is null && runTime.Supervisor is { } supervisor)
                {
                    // The child waits until the host holds its filter's listener.
                    int e = supervisor.TakeListener(child, record.Value);
                    if (e != 0)
                    {
                        failure = new LaunchFailure(Step.Report, e, "pidfd_getfd: ");
                        kill(launcher.Pid, SIGKILL); // the child dies with it
                    }
                }
                else if (record.Step == LauncherStep.Clone && failure is null)
                {
                    child = record.Value;
                    // The child sets up its network namespace meanwhile; the
                    // host, in the caller's namespace, maps the caller's ids
                    // into its user namespace, and only then says what to run.
                    mapFailure = WriteIdMaps(record.Value);
                    if (mapFailure is null)
                        SendRunMessage(goFd, RunMessage(request));
                    close(goFd);
                    goFd = -1;
                }
            }
        }
        finally
        {
            if (goFd >= 0)
                close(goFd);
            close(launcher.StatusFd);
        }

        // A child that could not make its network namespace may be gone
        // before the host wrote its maps: its own failure is the one to tell.
        if (mapFailure is not null && failure is not { Step: Step.UnshareNet or Step.LoopbackUp })
            failure = mapFailure;
        if (failure is null && (records.Count == 0 || records[^1] != new StatusRecord(LauncherStep.Exec, 0, 0)))
            failure = new LaunchFailure(Step.LauncherEnded, 0);
        if (failure is not null)
        {
            int code = WaitForExit(launcher.Pid);
            if (failure.Step == Step.LauncherEnded)
                failure = failure with { Subject = $" (launcher exit status {code})" };
            return new LaunchResult(records, failure, code, runTime.Dns.Tally);
        }
        runTime.CommandStarted(channel);
        int exitStatus = Supervise(launcher.Pid, runTime);
        return new LaunchResult(records, null, exitStatus, runTime.Dns.Tally);
    }

    /// <summary>What the child runs: the launcher's options for what the
    /// namespace holds, then the command's path and argv.</summary>
    private static byte[] RunMessage(LaunchRequest request)
    {
        var strings = new List<byte[]>();
        strings.AddRange(request.Inside.LauncherArguments());
        strings.AddRange(request.RunTime.LauncherArguments());
        strings.Add(request.CommandPath);
        strings.AddRange(request.Argv);
        return StatusProtocol.EncodeRunMessage(strings);
    }

    /// <summary>The whole message, or as much as a child that already ended
    /// took (EPIPE): its status record then says why it ended.</summary>
    private static void SendRunMessage(int goFd, byte[] message)
    {
        fixed (byte* p = message)
        {
            int sent = 0;
            while (sent < message.Length)
            {
                nint n = (nint)write(goFd, p + sent, (size_t)(message.Length - sent));
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0)
                    return;
                sent += (int)n;
            }
        }
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
        LauncherStep.Dns => Step.Dns,
        LauncherStep.Mounts => Step.Mounts,
        LauncherStep.Report => Step.Report,
        LauncherStep.Filter => Step.Filter,
        _ => Step.Exec,
    };

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

    /// <summary>
    /// While the command runs, one epoll loop serves everything: the signals
    /// someone sent to nonet (passed on to the launcher, which passes them to
    /// the command; those from the terminal or kernel, si_code &gt; 0, already
    /// reached the command through its process group and are not doubled),
    /// and every capability of the run (<see cref="RunTime"/>: the DNS room,
    /// the relays, the supervisor of the seccomp filter).  When the launcher
    /// exits, listeners close at once; data the command already sent is
    /// still passed on, for at most <see cref="RunTime.DrainMilliseconds"/>.
    /// </summary>
    private static int Supervise(int launcher, RunTime runTime)
    {
        sigset_t held = SignalForwarding.Held;
        int sfd = Libc.signalfd(-1, &held, Libc.SFD_CLOEXEC | Libc.SFD_NONBLOCK);
        if (sfd < 0)
            throw new SystemCallException("signalfd", Libc.Errno);
        var loop = new EventLoop();
        try
        {
            loop.Add(sfd, Sockets.EPOLLIN, new SignalReader(sfd, launcher));
            runTime.Attach(loop);
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
                    Leftovers.LauncherEnded();
                    // Its pid is free for reuse: nothing more is sent to it.
                    loop.Remove(sfd);
                    break;
                }
                if (r < 0 && Libc.Errno != EINTR)
                    throw new SystemCallException("waitpid", Libc.Errno);
                loop.RunOnce(runTime.WakeAfter);
                runTime.Wake();
            }

            runTime.Finish(loop);
            return status;
        }
        finally
        {
            // The loop first: closing it drops every registration at once,
            // so that the rest closes without an epoll_ctl each.
            loop.Dispose();
            runTime.Dispose();
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
