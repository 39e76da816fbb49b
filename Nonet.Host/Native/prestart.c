/*
 * Linked into the NativeAOT host (see Nonet.Host.csproj): starts the
 * launcher before the .NET runtime does (issue 15).
 *
 * The runtime takes about 1.5 ms to start; the launcher, its clone() and
 * the child's new network namespace take about as long again, and need
 * nothing the runtime knows.  So when nonet is run as 'nonet COMMAND ...'
 * (argv[1] not an option), this constructor starts the default launcher at
 * once, with the two pipes and the control socket, and the child sets up
 * "lo" while the runtime starts.  The launcher's child then waits for the
 * managed host, which resolves the command, reads the configuration, writes
 * the id maps and sends the run message (launcher/status.h); see
 * Launch/Prestart.cs.  Nothing is decided here: the host may still not use
 * this launcher (another one configured, the command not found), and then
 * ends it (nonet_prestart_cancel).
 *
 * The launcher gets what nonet was started with: environment, working
 * directory, limits, descriptors and signal mask (the one saved in
 * early_signals.c, whose constructor runs first), SIGPIPE at its default
 * as Launch/NamespaceRunner.cs starts one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int nonet_early_signal_mask(sigset_t *original, sigset_t *held);
int nonet_spawn_launcher(const char *path, int stdout_fd, int *fds, pid_t *pid);
const char *nonet_prestarted_path(void);
int nonet_prestarted(int *fds, int *pid);
void nonet_prestart_cancel(void);

#define LAUNCHER_NAME "nonet-launcher"

static struct {
	pid_t pid;      /* 0: none */
	int status;     /* the read end of the status pipe */
	int go;         /* the write end of the go pipe */
	int ctrl;       /* the host's end of the control socket */
	char path[PATH_MAX];
} launcher;

/* The defaults of Launch/LauncherLocator.cs, in its order: beside the
 * executable, then ../libexec/nonet/ from its directory.  The host uses
 * this launcher only when it chose the same path. */
