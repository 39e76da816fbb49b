/*
 * lifetime.c: nothing outlives nonet, and job control (see lifetime.h).
 *
 * Who ends what:
 *
 *   - the command exits: the launcher (parent side, a child subreaper, so
 *     every orphan of the command becomes its child) ends what is left;
 *   - the host dies (even of SIGKILL): the launcher gets DEATH_SIGNAL (its
 *     parent-death signal) and does the same, the command included;
 *   - the launcher dies (even of SIGKILL): the command dies of its own
 *     parent-death signal (SIGKILL, set in run_child), and the host, a
 *     child subreaper too, gets the orphans and ends them the same way
 *     (Nonet.Host/Launch/Leftovers.cs).
 *
 * "Left" means a descendant of the launcher: its children are the command's
 * orphans, and once a child dies, its own children become the launcher's.
 * No PID namespace is used: the command keeps its pid and sees the host's
 * processes.  Processes are found in /proc and signalled through their
 * /proc/PID directory, a pidfd (pidfd_send_signal(2), Linux 5.1); the
 * launcher's children keep their pids until it reaps them anyway.
 *
 * The cost on a command that leaves nothing behind is one waitid(): the
 * command and the --publish helper are "clone" children (exit signal
 * EXIT_SIGNAL, not SIGCHLD), and the kernel gives an orphan that reaches the
 * subreaper SIGCHLD, so "no child waitable without __WALL" means nothing is
 * left.  (A process per run inside the namespace to cover the launcher's
 * death was measured at 3-4% of the CPU time of "nonet true".)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lifetime.h"

#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef __WALL
#define __WALL 0x40000000
#endif

/* The launcher's parent-death signal: catchable, and
 * never one the host passes on.  Always blocked, taken with sigwaitinfo(). */
#define DEATH_SIGNAL (SIGRTMIN + 1)
/* The child's exit signal: anything but SIGCHLD makes it a "clone" child (see
 * above); SIGURG is ignored by default, should it ever be unblocked. */
#define EXIT_SIGNAL SIGURG

/* How long SIGKILL may take before the launcher gives up (a process stuck in
 * the kernel, on a dead NFS server say). */
#define KILL_TIMEOUT_MS 5000
/* How long stopping every descendant may take before they are killed
 * anyway (one in the kernel stops only when it leaves it). */
#define STOP_TIMEOUT_MS 3000
/* While waiting, how often to look again: a process that becomes the
 * launcher's child when its parent dies says nothing, and is sent its
 * SIGTERM at the next look. */
#define POLL_MS 20

