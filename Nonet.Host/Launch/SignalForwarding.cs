using System;
using System.IO;
using System.Runtime.CompilerServices;
using Nonet.Interop;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Nonet.Launch;

/// <summary>
/// The signals nonet passes on to the command (launcher/nonet-launcher.c has
/// the same list), held blocked in every host thread so that the host reads
/// them, with their origin, from a signalfd instead of dying of them.
/// </summary>
internal static unsafe class SignalForwarding
{
    public static readonly int[] Forwarded = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH];

    private static sigset_t held;
    private static volatile bool finalizerThreadBlocked;

    /// <summary>Forwarded signals, job-control signals and SIGCHLD.</summary>
    public static sigset_t Held => held;

    /// <summary>
    /// First thing in Main: Native/early_signals.c held the signals in the
    /// main thread before the runtime started, so that the runtime's own
    /// threads inherit them.  Until <see cref="HoldInAllThreads"/>, the main
    /// thread takes signals as nonet was given them, as if nothing was held.
    /// </summary>
    public static void ReleaseMainThread()
    {
        if (!EarlySignals.TryGet(out sigset_t started, out _))
            return;
        pthread_sigmask(SIG_SETMASK, &started, null);
    }

    /// <summary>
    /// Blocks the forwarded signals, the job-control signals and SIGCHLD in every thread.  A signal a
    /// process gets goes to any thread that does not block it, and the
    /// NativeAOT runtime starts its finalizer thread before Main.  That
    /// thread was started holding them when Native/early_signals.c is linked
    /// in; otherwise (the JIT, in unit tests) it blocks them by running a
    /// finalizer.  Threads created later inherit the mask.
    /// </summary>
    public static void HoldInAllThreads()
    {
        sigset_t set;
        sigemptyset(&set);
        foreach (int sig in Forwarded)
            sigaddset(&set, sig);
        foreach (int sig in JobControl.Signals)
            sigaddset(&set, sig);
        sigaddset(&set, SIGCHLD);
        held = set;
        if (pthread_sigmask(SIG_BLOCK, &set, null) != 0)
            throw new SystemCallException("pthread_sigmask", errno);

        if (HeldSinceStart(&set))
            return;
        AllocateBlocker();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        if (!finalizerThreadBlocked)
            throw new NonetException(ExitCodes.NonetFailed, "internal error: could not hold signals in the finalizer thread");
    }

    /// <summary>True when every signal of <paramref name="set"/> was held
    /// before the runtime started, so every runtime thread holds it.</summary>
    private static bool HeldSinceStart(sigset_t* set)
    {
        if (!EarlySignals.TryGet(out _, out sigset_t early))
            return false;
        for (int sig = 1; sig < 65; sig++)
        {
            if (sigismember(set, sig) == 1 && sigismember(&early, sig) != 1)
                return false;
        }
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void AllocateBlocker() => _ = new FinalizerThreadBlocker();

    private sealed class FinalizerThreadBlocker
    {
        ~FinalizerThreadBlocker()
        {
            sigset_t set = held;
            finalizerThreadBlocked = pthread_sigmask(SIG_BLOCK, &set, null) == 0;
        }
    }

    /// <summary>Threads of this process that would still receive a held
    /// signal (for the self-test).  Empty when forwarding is sound.</summary>
    public static string[] ThreadsNotHolding()
    {
        ulong bits = 0;
        foreach (int sig in Forwarded)
            bits |= 1UL << (sig - 1);
        var missing = new System.Collections.Generic.List<string>();
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            foreach (var line in File.ReadLines(Path.Combine(task, "status")))
            {
                if (!line.StartsWith("SigBlk:", StringComparison.Ordinal))
                    continue;
                ulong blocked = Convert.ToUInt64(line["SigBlk:".Length..].Trim(), 16);
                if ((blocked & bits) != bits)
                    missing.Add(File.ReadAllText(Path.Combine(task, "comm")).Trim());
            }
        }
        return missing.ToArray();
    }
}
