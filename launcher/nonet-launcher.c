/*
 * nonet-launcher: the small static helper that nonet(1) starts.
 *
 *   nonet-launcher STATUS_FD GO_FD CTRL_FD
 *   nonet-launcher --version
 *   nonet-launcher --print-filter base|report|allow
 *                  (a debugging aid: the mode's seccomp program, as the
 *                  kernel gets it, on stdout; the tests run it over
 *                  crafted calls of every architecture)
 *
 * It is not meant to be run by hand.  The nonet host opens the two pipes
 * and the control socket and starts this program, often before the .NET
 * runtime has started (Nonet.Host/Native/prestart.c), so before it knows
 * what will run.  The launcher then:
 *
 *   1. clones a child into a new user namespace and tells the host its
 *      pid, so that the host (in the caller's namespace) writes
 *      /proc/PID/setgroups, uid_map and gid_map;
 *   2. meanwhile the child, which holds every capability in its new user
 *      namespace even before its ids are mapped, creates a network
 *      namespace, brings "lo" up, and waits on GO_FD;
 *   3. the host, once the maps are written, sends what to run over GO_FD
 *      (the run message, status.h): the options below, PATH, ARGV0 and the
 *      arguments.  The child makes the sockets the host serves inside,
 *      hides what must not be reached in a mount namespace of its own,
 *      gives up every capability and execs PATH;
 *   4. the parent stays behind: it forwards the host's signals to the
 *      command, stops and continues with it (job control), exits with the
 *      command's status, and first ends whatever the command left running
 *      (lifetime.c).
 *
 * The run message's options, before PATH:
 *
 *   -n ADDR  a nameserver of the host's (IPv4 or IPv6): a local route makes
 *            ADDR answer inside, and UDP and TCP sockets on ADDR port 53
 *            go to the host, which answers every query "not found";
 *   -f PORT  the child listens on 127.0.0.1:PORT and [::1]:PORT inside and
 *            hands the listeners to the host, which accepts and relays;
 *   -p PORT  a helper stays in the namespace, with no capabilities, and for
 *            each request of the host makes a socket connecting to
 *            127.0.0.1:PORT (or [::1]:PORT) inside and hands it over;
 *   -H PATH  (a host daemon's Unix socket, such as nscd's) and -o PATH
 *            (/proc/sys, say): the child makes a mount namespace, /dev/null
 *            covers each -H path, and each -o tree becomes read-only;
 *   -a ADDR  (--allow) ADDR becomes an address of "lo" (netns.c says why);
 *   -r MODE  "report" (--report) or "allow" (--allow): on top of the
 *            base seccomp filter that the child installs on every run
 *            (filter.c: address families, TIOCSTI), one that also hands the
 *            command's connect() and sends to the host, which takes its
 *            listener: the host then sees every connect() and send of the
 *            command and its descendants.  Without -r, the base filter.
 *
 * The sockets go to the host over CTRL_FD, one end of a SOCK_SEQPACKET
 * pair whose other end the host keeps.  A socket belongs to the network
 * namespace it was made in, so this is the only way for the host to reach
 * into the new one.
 *
 * Every step's outcome goes to the host over STATUS_FD (see status.h); the
 * host owns the wording of every message a user sees.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "filter.h"
#include "lifetime.h"
#include "mounts.h"
#include "netns.h"
#include "report.h"
#include "status.h"

#ifndef NONET_VERSION
#define NONET_VERSION "unknown"
#endif

/* From <linux/securebits.h>, which musl does not ship. */
#define SECBIT_NOROOT (1 << 0)
#define SECBIT_NOROOT_LOCKED (1 << 1)
#define SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#define SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1 << 7)

#define EXIT_NONET_FAILED 125

/* The kernel's own cap (net.core.somaxconn, 4096 since Linux 5.4) applies;
 * musl's SOMAXCONN is 128, too few for a burst of connections. */
#define LISTEN_BACKLOG 4096

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* From <linux/capability.h>, which musl does not ship. */
#define CAPABILITY_VERSION_3 0x20080522
struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};

/* The signals nonet passes on to the command; README.md lists the same. */
static const int forwarded_signals[] = {
	SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
};
#define N_FORWARDED (sizeof forwarded_signals / sizeof forwarded_signals[0])