static int default_launcher(char *path, size_t size)
{
	char exe[PATH_MAX];
	char *slash;
	struct stat st;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

	if (n <= 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	if ((size_t)snprintf(path, size, "%s/%s", exe, LAUNCHER_NAME) < size &&
	    stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
		return 0;
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	if ((size_t)snprintf(path, size, "%s/libexec/nonet/%s", exe, LAUNCHER_NAME) < size &&
	    stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
		return 0;
	return -1;
}

static void close_pair(int *pair)
{
	close(pair[0]);
	close(pair[1]);
}

/* posix_spawn()s the launcher with its three descriptors, SIGPIPE at its
 * default and the signal mask nonet was started with (the one
 * early_signals.c saved, or the thread's own); with STDOUT_FD >= 0 (the
 * self-test), that fd is its stdout.  0, with fds[] the host's ends
 * (status to read, go to write, control) and *pid; else a positive errno
 * from posix_spawn, or the negated errno of pipe2()/socketpair(), and
 * nothing left open. */
int nonet_spawn_launcher(const char *path, int stdout_fd, int *fds, pid_t *pid)
{
	int status[2], go[2], ctrl[2];
	char numbers[3][16];
	char *argv[] = { (char *)path, numbers[0], numbers[1], numbers[2], NULL };
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t original, held, defaults;
	int rc;

	if (pipe2(status, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(go, O_CLOEXEC) < 0) {
		rc = -errno;
		close_pair(status);
		return rc;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctrl) < 0) {
		rc = -errno;
		close_pair(status);
		close_pair(go);
		return rc;
	}
	snprintf(numbers[0], sizeof numbers[0], "%d", status[1]);
	snprintf(numbers[1], sizeof numbers[1], "%d", go[0]);
	snprintf(numbers[2], sizeof numbers[2], "%d", ctrl[1]);
	if (nonet_early_signal_mask(&original, &held) < 0)
		(void)pthread_sigmask(SIG_SETMASK, NULL, &original);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	rc = posix_spawnattr_init(&attr);
	if (rc == 0 && (rc = posix_spawn_file_actions_init(&actions)) != 0)
		posix_spawnattr_destroy(&attr);
	if (rc == 0) {
		/* dup2 onto itself clears close-on-exec in the launcher only:
		 * these three ends reach it and nothing else does. */
		if ((rc = posix_spawnattr_setsigmask(&attr, &original)) == 0 &&
		    (rc = posix_spawnattr_setsigdefault(&attr, &defaults)) == 0 &&
		    (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0 &&
		    (rc = posix_spawn_file_actions_adddup2(&actions, status[1], status[1])) == 0 &&
		    (rc = posix_spawn_file_actions_adddup2(&actions, go[0], go[0])) == 0 &&
		    (rc = posix_spawn_file_actions_adddup2(&actions, ctrl[1], ctrl[1])) == 0 &&
		    (stdout_fd < 0 || (rc = posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1)) == 0))
			rc = posix_spawn(pid, path, &actions, &attr, argv, environ);
		posix_spawn_file_actions_destroy(&actions);
		posix_spawnattr_destroy(&attr);
	}
	close(status[1]);
	close(go[0]);
	close(ctrl[1]);
	if (rc != 0) {
		close(status[0]);
		close(go[1]);
		close(ctrl[0]);
		return rc;
	}
	fds[0] = status[0];
	fds[1] = go[1];
	fds[2] = ctrl[0];
	return 0;
}

/* After early_signals.c's constructor (101), which saves the mask. */
__attribute__((constructor(102))) static void prestart_launcher(int argc, char **argv)
{
	int fds[3];
	pid_t pid;

	/* 'nonet COMMAND': options, --help, --version and the self-test's
	 * probe start no launcher; nor does a launcher set in the environment
	 * (the host reads that one itself). */
	if (argc < 2 || argv[1][0] == '-' || argv[1][0] == '\0' || getenv("NONET_LAUNCHER") != NULL)
		return;
	if (default_launcher(launcher.path, sizeof launcher.path) < 0)
		return;
	/* A launcher that cannot start here is started again by the host,
	 * which then says why it failed. */
	if (nonet_spawn_launcher(launcher.path, -1, fds, &pid) != 0)
		return;
	launcher.pid = pid;
	launcher.status = fds[0];
	launcher.go = fds[1];
	launcher.ctrl = fds[2];
}

/* For Launch/Prestart.cs: the prestarted launcher's path, or NULL. */
const char *nonet_prestarted_path(void)
{
	return launcher.pid > 0 ? launcher.path : NULL;
}

/* For Launch/Prestart.cs: 1 and the launcher's descriptors (status, go,
 * control) and pid, now the host's; else 0. */
int nonet_prestarted(int *fds, int *pid)
{
	if (launcher.pid <= 0)
		return 0;
	fds[0] = launcher.status;
	fds[1] = launcher.go;
	fds[2] = launcher.ctrl;
	*pid = launcher.pid;
	launcher.pid = 0;
	return 1;
}

/* Ends a launcher the host did not take, and reaps it: with the go pipe
 * closed its child ends without running anything, and the launcher, which
 * reaps it, with it.  The status pipe stays open until both are gone (end
 * of file): closed earlier, the launcher could die of SIGPIPE writing
 * CLONE, and its child would be left to whoever reaps orphans.  Should the
 * pipe stay silent for 2 s (a stopped launcher), the launcher is killed,
 * and its child dies of its parent-death signal.  Nothing of it is left when nonet
 * exits, and it says nothing. */
void nonet_prestart_cancel(void)
{
	pid_t pid = launcher.pid;
	char records[256];
	struct pollfd status = { .fd = launcher.status, .events = POLLIN };
	int timeout_ms = 2000;

	if (pid <= 0)
		return;
	launcher.pid = 0;
	close(launcher.go);
	close(launcher.ctrl);
	for (;;) {
		int ready = poll(&status, 1, timeout_ms);

		if (ready == 0) {
			(void)kill(pid, SIGKILL);
			timeout_ms = -1;
		} else if (ready < 0 ? errno != EINTR : read(launcher.status, records, sizeof records) <= 0) {
			break;
		}
	}
	close(launcher.status);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}
