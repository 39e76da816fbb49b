/*
 * --report: the command's attempts to reach outside, seen by the host.
 *
 * The launcher's child installs nonet's seccomp filter (filter.c) in the
 * mode that hands connect(), sendto(), sendmsg() and sendmmsg() to the
 * host (user notification), then waits until the host holds the listener.
 */
#ifndef NONET_REPORT_H
#define NONET_REPORT_H

/* Child side, before the filter: a NETLINK_SOCK_DIAG socket made in the
 * namespace, through which the host (outside) sees the namespace's own
 * sockets, e.g. the Unix sockets bound inside; or -1. */
int open_namespace_diag(void);

/* Child side, after STEP_REPORT told the host the listener's number: one
 * call that the filter hands to the host, which answers it once it has
 * taken the listener (and DIAG_FD, unless -1) with pidfd_getfd(2).
 * Returns 0, or -1 with errno. */
int wait_for_report_listener(int diag_fd);

#endif
