/*
 * How long the command's processes live, and job control (issue 13).
 *
 * Nothing outlives nonet: the launcher is a child subreaper, so whatever the
 * command leaves running becomes the launcher's child, and once the command
 * has exited (or the host has died) the launcher ends it: SIGTERM, then
 * SIGKILL after LIFETIME_GRACE_MS.  If the launcher itself is killed, the
 * host does the same (Nonet.Host/Launch/Leftovers.cs).
 *
 * Job control: when the command stops, the launcher stops with the same
 * signal (and the host, seeing that, too), so the job shell sees the job
 * stopped; when the launcher is continued, it continues the command.
 */
#ifndef NONET_LIFETIME_H
#define NONET_LIFETIME_H

#include <stddef.h>
#include <sys/types.h>

#define LIFETIME_GRACE_MS 1000

/* Parent side, after install_forwarders() and before clone: become a child
 * subreaper, hold the signals the parent takes with sigwaitinfo(), and get a
 * catchable signal when the host dies.  -1 with errno on failure. */
int lifetime_prepare(void);

/* The exit signal to clone the child with (ORed into the clone flags). */
int lifetime_exit_signal(void);

/* Parent side: pass FORWARDED signals from the host and job-control signals
 * on to COMMAND, mirror its stops, reap every child that dies, until the
 * command exits (its status: N or 128+signal) or the host dies. */
int lifetime_supervise(pid_t command, const int *forwarded, size_t n_forwarded);

/* Parent side, last: end everything the command left behind (SIGTERM,
 * LIFETIME_GRACE_MS, SIGKILL). */
void lifetime_end(void);

/* Parent side: PID is still a child of this process (so its pid cannot have
 * been reused: a child's pid stays its own until it is reaped). */
int lifetime_is_child(pid_t pid);

#endif
