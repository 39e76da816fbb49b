using System;
using System.Collections.Generic;
using Nonet.Allow;
using Nonet.Interop;
using Nonet.Report;
using Nonet.Runtime;
using static Nonet.Interop.Seccomp;

namespace Nonet.Supervision;

/// <summary>
/// The host's end of the launcher's seccomp filter (launcher/report.c): it
/// holds the filter's listener, receives each call the filter hands over
/// (connect(), sendto(), sendmsg(), sendmmsg() of the command and every
/// process it starts), asks the capabilities that care, and answers.
///
///  - connect() under --allow: <see cref="ConnectBroker"/> carries it out
///    and answers (now, or when a blocking one's connection is made);
///  - the send calls under --allow: refused with MSG_FASTOPEN, which would
///    connect as connect() does; a call of another ABI (i386, x32): ENOSYS;
///  - otherwise --report's <see cref="AttemptRecorder"/> records the call,
///    and the kernel carries it out as without the filter
///    (SECCOMP_USER_NOTIF_FLAG_CONTINUE): to the outside, it fails at once.
/// </summary>
internal sealed unsafe class Supervisor : ICapability, IReadyHandler
{
    private readonly AttemptRecorder? recorder;
    private readonly ConnectBroker? broker;
    private int listener = -1;
    private EventLoop? loop;

    public Supervisor(AttemptRecorder? recorder, ConnectBroker? broker)
    {
        this.recorder = recorder;
        this.broker = broker;
    }

    /// <summary>Whether --allow's connect hand-over is on.</summary>
    public bool Brokers => broker is not null;

    /// <summary>The launcher's child installs the filter just before
    /// execve() in the mode this run needs (launcher/filter.h): "allow"
    /// also refuses MSG_FASTOPEN in the filter itself.</summary>
    public IEnumerable<byte[]> LauncherArguments() => ["-r"u8.ToArray(), broker is null ? "report"u8.ToArray() : "allow"u8.ToArray()];

    /// <summary>
    /// Takes the listener from the launcher's child (its descriptor
    /// <paramref name="childFd"/>) and answers the child's one call that
    /// says so (launcher/report.c, wait_for_report_listener).  An errno, or 0.
    /// </summary>
    public int TakeListener(int childPid, int childFd)
    {
        int pidfd = PidfdOpen(childPid, 0);
        if (pidfd < 0)
            return LastError;
        listener = PidfdGetfd(pidfd, childFd);
        int e = listener < 0 ? LastError : 0;
        Sockets.close(pidfd);
        if (e != 0)
            return e;
        if (broker is not null && (e = broker.Start(listener, childPid)) != 0)
            return e;
        // The child is the only process under the filter yet, and it waits
        // in connect(-1, NULL, 0) for this answer.
        while (true)
        {
            int ready = Wait(listener, 10_000);
            if (ready <= 0 || (ready & POLLIN) == 0)
                return ready < 0 ? LastError : Errno.EIO;
            if (Receive(listener, out var n) != 0)
                continue;
            if (n.Pid == childPid && n.Nr == Calls.Connect && (int)n.Args[0] == -1)
            {
                // Its third argument: the namespace's sock_diag socket, or -1.
                recorder?.TakeNamespaceSockets(childPid, (int)n.Args[2]);
                return Return(listener, n.Id, 0);
            }
            Continue(listener, n.Id);
        }
    }

    public void Attach(EventLoop eventLoop)
    {
        if (listener < 0)
            return;
        loop = eventLoop;
        loop.Add(listener, Sockets.EPOLLIN, this);
        broker?.Attach(eventLoop);
    }

    public void OnReady(int fd, uint events)
    {
        if ((events & Sockets.EPOLLIN) != 0)
            HandleOne();
        else if ((events & (Sockets.EPOLLHUP | Sockets.EPOLLERR)) != 0)
            loop?.Remove(listener); // every process under the filter has ended
    }

    public int WakeAfter => broker?.WakeAfter ?? -1;

    public void Wake() => broker?.Wake();

    /// <summary>After the command has ended: the calls still waiting (of
    /// processes it left behind) are answered (and recorded) too.</summary>
    public void Finish()
    {
        if (listener < 0)
            return;
        while ((Wait(listener, 0) & POLLIN) != 0)
            HandleOne();
    }

    private void HandleOne()
    {
        if (Receive(listener, out var n) != 0)
            return; // ENOENT: the caller was killed meanwhile
        if (broker is not null && n.Arch == ForeignCalls.Native && n.Nr == Calls.Connect)
        {
            broker.Connect(n); // answers, and records
            return;
        }
        // A call of another ABI (i386, x32), whose layouts nonet does not
        // read, fails as on a kernel without that ABI; the recorder lists it.
        int refused = AttemptRecorder.Verdict(n);
        if (refused == 0 && broker is not null && ConnectBroker.IsFastOpen(n))
            refused = Tmds.Linux.LibC.EOPNOTSUPP;
        try
        {
            recorder?.Inspect(n, listener);
        }
        catch (Exception)
        {
            // A process's memory is its own to change; nothing it holds may
            // stop nonet, nor its call.
        }
        finally
        {
            if (refused != 0)
                Fail(listener, n.Id, refused);
            else
                Continue(listener, n.Id);
        }
    }

    public void Dispose()
    {
        broker?.Dispose();
        recorder?.Dispose();
        if (listener >= 0)
        {
            loop?.Remove(listener);
            Sockets.close(listener);
        }
        listener = -1;
    }
}
