/*
 * Linked into the NativeAOT host (see Nonet.Host.csproj): holds nonet's
 * forwarded signals before the .NET runtime starts.
 *
 * A signal sent to a process goes to any thread that does not block it, so
 * the host must block the forwarded signals in every thread, and the runtime
 * starts its finalizer thread before Main runs.  This constructor runs before
 * the runtime does, so every thread the runtime creates inherits the mask.
 * Otherwise the host would have to get code run on the finalizer thread,
 * which takes a garbage collection (about 0.25 ms of a 3.5 ms start).
 *
 * The list must match Forwarded in Launch/SignalForwarding.cs and Signals
 * in Launch/JobControl.cs; SignalForwarding checks that every signal it
 * needs is in the set held here.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stddef.h>

int nonet_early_signal_mask(sigset_t *original, sigset_t *held);

static sigset_t original_mask;
static sigset_t held_mask;
static int holding;

/* Priority 101: before Native/prestart.c, which starts the launcher with the
 * mask saved here. */
__attribute__((constructor(101))) static void hold_forwarded_signals(void)
{
	static const int forwarded[] = {
		SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD,
		SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, /* JobControl.Signals */
	};
	size_t i;

	sigemptyset(&held_mask);
	for (i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(&held_mask, forwarded[i]);
	holding = pthread_sigmask(SIG_BLOCK, &held_mask, &original_mask) == 0;
}

/* The mask nonet was started with and the set held since before the runtime
 * started; -1 when the constructor could not hold it. */
int nonet_early_signal_mask(sigset_t *original, sigset_t *held)
{
	if (!holding)
		return -1;
	*original = original_mask;
	*held = held_mask;
	return 0;
}