static pid_t host_pid;
static int ending;                      /* SIGTERM sent; the grace runs */
static struct timespec grace_end;
static pid_t terminated[1024];          /* sent SIGTERM already, once is enough */
static size_t n_terminated;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long ms_of(const struct timespec *ts)
{
	return (long long)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

/* State (R, S, T, Z...) and parent of the process whose /proc directory is
 * DFD; -1 if it is gone. */
static int read_stat(int dfd, char *state, pid_t *ppid)
{
	char buf[512];
	ssize_t n;
	char *p;
	int fd = openat(dfd, "stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	do
		n = read(fd, buf, sizeof buf - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "PID (COMM) S PPID ...": COMM may hold anything, ')' included. */
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ' || p[2] == '\0' || p[3] != ' ')
		return -1;
	*state = p[2];
	*ppid = (pid_t)strtol(p + 4, NULL, 10);
	return 0;
}

static int state_of(pid_t pid, char *state, pid_t *ppid)
{
	char path[32];
	int dfd, rc;

	snprintf(path, sizeof path, "/proc/%d", (int)pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	rc = read_stat(dfd, state, ppid);
	close(dfd);
	return rc;
}

int lifetime_is_child(pid_t pid)
{
	char state;
	pid_t ppid;

	return pid > 0 && state_of(pid, &state, &ppid) == 0 && ppid == getpid();
}

/* Stopped by a signal (not by a tracer). */
static int is_stopped(pid_t pid)
{
	char state;
	pid_t ppid;

	return state_of(pid, &state, &ppid) == 0 && state == 'T';
}

/* The signal goes to the process DFD refers to, never to a successor with
 * the same pid; kill() only on kernels without pidfd_send_signal(). */
static void signal_process(int dfd, pid_t pid, int sig)
{
	if (syscall(SYS_pidfd_send_signal, dfd, sig, NULL, 0) < 0 && errno == ENOSYS)
		(void)kill(pid, sig);
}

static int was_terminated(pid_t pid)
{
	size_t i;

	for (i = 0; i < n_terminated; i++) {
		if (terminated[i] == pid)
			return 1;
	}
	if (n_terminated < sizeof terminated / sizeof terminated[0])
		terminated[n_terminated++] = pid;
	return 0;
}

/* SIGTERM to a child in STATE, once only, and SIGCONT with it if
 * stopped, so that it can act on it; nothing to a dead one, which the next
 * sweep reaps first. */
static void terminate_child(int dfd, pid_t pid, char state)
{
	if (state == 'Z' || was_terminated(pid))
		return;
	signal_process(dfd, pid, SIGTERM);
	if (state == 'T')
		signal_process(dfd, pid, SIGCONT);
}

/*
 * Every child of this process gets SIGTERM (terminate_child).  Returns how many
 * there were, the dead ones not reaped yet included: one pass over /proc is
 * not a snapshot.  A child that dies during the pass gives its children to
 * this process, and after a pid wrap they can have lower pids than it, read
 * while they were still its children.  So the pass that finds it dead must
 * not be the last: only this process reaps its children, so one of them,
 * alive or dead, is there for every descendant left.
 */
static int sweep(void)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	pid_t self = getpid();
	int found = 0;

	if (proc == NULL)
		return 0;
	while ((e = readdir(proc)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		char state;
		pid_t ppid;
		int dfd;

		if (*end != '\0' || pid <= 0)
			continue;
		dfd = openat(dirfd(proc), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			continue;
		if (read_stat(dfd, &state, &ppid) < 0 || state == 'X') {
			close(dfd);
			continue;
		}
		if (ppid == self) {
			found++;
			terminate_child(dfd, (pid_t)pid, state);
		}
		close(dfd);
	}
	closedir(proc);
	return found;
}

/* Up to MS milliseconds for one of SET, or for nothing. */
static void wait_for(const sigset_t *set, long long ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	(void)sigtimedwait(set, NULL, &ts);
}

/*
 * A child of this process that called ptrace(PTRACE_TRACEME) made it its
 * tracer: each signal it gets then stops it until the tracer says, and the
 * launcher traces nothing.  It is let go at once, with the signal passed on
 * (PTRACE_DETACH): it acts on it as if never traced, where a shell would
 * report it stopped and wait on (issue 19).  waitid() reports a tracee's
 * stops whatever the flags, as CLD_TRAPPED.
 */
static void let_go(pid_t pid, int sig)
{
	(void)ptrace(PTRACE_DETACH, pid, NULL, (void *)(intptr_t)sig);
}

/* Reaps every child that has died, and lets go of any that stopped for it
 * as a tracer. */
static void reap_dead(void)
{
	for (;;) {
		siginfo_t si;

		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | __WALL) < 0 || si.si_pid == 0)
			return;
		if (si.si_code == CLD_TRAPPED)
			let_go(si.si_pid, si.si_status);
	}
}

/*
 * The whole tree below this process, not only its children: a fork bomb
 * makes processes faster than one SIGKILL per child and look can end them,
 * and left the launcher's sweep behind (issue 19).  Stopped processes
 * cannot fork, so the tree is first stopped (SIGSTOP, pass after pass until
 * two in a row find nothing running), then killed.
 *
 * One pass reads every /proc/PID/stat (pid, parent, state), finds the
 * descendants by parent links, and signals them parents first, each through
 * its /proc/PID directory (a pidfd).  /proc is read in one pass but not at
 * one instant, so a process is signalled only once shown to be below this
 * one: its parent, read through its own directory, is this process, or a
 * descendant signalled already in this pass whose directory still names a
 * live process (or a zombie) after the child's stat was read, so that the
 * parent's pid was not yet free for another's.  Anything that cannot be
 * shown so is left for the next pass.
 */
struct proc_node {
	pid_t pid, ppid;
	char state;
	int depth;  /* 1: a child of this process, 0: not below it, -1: not known yet, -2: being walked */
	int dfd;    /* its /proc directory once shown a descendant, else -1 */
};

static struct proc_node *nodes;
static size_t n_nodes, nodes_capacity;

static int by_pid(const void *a, const void *b)
{
	pid_t x = ((const struct proc_node *)a)->pid, y = ((const struct proc_node *)b)->pid;

	return (x > y) - (x < y);
}

static struct proc_node *find_node(pid_t pid)
{
	struct proc_node key = { .pid = pid };

	return bsearch(&key, nodes, n_nodes, sizeof *nodes, by_pid);
}

/* The depth of NODE below SELF by parent links (0: not below it).  Walks up,
 * keeping the way in PATH (room for every node), to a node already known,
 * then gives each on the way its depth; a loop (a pid reused during the
 * pass) is not below. */
static int depth_of(struct proc_node *node, pid_t self, struct proc_node **path)
{
	struct proc_node *p = node;
	size_t n = 0;
	int depth;

	while (p != NULL && p->depth == -1) {
		if (p->ppid == self) {
			p->depth = 1;
			break;
		}
		p->depth = -2;
		path[n++] = p;
		p = find_node(p->ppid);
	}
	depth = p == NULL || p->depth < 0 ? 0 : p->depth;
	while (n > 0) {
		if (depth > 0)
			depth++;
		path[--n]->depth = depth;
	}
	return node->depth;
}

static int by_depth(const void *a, const void *b)
{
	const struct proc_node *x = *(struct proc_node *const *)a, *y = *(struct proc_node *const *)b;

	return (x->depth > y->depth) - (x->depth < y->depth);
}

static int is_alive(const struct proc_node *node)
{
	return node->dfd >= 0 && syscall(SYS_pidfd_send_signal, node->dfd, 0, NULL, 0) == 0;
}

/* NODE, whose stat was just read through its directory, is shown below this
 * process (its parent is this process, or PARENT, a descendant still alive
 * now): SIG to it, but SIGSTOP only if it runs, and nothing to a zombie.
 * Else its directory closes and the next pass looks again.  Counts it in
 * *RUNNING unless it is shown and stopped or dead. */
static void act_on(struct proc_node *node, const struct proc_node *parent, pid_t self,
		   int sig, int *running)
{
	if (node->ppid != self && (parent == NULL || parent->depth <= 0 || !is_alive(parent))) {
		close(node->dfd);
		node->dfd = -1;
		(*running)++;
		return;
	}
	node->depth = parent != NULL ? parent->depth + 1 : 1;
	if (node->state == 'Z' || (sig == SIGSTOP && (node->state == 'T' || node->state == 't')))
		return;
	(*running)++;
	signal_process(node->dfd, node->pid, sig);
}

static int grow_nodes(void)
{
	size_t capacity = nodes_capacity ? 2 * nodes_capacity : 1024;
	struct proc_node *grown = realloc(nodes, capacity * sizeof *nodes);

	if (grown == NULL)
		return -1;
	nodes = grown;
	nodes_capacity = capacity;
	return 0;
}

/* Up to MAX processes read in /proc, in the order the kernel lists them
 * (by pid).  Each is signalled at once when shown below this process by a
 * parent read before it: a fork bomb is stopped while the pass goes on. */
static int read_and_act(pid_t self, int sig, int *running, int *sorted)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	pid_t last = 0;

	if (proc == NULL)
		return -1;
	n_nodes = 0;
	*sorted = 1;
	while ((e = readdir(proc)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		struct proc_node *node;

		if (*end != '\0' || pid <= 0)
			continue;
		if (n_nodes == nodes_capacity && grow_nodes() < 0)
			break;
		node = &nodes[n_nodes];
		node->pid = (pid_t)pid;
		node->depth = -1;
		node->dfd = openat(dirfd(proc), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (node->dfd < 0)
			continue;
		if (read_stat(node->dfd, &node->state, &node->ppid) < 0 || node->state == 'X') {
			close(node->dfd);
			continue;
		}
		n_nodes++;
		if (node->pid < last)
			*sorted = 0;
		last = node->pid;
		if (node->ppid == self) {
			act_on(node, NULL, self, sig, running);
		} else {
			struct proc_node key = { .pid = node->ppid };
			struct proc_node *parent =
				*sorted ? bsearch(&key, nodes, n_nodes - 1, sizeof *nodes, by_pid) : NULL;

			if (parent != NULL && parent->depth > 0)
				act_on(node, parent, self, sig, running);
			else {
				close(node->dfd);
				node->dfd = -1;
			}
		}
	}
	closedir(proc);
	return 0;
}

/*
 * One pass: SIG to every descendant shown to be one (see above), but
 * SIGSTOP only to those not stopped already.  Returns how many there were,
 * those not shown yet included, and in *running how many of them may still
 * run (not stopped, traced-stopped or dead, or not shown).
 */
static int signal_tree(int sig, int *running)
{
	pid_t self = getpid();
	struct proc_node **order, **path;
	size_t i, n = 0;
	int sorted, found = 0;

	*running = 0;
	if (read_and_act(self, sig, running, &sorted) < 0)
		return *running = 1;
	if (!sorted)
		qsort(nodes, n_nodes, sizeof *nodes, by_pid);
	/* The rest: those read before their parent (after a pid wrap), by
	 * parent links, parents first, each read again through its directory. */
	order = malloc((n_nodes ? n_nodes : 1) * sizeof *order);
	path = malloc((n_nodes ? n_nodes : 1) * sizeof *path);
	if (order == NULL || path == NULL) {
		free(order);
		free(path);
		for (i = 0; i < n_nodes; i++) {
			if (nodes[i].dfd >= 0)
				close(nodes[i].dfd);
		}
		return *running = 1;
	}
	for (i = 0; i < n_nodes; i++) {
		if (nodes[i].depth > 0) {
			found++;
			continue;
		}
		if (nodes[i].depth == -1 && depth_of(&nodes[i], self, path) > 0)
			order[n++] = &nodes[i];
	}
	free(path);
	qsort(order, n, sizeof *order, by_depth);
	for (i = 0; i < n; i++) {
		struct proc_node *node = order[i];
		char dir[32];
		pid_t ppid = node->ppid;

		found++;
		node->depth = -1;
		snprintf(dir, sizeof dir, "/proc/%d", (int)node->pid);
		node->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (node->dfd < 0 || read_stat(node->dfd, &node->state, &node->ppid) < 0 || node->ppid != ppid) {
			if (node->dfd >= 0)
				close(node->dfd);
			node->dfd = -1;
			(*running)++;
			continue;
		}
		act_on(node, node->ppid == self ? NULL : find_node(node->ppid), self, sig, running);
	}
	free(order);
	for (i = 0; i < n_nodes; i++) {
		if (nodes[i].dfd >= 0)
			close(nodes[i].dfd);
	}
	return found;
}

/* Whether this process has a child left, dead or alive: every descendant
 * has an ancestor among them. */
static int has_children(void)
{
	siginfo_t si;

	return !(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) < 0 && errno == ECHILD);
}

/* Stop every descendant; up to STOP_TIMEOUT_MS. */
static void stop_tree(const sigset_t *children)
{
	long long deadline = now_ms() + STOP_TIMEOUT_MS;
	int quiet = 0;

	while (quiet < 2 && now_ms() < deadline) {
		int running;

		reap_dead();
		if (signal_tree(SIGSTOP, &running) == 0)
			return;
		quiet = running == 0 ? quiet + 1 : 0;
		if (running > 0)
			wait_for(children, 1);
	}
}

/* A descendant's directory is held open for the whole of a pass: as many
 * as the hard limit allows. */
static void raise_open_files_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * End every descendant: SIGTERM (unless sent already: the grace then ends
 * at GRACE_END), up to LIFETIME_GRACE_MS for them to go, then SIGKILL until
 * none is left.  A child's children become this process's when it dies, and
 * get their SIGTERM then.
 */
static void end_all(void)
{
	sigset_t children;
	long long deadline;

	sigemptyset(&children);
	sigaddset(&children, SIGCHLD);
	sigaddset(&children, EXIT_SIGNAL);
	/* A session of its own is a scheduling group of its own (autogroup,
	 * sched(7)): a fork bomb's hundreds of processes, in the caller's
	 * session, then share one group's CPU time, not starve the launcher
	 * (measured: passes of 40 ms instead of 3 s on two loaded CPUs).  The
	 * command has ended, so job control no longer matters. */
	(void)setsid();
	if (!ending) {
		ending = 1;
		clock_gettime(CLOCK_MONOTONIC, &grace_end);
		grace_end.tv_sec += LIFETIME_GRACE_MS / 1000;
	}
	deadline = ms_of(&grace_end);
	for (;;) {
		reap_dead();
		if (sweep() == 0)
			return;
		if (now_ms() >= deadline)
			break;
		wait_for(&children, deadline - now_ms() < POLL_MS ? deadline - now_ms() : POLL_MS);
	}
	raise_open_files_limit();
	stop_tree(&children);
	deadline = now_ms() + KILL_TIMEOUT_MS;
	for (;;) {
		int running;

		reap_dead();
		(void)signal_tree(SIGKILL, &running);
		if (!has_children() || now_ms() >= deadline)
			break;
		wait_for(&children, 5);
	}
}

int lifetime_prepare(void)
{
	sigset_t held;

	host_pid = getppid();
	sigemptyset(&held);
	sigaddset(&held, SIGCHLD);
	sigaddset(&held, EXIT_SIGNAL);
	sigaddset(&held, DEATH_SIGNAL);
	sigaddset(&held, SIGTSTP);
	sigaddset(&held, SIGTTIN);
	sigaddset(&held, SIGTTOU);
	sigaddset(&held, SIGCONT);
	if (sigprocmask(SIG_BLOCK, &held, NULL) < 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_PDEATHSIG, DEATH_SIGNAL, 0, 0, 0) < 0)
		return -1;
	/* The host may have died before the signal was set. */
	if (getppid() != host_pid) {
		errno = ESRCH;
		return -1;
	}
	return 0;
}

int lifetime_exit_signal(void)
{
	return EXIT_SIGNAL;
}

/* Parent side: stop with SIG, as the command did, so that whoever waits for
 * nonet sees it stopped by the same signal; returns once continued.  The
 * signal, queued while blocked and then let through, stops the process
 * once, with its default action whatever nonet was given. */
static void stop_self(int sig)
{
	struct sigaction dfl, saved;
	sigset_t one;

	if (sig == SIGSTOP) {
		(void)kill(getpid(), SIGSTOP);
		return;
	}
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	if (sigaction(sig, &dfl, &saved) < 0)
		return;
	sigemptyset(&one);
	sigaddset(&one, sig);
	(void)kill(getpid(), sig);
	(void)sigprocmask(SIG_UNBLOCK, &one, NULL);
	(void)sigprocmask(SIG_BLOCK, &one, NULL);
	(void)sigaction(sig, &saved, NULL);
}

/* Parent side: reap every child that changed state.  Returns 1 with *status
 * once the command has exited; sets *stop to the signal that stopped it. */
static int reap(pid_t command, int *status, int *stop)
{
	for (;;) {
		siginfo_t si;

		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | __WALL) < 0 ||
		    si.si_pid == 0)
			return 0;
		if (si.si_code == CLD_TRAPPED) {
			let_go(si.si_pid, si.si_status);
			continue;
		}
		if (si.si_pid != command)
			continue; /* an orphan or a helper: reaped, nothing more */
		switch (si.si_code) {
		case CLD_EXITED:
			*status = si.si_status;
			return 1;
		case CLD_KILLED:
		case CLD_DUMPED:
			*status = 128 + si.si_status;
			return 1;
		case CLD_STOPPED:
			*stop = si.si_status;
			break;
		case CLD_CONTINUED:
			*stop = 0;
			break;
		}
	}
}

