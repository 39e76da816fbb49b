using System;
using System.IO;
using Nonet.Interop;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.Launch;

/// <summary>
/// Job control, as sudo and script do it (issue 13): nonet's state mirrors
/// the command's.  When the launcher stops (because the command stopped: see
/// launcher/lifetime.c), nonet stops with the same signal, so the shell that
/// waits for nonet sees the job stopped the same way; once continued, it
/// continues the launcher, which continues the command.  nonet itself never
/// stops of a job-control signal: SIGTSTP, SIGTTIN and SIGTTOU are held like
/// the forwarded signals, so a user's is passed on and the terminal's, which
/// reached the command directly, stops the job only if it stops the command.
/// </summary>
internal static unsafe class JobControl
{
    /// <summary>Held in every thread, besides <see cref="SignalForwarding.Forwarded"/>.</summary>
    public static readonly int[] Signals = [SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT];

    /// <summary>waitpid() flags for the launcher: its stops and continues too.</summary>
    public const int WaitFlags = Libc.WNOHANG | Libc.WUNTRACED | Libc.WCONTINUED;

    /// <summary>
    /// After waitpid() with <see cref="WaitFlags"/> returned
    /// <paramref name="waitStatus"/>: true if the launcher only stopped or
    /// continued.  A stop is mirrored here, until nonet is continued.
    /// </summary>
    public static bool Follow(int waitStatus, int launcher)
    {
        if (waitStatus == 0xffff) // WIFCONTINUED
            return true;
        if ((waitStatus & 0xff) != 0x7f) // not WIFSTOPPED: it exited
            return false;
        StopSelf((waitStatus >> 8) & 0xff);
        Continue(launcher);
        return true;
    }

    /// <summary>nonet got SIGCONT (from the shell's fg or bg, or a user):
    /// the launcher goes on too if it is stopped.  It continues the command
    /// only if the command is still stopped, so a SIGCONT to the whole
    /// process group is not doubled.</summary>
    public static void Continue(int launcher)
    {
        if (IsStopped(launcher))
            kill(launcher, SIGCONT);
    }

    /// <summary>
    /// Stops the whole process with <paramref name="signal"/>, returning once
    /// continued.  The signal is held in every thread: it is queued for this
    /// thread while held, then let through here, so it stops the process once
    /// with its default action (whatever disposition nonet was given).  A
    /// second stop signal still pending is dropped by the SIGCONT.
    /// </summary>
    private static void StopSelf(int signal)
    {
        if (signal == SIGSTOP)
        {
            kill(getpid(), SIGSTOP);
            return;
        }
        sigaction dfl = default;
        sigaction saved;
        dfl.sa_handler = SIG_DFL;
        if (sigaction(signal, &dfl, &saved) != 0)
            return;
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, signal);
        raise(signal); // this thread's, as glibc's raise() is
        pthread_sigmask(SIG_UNBLOCK, &one, null);
        pthread_sigmask(SIG_BLOCK, &one, null);
        sigaction(signal, &saved, null);
    }

    /// <summary>Stopped by a signal, from /proc/PID/stat.  The launcher is
    /// nonet's child, so its pid is its own until nonet reaps it.</summary>
    private static bool IsStopped(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int end = stat.LastIndexOf(')');
            return end > 0 && end + 2 < stat.Length && stat[end + 2] == 'T';
        }
        catch (IOException)
        {
            return false;
        }
    }
}