static int status_fd = -1;
static int go_fd = -1;
static int ctrl_fd = -1;
/* Child to parent: the --publish helper's pid, in a page the two share
 * (MAP_SHARED, made before clone): no descriptor for it stays open in the
 * launcher while the command runs. */
static volatile pid_t *helper_pid_slot;
static uint16_t forward_ports[NONET_MAX_FORWARDS];
static size_t n_forward;
static uint16_t publish_ports[NONET_MAX_FORWARDS];
static size_t n_publish;
static struct nonet_address nameservers[NONET_MAX_NAMESERVERS];
static size_t n_nameservers;
#define MAX_LOOPBACK_ADDRESSES 2
static struct nonet_address loopback_addresses[MAX_LOOPBACK_ADDRESSES];
static size_t n_loopback_addresses;
static const char *hidden_paths[NONET_MAX_MOUNTS];
static size_t n_hidden;
static const char *read_only_paths[NONET_MAX_MOUNTS];
static size_t n_read_only;
static enum filter_mode filter_mode = FILTER_BASE;
/* The base filter's errno when the child installed it (0: installed). */
static int base_filter_error;
static uid_t host_uid;  /* the ids the host maps: the launcher's own */
static gid_t host_gid;
/* Outside: net.ipv4.ip_unprivileged_port_start, and whether the caller may
 * bind below it (netns.c, keep_unprivileged_port_start). */
static int outside_port_start = -1;
static int may_bind_any_port;
static struct sigaction original_actions[N_FORWARDED];
static sigset_t original_mask;

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One record per step; if the host is gone there is nobody left to tell. */
static void report(enum nonet_step step, int err, int value)
{
	struct nonet_status st = {
		.magic = NONET_STATUS_MAGIC,
		.step = (uint32_t)step,
		.err = err,
		.value = value,
	};

	(void)write_all(status_fd, &st, sizeof st);
}

static int parse_fd(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 65535)
		return -1;
	if (fcntl((int)v, F_GETFD) < 0)
		return -1;
	return (int)v;
}

/* Parent side, before clone: hold the forwarded signals.  The parent never
 * lets them through: lifetime_supervise() takes them with sigwaitinfo() and
 * passes a user's on to the command, leaving alone any the caller ignores
 * (nohup, background jobs).  The child gets the mask and dispositions back. */
static int install_forwarders(void)
{
	sigset_t block;
	size_t i;

	sigemptyset(&block);
	for (i = 0; i < N_FORWARDED; i++)
		sigaddset(&block, forwarded_signals[i]);
	if (sigprocmask(SIG_BLOCK, &block, &original_mask) < 0)
		return -1;

	for (i = 0; i < N_FORWARDED; i++) {
		if (sigaction(forwarded_signals[i], NULL, &original_actions[i]) < 0)
			return -1;
	}
	return 0;
}

/* Parent side, first thing: glibc's posix_spawn() in the host leaves its two
 * internal signals (32 and 33) ignored in the launcher, and ignored signals
 * survive execve().  No glibc program can ignore them itself, so their
 * default is what the caller had.  musl's sigaction() refuses these numbers;
 * the raw system call does not. */
static int reset_libc_internal_signals(void)
{
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		unsigned long long mask;
	} dfl = { SIG_DFL, 0, NULL, 0 };
	int sig;

	for (sig = 32; sig <= 33; sig++) {
		if (syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask) < 0)
			return -1;
	}
	return 0;
}