int lifetime_supervise(pid_t command, const int *forwarded, size_t n_forwarded)
{
	sigset_t wanted;
	size_t i;

	sigemptyset(&wanted);
	sigaddset(&wanted, SIGCHLD);
	sigaddset(&wanted, EXIT_SIGNAL);
	sigaddset(&wanted, DEATH_SIGNAL);
	sigaddset(&wanted, SIGTSTP);
	sigaddset(&wanted, SIGTTIN);
	sigaddset(&wanted, SIGTTOU);
	sigaddset(&wanted, SIGCONT);
	/* A forwarded signal the caller ignores stays ignored (nohup). */
	for (i = 0; i < n_forwarded; i++) {
		struct sigaction sa;

		if (sigaction(forwarded[i], NULL, &sa) == 0 && sa.sa_handler != SIG_IGN)
			sigaddset(&wanted, forwarded[i]);
	}

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&wanted, &si);
		int status = 0, stop = 0;

		if (sig < 0)
			continue; /* EINTR: a stop and continue */
		if (sig == SIGCHLD || sig == EXIT_SIGNAL) {
			if (reap(command, &status, &stop))
				return status;
			/* The command stopped: so does nonet, unless it was
			 * continued meanwhile. */
			if (stop != 0 && is_stopped(command))
				stop_self(stop);
		} else if (sig == DEATH_SIGNAL) {
			if (getppid() == host_pid)
				continue;
			/* The host died: end everything, the command first
			 * (lifetime_end() goes on with the same grace). */
			ending = 1;
			clock_gettime(CLOCK_MONOTONIC, &grace_end);
			grace_end.tv_sec += LIFETIME_GRACE_MS / 1000;
			(void)sweep();
			return 128 + SIGKILL;
		} else if (sig == SIGCONT) {
			/* Continued: the command too, if it is stopped and this
			 * SIGCONT did not reach it already, as one to the whole
			 * process group (fg, bg) does.  Else a command that
			 * stopped again at once (bg, then SIGTTIN) would be
			 * continued a second time. */
			if (is_stopped(command) &&
			    ((si.si_code <= 0 && si.si_pid == host_pid) || getpgid(command) != getpgrp()))
				(void)kill(command, SIGCONT);
		} else if (si.si_code <= 0 && si.si_pid == host_pid) {
			/* A user's signal, passed on by the host.  Signals from
			 * the kernel or the terminal (si_code > 0) reached the
			 * whole process group, the command included. */
			(void)kill(command, sig);
		}
	}
}

void lifetime_end(void)
{
	siginfo_t si;

	reap_dead();
	/* Nothing left: no child waitable without __WALL (see the top). */
	memset(&si, 0, sizeof si);
	if (!ending && waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD)
		return;
	end_all();
}
