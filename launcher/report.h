/*
 * --report: the command's attempts to reach outside, seen by the host.
 *
 * The launcher's child installs a seccomp filter that hands connect(),
 * sendto(), sendmsg() and sendmmsg() to the host (user notification) and
 * makes io_uring_setup() fail, then waits until the host holds the listener.
 */
#ifndef NONET_REPORT_H
#define NONET_REPORT_H

/* Child side, just before execve(), while the child still has
 * CAP_SYS_ADMIN in its user namespace (so no_new_privs is not needed, and
 * ping's file capability still works): installs the filter and returns the
 * listener's descriptor (close-on-exec), or -1 with errno set. */
int install_report_filter(void);

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
