/*
 * --report (and --allow): the hand-over of the seccomp filter's listener
 * (see seccomp_unotify(2)).  The filter itself, with the calls it hands to
 * the host, is filter.c's.
 *
 * Every connect(), sendto(), sendmsg() and sendmmsg() of the command and
 * of every process it starts that the filter hands over stops until the
 * host, holding the listener, has read the destination (from
 * /proc/PID/mem) and recorded it; the host then answers
 * SECCOMP_USER_NOTIF_FLAG_CONTINUE and the kernel carries the call out as
 * without the filter: to the outside it fails at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "report.h"

#ifndef NETLINK_SOCK_DIAG
#define NETLINK_SOCK_DIAG 4
#endif

int open_namespace_diag(void)
{
	return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
}

int wait_for_report_listener(int diag_fd)
{
	long rc;

	/* connect(-1, NULL, DIAG) reaches the host, which recognises it by the
	 * child's pid, takes DIAG too (unless -1) and answers 0 once it holds
	 * the listener. */
	do
		rc = syscall(SYS_connect, -1, NULL, (long)diag_fd);
	while (rc < 0 && errno == EINTR);
	return rc == 0 ? 0 : -1;
}