/* Child side: the command gets the dispositions and mask nonet was given. */
static void restore_signal_dispositions(void)
{
	size_t i;

	for (i = 0; i < N_FORWARDED; i++)
		(void)sigaction(forwarded_signals[i], &original_actions[i], NULL);
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = ECANCELED;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int parse_options(int argc, char **argv, int first);

/* Child side: block until the host has written uid_map and gid_map and
 * says what to run (the run message, status.h); its strings become
 * *run_argv.  End-of-file means the host gave up (or died): the command
 * must not run.  The ids must be mapped by then, whatever the host said. */
static int wait_for_run(int *run_argc, char ***run_argv)
{
	struct nonet_run_header header;
	char *strings, *p, **argv;
	int argc = 0, i;

	if (read_all(go_fd, &header, sizeof header) < 0)
		return -1;
	if (header.magic != NONET_STATUS_MAGIC || header.length == 0 ||
	    header.length > NONET_MAX_RUN_MESSAGE) {
		errno = EPROTO;
		return -1;
	}
	strings = malloc(header.length);
	if (strings == NULL || read_all(go_fd, strings, header.length) < 0)
		return -1;
	close(go_fd);
	if (strings[header.length - 1] != '\0') {
		errno = EPROTO;
		return -1;
	}
	for (p = strings; p < strings + header.length; p += strlen(p) + 1)
		argc++;
	argv = calloc((size_t)argc + 1, sizeof *argv);
	if (argv == NULL)
		return -1;
	for (i = 0, p = strings; i < argc; i++, p += strlen(p) + 1)
		argv[i] = p;
	if (geteuid() != host_uid || getegid() != host_gid) {
		errno = EPERM;
		return -1;
	}
	*run_argc = argc;
	*run_argv = argv;
	return 0;
}

/* Child side: the command must not be able to reconfigure the namespace.
 * A non-root caller loses every capability at execve() anyway; for root
 * (uid 0 inside), emptying the bounding set and locking SECBIT_NOROOT stop
 * execve() from granting them again.  See capabilities(7).
 *
 * CAP_NET_RAW alone stays in the bounding set, for programs that carry it
 * as a file capability (ping, "cap_net_raw=ep"): without it their execve()
 * fails with EPERM.  Granted there, it covers raw sockets in this network
 * namespace only, which has nothing but "lo". */
#define CAP_NET_RAW 13
static int drop_capabilities(void)
{
	int cap;

	for (cap = 0; cap < 64; cap++) {
		if (cap == CAP_NET_RAW)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL) /* past the kernel's last capability */
			break;
		return -1;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	return prctl(PR_SET_SECUREBITS,
		     SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
		     SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
		     0, 0, 0);
}

/* Whether the caller holds CAP_NET_BIND_SERVICE (root does), read before
 * the clone: in its new user namespace the child holds every capability. */
#define CAP_NET_BIND_SERVICE 10
static int holds_bind_service(void)
{
	struct cap_header header = { CAPABILITY_VERSION_3, 0 };
	struct cap_data data[2];

	if (syscall(SYS_capget, &header, data) < 0)
		return 0;
	return (data[0].effective >> CAP_NET_BIND_SERVICE) & 1;
}

static socklen_t loopback_address(uint32_t family, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (family == NONET_FAMILY_IPV6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		a6->sin6_addr = in6addr_loopback;
		return sizeof *a6;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof *a4;
	}
}

static int close_keeping_errno(int fd)
{
	int saved_errno = errno;

	close(fd);
	errno = saved_errno;
	return -1;
}

/* Child side, inside the new network namespace: a listening socket on the
 * loopback address of FAMILY, non-blocking, for the host to accept on. */
static int make_listener(uint32_t family, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback_address(family, port, &ss);
	int one = 1;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (family == NONET_FAMILY_IPV6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
		return close_keeping_errno(fd);
	return fd;
}

#define MAX_INSIDE_SOCKETS (2 * NONET_MAX_FORWARDS + 2 * NONET_MAX_NAMESERVERS)
static int inside_fds[MAX_INSIDE_SOCKETS];
static struct nonet_listener inside_described[MAX_INSIDE_SOCKETS];
static size_t n_inside;

static void keep_for_host(int fd, uint32_t kind, uint32_t index, uint32_t family)
{
	inside_fds[n_inside] = fd;
	inside_described[n_inside].kind = kind;
	inside_described[n_inside].index = index;
	inside_described[n_inside].family = family;
	n_inside++;
}

static void close_inside_sockets(void)
{
	size_t i;

	for (i = 0; i < n_inside; i++)
		close(inside_fds[i]);
	n_inside = 0;
}

/* Child side, inside the new network namespace: each nameserver of the
 * host's answers inside, over UDP and TCP, on sockets the host reads.
 * A nameserver of a family the kernel lacks is left out: the command
 * cannot reach it either.  On failure, *failed says which. */
static int make_dns_sockets(size_t *failed)
{
	size_t i;

	for (i = 0; i < n_nameservers; i++) {
		const struct nonet_address *ns = &nameservers[i];
		uint32_t family = ns->family == AF_INET6 ? NONET_FAMILY_IPV6 : NONET_FAMILY_IPV4;
		int udp, tcp;

		*failed = i;
		if (!is_loopback(ns) && route_locally(ns) < 0) {
			if (ns->family == AF_INET6 && (errno == EAFNOSUPPORT || errno == EACCES))
				continue;
			return -1;
		}
		udp = bind_dns_socket(ns, SOCK_DGRAM);
		if (udp < 0 && ns->family == AF_INET6 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL))
			continue;
		/* The same address listed twice: its sockets are already made. */
		if (udp < 0 && errno == EADDRINUSE)
			continue;
		if (udp < 0)
			return -1;
		keep_for_host(udp, NONET_SOCKET_DNS_UDP, (uint32_t)i, family);
		tcp = bind_dns_socket(ns, SOCK_STREAM);
		if (tcp < 0)
			return -1;
		keep_for_host(tcp, NONET_SOCKET_DNS_TCP, (uint32_t)i, family);
	}
	return 0;
}

/* Child side: one listener per forwarded port and address family, sent to
 * the host in one message with the DNS sockets.  The child keeps none of
 * them: the command sees none.  A kernel without IPv6 gets IPv4 listeners
 * only.  On failure, errno is set and *failed_port says which port. */
static int send_listeners(uint16_t *failed_port)
{
	static union {
		char buf[CMSG_SPACE(sizeof inside_fds)];
		struct cmsghdr align;
	} control;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cmsg;
	size_t i;
	int rc = -1;

	for (i = 0; i < n_forward; i++) {
		uint32_t family;

		for (family = NONET_FAMILY_IPV4; family <= NONET_FAMILY_IPV6; family += 2) {
			int fd = make_listener(family, forward_ports[i]);

			if (fd < 0 && family == NONET_FAMILY_IPV6 &&
			    (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL))
				continue;
			if (fd < 0) {
				*failed_port = forward_ports[i];
				return -1;
			}
			keep_for_host(fd, NONET_SOCKET_FORWARD, (uint32_t)i, family);
		}
	}

	memset(&msg, 0, sizeof msg);
	iov.iov_base = inside_described;
	iov.iov_len = n_inside * sizeof inside_described[0];
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	if (n_inside > 0) {
		msg.msg_controllen = CMSG_SPACE(n_inside * sizeof(int));
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(n_inside * sizeof(int));
		memcpy(CMSG_DATA(cmsg), inside_fds, n_inside * sizeof(int));
	} else {
		/* Nothing to hand over: an empty message still says so. */
		msg.msg_control = NULL;
	}
	while ((rc = (int)sendmsg(ctrl_fd, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (rc >= 0)
		rc = 0;
	else
		*failed_port = 0;
	return rc;
}

/* Child side: one byte from the host on the control socket. */
static int wait_for_host(void)
{
	char c;
	ssize_t n;

	do
		n = recv(ctrl_fd, &c, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		return 0;
	if (n == 0)
		errno = ECANCELED;
	return -1;
}

/* Helper side: close every descriptor but KEEP (the command's stdio, the
 * status pipe).  close_range() needs Linux 5.9; older kernels get a loop. */
static void close_all_but(int keep)
{
	int fd;

	if ((keep == 0 || syscall(SYS_close_range, 0u, (unsigned)keep - 1, 0u) == 0) &&
	    syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0)
		return;
	for (fd = 0; fd < 65536; fd++) {
		if (fd != keep)
			close(fd);
	}
}

/* Helper side: a socket of FAMILY whose connect() to a published port
 * inside has begun; the host waits for it to complete.  With nothing
 * listening yet, connect() may pick the destination port as its source and
 * connect the socket to itself (a TCP simultaneous open), taking the
 * command's port: such a socket is dropped and another one tried.  (Binding
 * the source port first would avoid that, but a bound port cannot be reused
 * while in TIME_WAIT, and many short connections would use them all up.) */
static int connect_inside(uint32_t family, uint16_t port)
{
	struct sockaddr_storage ss, source;
	socklen_t len = loopback_address(family, port, &ss);
	int attempt;

	for (attempt = 0; attempt < 4; attempt++) {
		socklen_t source_len = sizeof source;
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
			return close_keeping_errno(fd);
		/* sin_port and sin6_port are at the same offset. */
		if (getsockname(fd, (struct sockaddr *)&source, &source_len) == 0 &&
		    ((struct sockaddr_in *)&source)->sin_port == htons(port)) {
			close(fd);
			continue;
		}
		return fd;
	}
	errno = ECONNREFUSED;
	return -1;
}

static int send_reply(uint32_t id, int err, int fd)
{
	struct nonet_connect_reply reply = { NONET_STATUS_MAGIC, id, err, 0 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { &reply, sizeof reply };
	struct msghdr msg;
	ssize_t n;

	memset(&msg, 0, sizeof msg);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *cmsg;

		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof control.buf;
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	do
		n = sendmsg(ctrl_fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : 0;
}

/* The --publish helper: stays in the namespace and makes one socket per
 * request of the host, to the published ports only.  It has no capabilities,
 * cannot be traced, holds nothing of the command's and ends with the
 * launcher (parent-death signal) or when the host closes its end.
 * Never returns. */
static void run_helper(pid_t parent)
{
	struct cap_header header = { CAPABILITY_VERSION_3, 0 };
	struct cap_data none[2];
	sigset_t all;

	sigfillset(&all);
	(void)sigprocmask(SIG_SETMASK, &all, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
		_exit(EXIT_NONET_FAILED);
	close_all_but(ctrl_fd);
	memset(none, 0, sizeof none);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || syscall(SYS_capset, &header, none) < 0)
		_exit(EXIT_NONET_FAILED);
	(void)prctl(PR_SET_NAME, "nonet-publish", 0, 0, 0);

	for (;;) {
		struct nonet_connect_request request;
		ssize_t n = recv(ctrl_fd, &request, sizeof request, 0);
		int fd = -1, err = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		if ((size_t)n != sizeof request || request.magic != NONET_STATUS_MAGIC ||
		    request.index >= n_publish ||
		    (request.family != NONET_FAMILY_IPV4 && request.family != NONET_FAMILY_IPV6))
			err = EINVAL;
		else if ((fd = connect_inside(request.family, publish_ports[request.index])) < 0)
			err = errno;
		if (send_reply(request.id, err, fd) < 0)
			_exit(0);
		if (fd >= 0)
			close(fd);
	}
}

/* Child side: start the helper as a sibling of the child, not its child:
 * the command must not see it among its children.  Returns its pid. */
static pid_t start_helper(pid_t parent)
{
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);

	if (pid == 0)
		run_helper(parent);
	return pid;
}

/* Child side, after the sockets are made (the DNS sockets' sysctls and
 * routes are written through /proc/sys): the mount namespace that hides
 * the host's resolver sockets and makes the kernel's settings read-only.
 * Returns -1, or which mount failed (0: the namespace itself), errno set. */
static int isolate_mounts(void)
{
	size_t i;

	if (enter_mount_namespace() < 0)
		return 0;
	for (i = 0; i < n_hidden; i++) {
		if (hide_path(hidden_paths[i]) < 0)
			return (int)i + 1;
	}
	for (i = 0; i < n_read_only; i++) {
		/* /proc/sys is read-only for a root caller only: no nested
		 * user namespace either (netns.c), written while it still
		 * can be. */
		if (strcmp(read_only_paths[i], "/proc/sys") == 0 && forbid_user_namespaces() < 0)
			return (int)(n_hidden + i) + 1;
		if (make_read_only(read_only_paths[i]) < 0)
			return (int)(n_hidden + i) + 1;
	}
	return -1;
}

/* Child side: true when the first bytes of PATH hold a NUL: a program, not a
 * script (bash's check before it runs a file as one). */
static int looks_binary(const char *path)
{
	char head[128];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 1;
	do
		n = read(fd, head, sizeof head);
	while (n < 0 && errno == EINTR);
	close(fd);
	return n < 0 || memchr(head, '\0', (size_t)(n > 0 ? n : 0)) != NULL;
}

/* Child side, the last step: execve(PATH).  A file the kernel cannot
 * execute (ENOEXEC) that is text, a script without "#!", runs with
 * /bin/sh as execvp(3) runs it: /bin/sh PATH ARG...  Returns the errno. */
static int exec_command(char *path, char **argv)
{
	char **sh_argv;
	size_t argc = 0;

	execve(path, argv, environ);
	if (errno != ENOEXEC)
		return errno;
	if (looks_binary(path))
		return ENOEXEC;
	while (argv[argc] != NULL)
		argc++;
	sh_argv = calloc(argc + 2, sizeof *sh_argv);
	if (sh_argv == NULL)
		return ENOEXEC;
	sh_argv[0] = "/bin/sh";
	sh_argv[1] = path;
	if (argc > 1)
		memcpy(sh_argv + 2, argv + 1, (argc - 1) * sizeof *sh_argv);
	execve("/bin/sh", sh_argv, environ);
	free(sh_argv);
	return ENOEXEC; /* the file's problem, not /bin/sh's */
}

/* Child side, last before execve(): nonet's seccomp filter (filter.c),
 * on every run.  The base filter is already in place (installed while the
 * host was starting, see run_child); its failure is told here, where the
 * host expects it.  With --report or --allow, the mode's filter goes on
 * top of it (the kernel applies both, the stricter result winning, and the
 * mode's filter refuses all that the base one does, with the same errno),
 * its listener's number goes to the host, and the child waits until the
 * host holds it (it takes it with pidfd_getfd(2)); the child's own copy
 * then closes. */
static void start_filter(void)
{
	int diag, fd;

	/* No record on success: STEP_EXEC follows at once. */
	if (base_filter_error != 0) {
		report(STEP_FILTER, base_filter_error, (int)FILTER_BASE);
		_exit(EXIT_NONET_FAILED);
	}
	if (!filter_has_listener(filter_mode))
		return;
	diag = open_namespace_diag();
	fd = filter_install(filter_mode);
	if (fd < 0) {
		report(STEP_FILTER, errno, (int)filter_mode);
		_exit(EXIT_NONET_FAILED);
	}
	report(STEP_REPORT, 0, fd);
	if (wait_for_report_listener(diag) < 0) {
		report(STEP_REPORT, errno, -1);
		_exit(EXIT_NONET_FAILED);
	}
	close(fd);
	if (diag >= 0)
		close(diag);
}

/* Runs in the child, in the new user namespace.  Never returns. */
static void run_child(pid_t parent)
{
	char **run_argv = NULL;
	int run_argc = 0, first, err;

	restore_signal_dispositions();
	/* The command must not outlive nonet: the launcher dies with the host,
	 * and this signal, kept across execve(), takes the command with it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
		_exit(EXIT_NONET_FAILED);

	/* The network namespace first, while the host writes the id maps and
	 * decides what to run: the child's capabilities in its user namespace
	 * do not wait for the maps.  The caller's namespace, still this
	 * one's, says first which ports need privilege outside. */
	outside_port_start = read_unprivileged_port_start();
	if (unshare(CLONE_NEWNET) < 0) {
		report(STEP_UNSHARE_NET, errno, 0);
		_exit(EXIT_NONET_FAILED);
	}
	report(STEP_UNSHARE_NET, 0, 0);

	if (bring_loopback_up() < 0) {
		report(STEP_LOOPBACK_UP, errno, 0);
		_exit(EXIT_NONET_FAILED);
	}
	report(STEP_LOOPBACK_UP, 0, 0);
	keep_unprivileged_port_start(outside_port_start, may_bind_any_port);

	/* The bounding set and securebits act at execve() only: the child
	 * keeps its capabilities for the steps below, and the command cannot
	 * get them back (nor can the --publish helper, which gives up its own). */
	if (drop_capabilities() < 0) {
		report(STEP_DROP_CAPS, errno, 0);
		_exit(EXIT_NONET_FAILED);
	}
	report(STEP_DROP_CAPS, 0, 0);

	/* The base filter now, not before execve(): building it (the kernel
	 * compiles it) takes a few hundred microseconds on a VM, which here
	 * overlap the host's start-up instead of delaying the command.  It
	 * allows all of the set-up below. */
	base_filter_error = filter_install(FILTER_BASE) < 0 ? errno : 0;

	if (wait_for_run(&run_argc, &run_argv) < 0) {
		report(STEP_WAIT_MAPS, errno, 0);
		_exit(EXIT_NONET_FAILED);
	}
	first = parse_options(run_argc, run_argv, 0);
	if (first < 0 || run_argc - first < 2) {
		report(STEP_WAIT_MAPS, EPROTO, 0);
		_exit(EXIT_NONET_FAILED);
	}
	report(STEP_WAIT_MAPS, 0, (int)getuid());
	/* Best effort, as above: without it only ping's raw sockets work.  The
	 * group must be mapped by now. */
	(void)allow_ping(getgid());

	/* --allow: addresses on "lo" for getaddrinfo(AI_ADDRCONFIG).  A
	 * failure is told as lo's, with which -a (from 1). */
	for (size_t i = 0; i < n_loopback_addresses; i++) {
		if (add_loopback_address(&loopback_addresses[i]) < 0) {
			report(STEP_LOOPBACK_UP, errno, (int)i + 1);
			_exit(EXIT_NONET_FAILED);
		}
	}

	if (n_nameservers > 0) {
		size_t failed = 0;

		if (make_dns_sockets(&failed) < 0) {
			report(STEP_DNS, errno, (int)failed);
			_exit(EXIT_NONET_FAILED);
		}
		report(STEP_DNS, 0, (int)n_nameservers);
	}

	{
		uint16_t port = 0;

		if (send_listeners(&port) < 0) {
			report(STEP_LISTEN, errno, port);
			_exit(EXIT_NONET_FAILED);
		}
		close_inside_sockets();
		report(STEP_LISTEN, 0, (int)n_forward);
		/* With forwards, the host answers once it holds the listeners; if
		 * it cannot, the command must not start.  The DNS sockets alone
		 * need no wait: queries queue in them until the host reads. */
		if (n_forward > 0 && wait_for_host() < 0) {
			report(STEP_LISTEN, errno, 0);
			_exit(EXIT_NONET_FAILED);
		}
	}

	if (n_hidden > 0 || n_read_only > 0) {
		int failed = isolate_mounts();

		if (failed >= 0) {
			report(STEP_MOUNTS, errno, failed);
			_exit(EXIT_NONET_FAILED);
		}
		report(STEP_MOUNTS, 0, 0);
	}

	if (n_publish > 0) {
		pid_t helper = start_helper(parent);

		if (helper < 0) {
			report(STEP_HELPER, errno, 0);
			_exit(EXIT_NONET_FAILED);
		}
		report(STEP_HELPER, 0, (int)helper);
		/* The parent reaps the helper once the command has ended. */
		*helper_pid_slot = helper;
	}
	/* Last, so that nothing of nonet's own set-up is seen as an attempt. */
	start_filter();
	close(ctrl_fd);

	/* A signal that arrived during set-up is delivered here, with the
	 * caller's disposition, before anything of the command runs. */
	(void)sigprocmask(SIG_SETMASK, &original_mask, NULL);

	report(STEP_EXEC, 0, 0);
	err = exec_command(run_argv[first], run_argv + first + 1);
	report(STEP_EXEC, err, 0);
	/* The shell's convention (and util-linux's errexec): 127 not found,
	 * 126 found but not runnable. */
	_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

/* Parent side, after the command ended: the child wrote the helper's pid
 * (before its execve) if it started one; end the helper and reap it, so
 * that nothing of nonet's is left in the namespace when nonet exits. */
static void end_helper(void)
{
	pid_t helper = *helper_pid_slot;

	/* Reaped already if it died: its pid may be another's now. */
	if (helper <= 0 || !lifetime_is_child(helper))
		return;
	(void)kill(helper, SIGKILL);
	while (waitpid(helper, NULL, __WALL) < 0 && errno == EINTR)
		;
}

static void usage(void)
{
	static const char msg[] =
		"nonet-launcher: internal helper of nonet(1); run 'nonet COMMAND' instead\n";

	(void)write_all(STDERR_FILENO, msg, sizeof msg - 1);
	exit(EXIT_NONET_FAILED);
}

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* The run message's options, from ARGV[FIRST] up to PATH; returns the
 * index of PATH, or -1 when the host sent something this launcher does
 * not know (the two do not match). */
static int parse_options(int argc, char **argv, int first)
{
	enum filter_mode mode;
	int i = first;

	while (i + 1 < argc && argv[i][0] == '-') {
		const char *value = argv[i + 1];

		if (strcmp(argv[i], "-f") == 0 && n_forward < NONET_MAX_FORWARDS &&
		    parse_port(value, &forward_ports[n_forward]) == 0)
			n_forward++;
		else if (strcmp(argv[i], "-p") == 0 && n_publish < NONET_MAX_FORWARDS &&
			 parse_port(value, &publish_ports[n_publish]) == 0)
			n_publish++;
		else if (strcmp(argv[i], "-n") == 0 && n_nameservers < NONET_MAX_NAMESERVERS &&
			 parse_address(value, &nameservers[n_nameservers]) == 0)
			n_nameservers++;
		else if (strcmp(argv[i], "-a") == 0 && n_loopback_addresses < MAX_LOOPBACK_ADDRESSES &&
			 parse_address(value, &loopback_addresses[n_loopback_addresses]) == 0)
			n_loopback_addresses++;
		else if (strcmp(argv[i], "-H") == 0 && value[0] == '/' && n_hidden < NONET_MAX_MOUNTS)
			hidden_paths[n_hidden++] = value;
		else if (strcmp(argv[i], "-r") == 0 && filter_mode_parse(value, &mode) == 0)
			filter_mode = mode;
		else if (strcmp(argv[i], "-o") == 0 && value[0] == '/' && n_read_only < NONET_MAX_MOUNTS)
			read_only_paths[n_read_only++] = value;
		else
			return -1;
		i += 2;
	}
	return i;
}

int main(int argc, char **argv)
{
	pid_t self = getpid();
	pid_t pid;
	int status;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("nonet-launcher %s\n", NONET_VERSION);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "--print-filter") == 0) {
		enum filter_mode mode;

		if (filter_mode_parse(argv[2], &mode) < 0)
			usage();
		return filter_print(mode, STDOUT_FILENO) == 0 ? 0 : EXIT_NONET_FAILED;
	}

	/* 1. Arguments: the three descriptors the host handed over. */
	if (argc != 4)
		usage();
	status_fd = parse_fd(argv[1]);
	go_fd = parse_fd(argv[2]);
	ctrl_fd = parse_fd(argv[3]);
	if (status_fd < 0 || go_fd < 0 || ctrl_fd < 0 ||
	    status_fd == go_fd || ctrl_fd == status_fd || ctrl_fd == go_fd)
		usage();
	/* Neither pipe nor the control socket may reach the command. */
	if (fcntl(status_fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(go_fd, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(ctrl_fd, F_SETFD, FD_CLOEXEC) < 0)
		usage();
	host_uid = geteuid();
	host_gid = getegid();
	may_bind_any_port = holds_bind_service();

	/* 2. Signals, and learn of the host's death (even by SIGKILL), so that
	 * nothing outlives nonet.  The slot for a --publish helper's pid is
	 * made now: only the run message says whether there will be one. */
	helper_pid_slot = mmap(NULL, sizeof *helper_pid_slot, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (helper_pid_slot == MAP_FAILED || reset_libc_internal_signals() < 0 ||
	    install_forwarders() < 0 || lifetime_prepare() < 0) {
		report(STEP_START, errno, 0);
		return EXIT_NONET_FAILED;
	}
	report(STEP_START, 0, 0);

	/* 3. The child: fork semantics, in a new user namespace. */
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | lifetime_exit_signal(), NULL, NULL, NULL, NULL);
	if (pid < 0) {
		report(STEP_CLONE, errno, 0);
		return EXIT_NONET_FAILED;
	}
	if (pid == 0)
		run_child(self);

	/* 4. Hand the pid to the host; from here on the child reports alone,
	 * and the host sees end-of-file once the command has started.  What
	 * only the child needs goes first: the command, soon its child, lists
	 * this process's descriptors as nonet's own. */
	close(go_fd);
	close(ctrl_fd);
	report(STEP_CLONE, 0, (int)pid);
	close(status_fd);

	/* 5. Stay until the command ends, stopping and continuing with it,
	 * and end the same way; the --publish helper, also a child of this
	 * process, ends with it, and so does anything the command left. */
	status = lifetime_supervise(pid, forwarded_signals, N_FORWARDED);
	end_helper();
	lifetime_end();
	return status;
}
