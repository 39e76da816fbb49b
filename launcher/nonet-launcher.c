/*
 * nonet-launcher: the small static helper that nonet(1) starts.
 *
 *   nonet-launcher STATUS_FD GO_FD PATH ARGV0 [ARG...]
 *   nonet-launcher --version
 *
 * It is not meant to be run by hand.  The nonet host resolves PATH, opens
 * the two pipes and starts this program.  The launcher then:
 *
 *   1. clones a child into a new user namespace; the child blocks on GO_FD;
 *   2. tells the host the child's pid, so that the host (in the caller's
 *      namespace) writes /proc/PID/setgroups, uid_map and gid_map;
 *   3. the child, released, creates a network namespace, brings "lo" up,
 *      gives up every capability and execs PATH;
 *   4. the parent stays behind: it forwards the host's signals to the
 *      command and exits with the command's status.
 *
 * Every step's outcome goes to the host over STATUS_FD (see status.h); the
 * host owns the wording of every message a user sees.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* The signals nonet passes on to the command; README.md lists the same. */
static const int forwarded_signals[] = {
	SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
};
#define N_FORWARDED (sizeof forwarded_signals / sizeof forwarded_signals[0])

static int status_fd = -1;
static int go_fd = -1;
static volatile sig_atomic_t child_pid;
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

/* Parent side: a user's signal, passed on by the host, goes to the command.
 * Signals from the kernel or the terminal (si_code > 0) reached the whole
 * process group, the command included, so passing them on would double them. */
static void forward_signal(int sig, siginfo_t *si, void *context)
{
	int saved_errno = errno;

	(void)context;
	if (si->si_code <= 0 && si->si_pid == getppid() && child_pid > 0)
		(void)kill(child_pid, sig);
	errno = saved_errno;
}

/* Parent side, before clone: hold the forwarded signals until the child
 * exists, and leave alone any the caller ignores (nohup, background jobs). */
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
		struct sigaction sa;

		if (sigaction(forwarded_signals[i], NULL, &original_actions[i]) < 0)
			return -1;
		if (original_actions[i].sa_handler == SIG_IGN)
			continue;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = forward_signal;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigfillset(&sa.sa_mask);
		if (sigaction(forwarded_signals[i], &sa, NULL) < 0)
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

/* Child side: block until the host has written uid_map and gid_map.  EOF
 * means the host gave up (or died): the command must not run. */
static int wait_for_maps(void)
{
	char c;
	ssize_t n;

	do
		n = read(go_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	close(go_fd);
	if (n == 1)
		return 0;
	if (n == 0)
		errno = ECANCELED;
	return -1;
}

/* Child side, inside the new network namespace: a fresh namespace has only
 * "lo", and it is down.  Raising it gives 127.0.0.1/8 and ::1. */
static int bring_loopback_up(void)
{
	struct ifreq ifr;
	int fd, saved_errno;

	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, "lo", sizeof "lo");
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		goto fail;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		goto fail;
	close(fd);
	return 0;
fail:
	saved_errno = errno;
	close(fd);
	errno = saved_errno;
	return -1;
}

/* Child side: the command must not be able to reconfigure the namespace.
 * A non-root caller loses every capability at execve() anyway; for root
 * (uid 0 inside), emptying the bounding set and locking SECBIT_NOROOT stop
 * execve() from granting them again.  See capabilities(7). */
static int drop_capabilities(void)
{
	int cap;

	for (cap = 0; cap < 64; cap++) {
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

/* Runs in the child, in the new user namespace.  Never returns. */
static void run_child(pid_t parent, char *path, char **argv)
{
	int err;

	restore_signal_dispositions();
	/* The command must not outlive nonet: the launcher dies with the host,
	 * and this signal, kept across execve(), takes the command with it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
		_exit(EXIT_NONET_FAILED);

	if (wait_for_maps() < 0) {
		report(STEP_WAIT_MAPS, errno, 0);
		_exit(EXIT_NONET_FAILED);
	}
	report(STEP_WAIT_MAPS, 0, (int)getuid());

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

	if (drop_capabilities() < 0) {
		report(STEP_DROP_CAPS, errno, 0);
		_exit(EXIT_NONET_FAILED);
	}
	report(STEP_DROP_CAPS, 0, 0);

	/* A signal that arrived during set-up is delivered here, with the
	 * caller's disposition, before anything of the command runs. */
	(void)sigprocmask(SIG_SETMASK, &original_mask, NULL);

	report(STEP_EXEC, 0, 0);
	execve(path, argv, environ);
	err = errno;
	report(STEP_EXEC, err, 0);
	/* The shell's convention (and util-linux's errexec): 127 not found,
	 * 126 found but not runnable. */
	_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

static int wait_for_child(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return EXIT_NONET_FAILED;
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return EXIT_NONET_FAILED;
}

static void usage(void)
{
	static const char msg[] =
		"nonet-launcher: internal helper of nonet(1); run 'nonet COMMAND' instead\n";

	(void)write_all(STDERR_FILENO, msg, sizeof msg - 1);
	exit(EXIT_NONET_FAILED);
}

int main(int argc, char **argv)
{
	pid_t self = getpid();
	pid_t pid;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("nonet-launcher %s\n", NONET_VERSION);
		return 0;
	}

	/* 1. Arguments: two inherited pipe ends, then what to execute. */
	if (argc < 5)
		usage();
	status_fd = parse_fd(argv[1]);
	go_fd = parse_fd(argv[2]);
	if (status_fd < 0 || go_fd < 0 || status_fd == go_fd)
		usage();
	/* Neither pipe may reach the command. */
	if (fcntl(status_fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(go_fd, F_SETFD, FD_CLOEXEC) < 0)
		usage();

	/* 2. Die with the host, so nothing outlives a SIGKILLed nonet. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || reset_libc_internal_signals() < 0 ||
	    install_forwarders() < 0) {
		report(STEP_START, errno, 0);
		return EXIT_NONET_FAILED;
	}
	report(STEP_START, 0, 0);

	/* 3. The child: fork semantics, in a new user namespace. */
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		report(STEP_CLONE, errno, 0);
		return EXIT_NONET_FAILED;
	}
	if (pid == 0)
		run_child(self, argv[3], argv + 4);

	/* 4. Hand the pid to the host; from here on the child reports alone,
	 * and the host sees end-of-file once the command has started. */
	child_pid = pid;
	report(STEP_CLONE, 0, (int)pid);
	close(go_fd);
	close(status_fd);
	(void)sigprocmask(SIG_SETMASK, &original_mask, NULL);

	/* 5. Stay until the command ends, and end the same way. */
	return wait_for_child(pid);
}
