/*
 * harness: the measuring half of `make bench` (bench/run.sh is the other).
 *
 *   harness NONET FLOOR [XFER]
 *                           run every measurement and print the report; with
 *                           XFER (bench/xfer.c), also the port forwarding
 *                           measurements of issue 5 (BENCH_ONLY=forwarding:
 *                           only those; BENCH_ONLY=startup: only the
 *                           start-up table and its one-CPU line)
 *   harness --compare ROUNDS A B
 *                           time "A true" against "B true", interleaved: two
 *                           builds of nonet, for measuring one change
 *   harness --compare-many ROUNDS A B [C ...]
 *                           the same for up to 12 builds at once; "bwrap"
 *                           stands for the start-up table's bwrap command,
 *                           so that builds are compared with it in one run
 *   harness --list-fds      print the fds open in this process, its parent
 *                           and its grandparent (run under nonet, that is the
 *                           command, the launcher and the host)
 *
 * Commands are started with posix_spawn and reaped with wait4, which gives
 * the wall time, the CPU time of the whole process tree (every process in it
 * is reaped by its parent) and the peak RSS of its largest process
 * (ru_maxrss is the maximum over the child and the descendants it reaped).
 * The compared commands run interleaved, in a rotating order, so that noise
 * from other work on the machine falls on all of them alike.
 *
 * It reports; it does not judge the build: the exit status is 0 whenever the
 * measurements could be taken, and each target is printed as PASS or FAIL.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define STR_(x) #x
#define STR(x) STR_(x)

#define MAX_RUNS 1000
#define MAX_PROCS 4096

struct sample {
	double wall_ms;
	double cpu_ms;
	long rss_kib;
	long faults;     /* page faults (minor + major) of the whole tree */
	long own_faults; /* of the first process alone (all its threads); -1: unknown */
	int ok;          /* exited with status 0 */
};

struct subject {
	const char *label;
	char *argv[8];
	struct sample runs[MAX_RUNS];
	int n;
	int failures;
	int usable;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double tv_ms(struct timeval tv)
{
	return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

/* Starts argv with stdin from in_fd and stdout to out_fd (each /dev/null
 * when -1). */
static pid_t start_io(char *const argv[], int in_fd, int out_fd)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	posix_spawn_file_actions_init(&fa);
	if (in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (out_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	else
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "harness: cannot start %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	return pid;
}

static pid_t start(char *const argv[], int out_fd)
{
	return start_io(argv, -1, out_fd);
}

static int reap(pid_t pid, struct rusage *ru)
{
	int st;

	while (wait4(pid, &st, 0, ru) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return st;
}

/* The page faults (minor + major) of pid itself, all its threads but none
 * of the children it reaped: fields 10 and 12 of /proc/PID/stat, which a
 * zombie still shows.  -1 if they cannot be read. */
static long own_faults(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long minflt, cminflt, majflt;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	/* The command name may hold spaces and parentheses: fields are
	 * counted from the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %lu %lu %lu", &minflt, &cminflt, &majflt) != 3)
		return -1;
	return (long)(minflt + majflt);
}

/* Runs argv to its end.  Page faults are counted, so they do not vary with
 * the load as times do: the whole tree's come from wait4 (every process in
 * it is reaped by its parent, and each adds its reaped children's), the
 * first process's own from its /proc/PID/stat read while it is a zombie,
 * after its children are reaped and before it is. */
static struct sample run_once(char *const argv[])
{
	struct sample s = { .own_faults = -1 };
	struct rusage ru;
	siginfo_t si;
	double t0 = now_ms();
	pid_t pid = start(argv, -1);
	int st;

	if (pid < 0)
		return s;
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	s.wall_ms = now_ms() - t0;
	s.own_faults = own_faults(pid);
	st = reap(pid, &ru);
	s.cpu_ms = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
	s.rss_kib = ru.ru_maxrss;
	s.faults = ru.ru_minflt + ru.ru_majflt;
	s.ok = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	return s;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The q-quantile (0..1) of v[0..n), interpolated; v is sorted in place. */
static double quantile(double *v, int n, double q)
{
	double pos;
	int i;

	if (n == 0)
		return 0;
	qsort(v, (size_t)n, sizeof *v, compare_double);
	pos = q * (n - 1);
	i = (int)pos;
	if (i + 1 >= n)
		return v[n - 1];
	return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

struct summary {
	double median, p25, p75;
};

static struct summary summarise(const double *values, int n)
{
	double *v = malloc(sizeof *v * (size_t)(n > 0 ? n : 1));
	struct summary s;

	memcpy(v, values, sizeof *v * (size_t)n);
	s.median = quantile(v, n, 0.5);
	s.p25 = quantile(v, n, 0.25);
	s.p75 = quantile(v, n, 0.75);
	free(v);
	return s;
}

static struct summary summarise_field(const struct subject *c, int cpu)
{
	double v[MAX_RUNS];
	int i;

	for (i = 0; i < c->n; i++)
		v[i] = cpu ? c->runs[i].cpu_ms : c->runs[i].wall_ms;
	return summarise(v, c->n);
}

/* The median page faults of c's runs: of the whole tree, or (own) of
 * the first process alone; -1 when unknown. */
static double median_faults(const struct subject *c, int own)
{
	double v[MAX_RUNS];
	int i;

	for (i = 0; i < c->n; i++) {
		v[i] = (double)(own ? c->runs[i].own_faults : c->runs[i].faults);
		if (v[i] < 0)
			return -1;
	}
	return summarise(v, c->n).median;
}

static long peak_rss(const struct subject *c)
{
	long peak = 0;
	int i;

	for (i = 0; i < c->n; i++)
		if (c->runs[i].rss_kib > peak)
			peak = c->runs[i].rss_kib;
	return peak;
}

static int env_int(const char *name, int fallback, int max)
{
	const char *s = getenv(name);
	int v = s ? atoi(s) : fallback;

	return v > 0 && v <= max ? v : fallback;
}

/* ---- targets ------------------------------------------------------------ */

/* Each target belongs to an issue: 4 (start-up and leaks), 5 (port
 * forwarding), 15 (start-up) or 23 (start-up page faults).  pass is 1, 0, or -1 for a target that could not be
 * measured here (SKIP, not counted as missed). */
#define MAX_TARGETS 24
static char target_lines[MAX_TARGETS][200];
static int target_issue[MAX_TARGETS];
static int n_targets, n_failed, n_skipped, current_issue = 4;

static void target(int pass, const char *what, const char *measured)
{
	if (n_targets == MAX_TARGETS)
		return;
	target_issue[n_targets] = current_issue;
	snprintf(target_lines[n_targets++], sizeof target_lines[0], "  %s  %-44s %s",
		 pass > 0 ? "PASS" : pass == 0 ? "FAIL" : "SKIP", what, measured);
	n_failed += pass == 0;
	n_skipped += pass < 0;
}

static void print_targets(int issue, const char *title)
{
	int i, any = 0;

	for (i = 0; i < n_targets; i++) {
		if (target_issue[i] != issue)
			continue;
		if (!any++)
			printf("\n%s\n", title);
		printf("%s\n", target_lines[i]);
	}
}

/* ---- the sections of the report ------------------------------------------ */

enum { NONET, FLOOR, BWRAP, UNSHARE, TRUE_, N_SUBJECTS };

static struct subject subjects[N_SUBJECTS];

/* The host's own page faults in `nonet true` at the start of issue 23
 * (5793d75, measured by this harness on the 2-vCPU VM of BENCHMARKS.md):
 * the target is half of it. */
#define HOST_FAULTS_BEFORE 169

/* "1.08x page faults (tree), 2.70x (first process)": nonet's against
 * subject k's, in the runs of compare_startup(). */
static const char *fault_ratios(int k)
{
	static char text[96];
	double tree = median_faults(&subjects[k], 0), own = median_faults(&subjects[k], 1);

	snprintf(text, sizeof text, "%.2fx page faults (tree), %.2fx (first process)",
		 median_faults(&subjects[NONET], 0) / tree, median_faults(&subjects[NONET], 1) / own);
	return text;
}

/* Page faults of the start-up table's runs (issue 23).  On these VMs a
 * fault on a fresh page costs 15-18 us, as much as 15 system calls, and
 * the count does not move with the machine's load as times do. */
static void startup_faults(void)
{
	double tree[N_SUBJECTS], own[N_SUBJECTS];
	char text[160];
	int k;

	printf("  %-40s %14s %14s   (page faults, median; minor + major)\n", "command", "whole tree", "first process");
	for (k = 0; k < N_SUBJECTS; k++) {
		const struct subject *c = &subjects[k];

		if (!c->usable)
			continue;
		tree[k] = median_faults(c, 0);
		own[k] = median_faults(c, 1);
		printf("  %-40s %14.0f %14.0f%s\n", c->label, tree[k], own[k], k == NONET ? "   (the host)" : "");
	}
	printf("\n");
	current_issue = 23;
	if (subjects[NONET].usable && subjects[BWRAP].usable) {
		snprintf(text, sizeof text, "%.0f vs %.0f (%.2fx)", tree[NONET], tree[BWRAP], tree[NONET] / tree[BWRAP]);
		target(tree[NONET] <= tree[BWRAP], "nonet true page faults <= bwrap's (tree)", text);
	}
	if (subjects[NONET].usable && own[NONET] >= 0) {
		snprintf(text, sizeof text, "%.0f (%.2fx of %d before)", own[NONET], own[NONET] / HOST_FAULTS_BEFORE,
			 HOST_FAULTS_BEFORE);
		target(own[NONET] <= HOST_FAULTS_BEFORE / 2.0 * 1.1, "host's own page faults about halved", text);
	}
	current_issue = 4;
}

static void compare_startup(const char *nonet, const char *floor_bin, int rounds)
{
	int warmup = 10, r, k, i;
	struct summary wall[N_SUBJECTS];
	char text[160];

	subjects[NONET] = (struct subject){ .label = "nonet true", .argv = { (char *)nonet, "true", NULL } };
	subjects[FLOOR] = (struct subject){ .label = "floor true (C reference)", .argv = { (char *)floor_bin, "true", NULL } };
	subjects[BWRAP] = (struct subject){ .label = "bwrap --dev-bind / / --unshare-net true",
		.argv = { "bwrap", "--dev-bind", "/", "/", "--unshare-net", "true", NULL } };
	subjects[UNSHARE] = (struct subject){ .label = "unshare -rn true", .argv = { "unshare", "-rn", "true", NULL } };
	subjects[TRUE_] = (struct subject){ .label = "true", .argv = { "true", NULL } };

	for (k = 0; k < N_SUBJECTS; k++) {
		subjects[k].usable = run_once(subjects[k].argv).ok;
		if (!subjects[k].usable)
			printf("note: '%s' does not run here; it is left out\n", subjects[k].label);
	}
	for (r = 0; r < warmup + rounds; r++) {
		for (i = 0; i < N_SUBJECTS; i++) {
			struct subject *c = &subjects[(r + i) % N_SUBJECTS];
			struct sample s;

			if (!c->usable)
				continue;
			s = run_once(c->argv);
			if (r < warmup)
				continue;
			if (!s.ok)
				c->failures++;
			c->runs[c->n++] = s;
		}
	}

	printf("Start-up cost, %d interleaved rounds (median and interquartile range)\n\n", rounds);
	printf("  %-40s %22s %22s %10s %6s\n", "command", "wall ms", "CPU ms", "peak RSS", "failed");
	for (k = 0; k < N_SUBJECTS; k++) {
		const struct subject *c = &subjects[k];
		struct summary cpu;

		if (!c->usable)
			continue;
		wall[k] = summarise_field(c, 0);
		cpu = summarise_field(c, 1);
		printf("  %-40s %7.2f (%5.2f-%5.2f) %7.2f (%5.2f-%5.2f) %6.1f MiB %6d\n", c->label,
		       wall[k].median, wall[k].p25, wall[k].p75, cpu.median, cpu.p25, cpu.p75,
		       peak_rss(c) / 1024.0, c->failures);
	}
	printf("\n");
	startup_faults();

	if (subjects[NONET].usable && subjects[FLOOR].usable) {
		double ratio = wall[NONET].median / wall[FLOOR].median;

		printf("  nonet / floor  %.2fx wall, %s\n", ratio, fault_ratios(FLOOR));
		snprintf(text, sizeof text, "%.2fx (%.2f ms vs %.2f ms)", ratio, wall[NONET].median, wall[FLOOR].median);
		target(ratio <= 2.0, "nonet true median <= 2.0x C floor", text);
	}
	if (subjects[NONET].usable && subjects[BWRAP].usable) {
		double ratio = wall[NONET].median / wall[BWRAP].median;

		printf("  nonet / bwrap  %.2fx wall, %s\n", ratio, fault_ratios(BWRAP));
		snprintf(text, sizeof text, "%.2fx (%.2f ms vs %.2f ms)", ratio, wall[NONET].median, wall[BWRAP].median);
		target(ratio <= 1.0, "nonet true median <= 1.0x bwrap", text);
		current_issue = 15;
		target(ratio <= 0.8, "nonet true median <= 0.8x bwrap", text);
		current_issue = 4;
	}
	if (subjects[NONET].usable) {
		long rss = peak_rss(&subjects[NONET]);

		snprintf(text, sizeof text, "%.1f MiB", rss / 1024.0);
		target(rss <= 16 * 1024, "peak RSS of largest nonet process <= 16 MiB", text);
		snprintf(text, sizeof text, "%d of %d runs failed", subjects[NONET].failures, subjects[NONET].n);
		target(subjects[NONET].failures == 0 && subjects[NONET].n > 0, "every nonet true run succeeds", text);
	}
	printf("\n");
}

/* The same comparison with every process on one CPU (the harness's
 * affinity, inherited): start-up work overlapped across processes must not
 * cost more where there is nothing to overlap it with (issue 15). */
static void one_cpu_startup(int rounds)
{
	static const int order[] = { NONET, FLOOR, BWRAP };
	cpu_set_t one, all;
	struct summary wall[N_SUBJECTS];
	int r, i, k;

	if (sched_getaffinity(0, sizeof all, &all) < 0)
		return;
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(0, sizeof one, &one) < 0)
		return;
	for (k = 0; k < 3; k++)
		subjects[order[k]].n = 0, subjects[order[k]].failures = 0;
	for (r = 0; r < 10 + rounds; r++) {
		for (i = 0; i < 3; i++) {
			struct subject *c = &subjects[order[(r + i) % 3]];
			struct sample smp;

			if (!c->usable)
				continue;
			smp = run_once(c->argv);
			if (r >= 10)
				c->runs[c->n++] = smp;
		}
	}
	(void)sched_setaffinity(0, sizeof all, &all);
	for (k = 0; k < 3; k++) {
		if (subjects[order[k]].usable)
			wall[order[k]] = summarise_field(&subjects[order[k]], 0);
	}
	if (!subjects[NONET].usable || !subjects[FLOOR].usable || !subjects[BWRAP].usable)
		return;
	printf("One CPU (taskset -c 0), %d interleaved rounds: nonet %.2f ms, floor %.2f ms, bwrap %.2f ms\n", rounds,
	       wall[NONET].median, wall[FLOOR].median, wall[BWRAP].median);
	printf("  nonet / floor  %.2fx wall\n  nonet / bwrap  %.2fx wall\n\n",
	       wall[NONET].median / wall[FLOOR].median, wall[NONET].median / wall[BWRAP].median);
}

static void self_test(const char *nonet)
{
	char *argv[] = { (char *)nonet, "--self-test", NULL };
	double walls[5];
	int i, ok = 1;
	struct summary s;
	char text[160];

	for (i = 0; i < 5; i++) {
		struct sample x = run_once(argv);

		walls[i] = x.wall_ms;
		ok &= x.ok;
	}
	s = summarise(walls, 5);
	printf("nonet --self-test: median %.1f ms of 5 runs (%.1f-%.1f)%s\n", s.median, s.p25, s.p75,
	       ok ? "" : ", and it FAILED");
	snprintf(text, sizeof text, "%.1f ms%s", s.median, ok ? "" : " (self-test failed)");
	target(ok && s.median < 150, "nonet --self-test < 150 ms", text);
}

/* 1 GiB through cat, three ways, interleaved: plain, under nonet, and under
 * the floor.  The floor shows what any namespace wrapper costs here, so a
 * gap that nonet shares with the floor is not nonet's stdio handling. */
static void pipe_throughput(const char *nonet, const char *floor_bin)
{
	char *plain[] = { "/bin/sh", "-c", "head -c 1G /dev/zero | cat >/dev/null", NULL };
	char *with_nonet[] = { "/bin/sh", "-c", "head -c 1G /dev/zero | \"$0\" cat >/dev/null", (char *)nonet, NULL };
	char *with_floor[] = { "/bin/sh", "-c", "head -c 1G /dev/zero | \"$0\" cat >/dev/null", (char *)floor_bin, NULL };
	char **pipelines[3] = { plain, with_nonet, with_floor };
	int rounds = env_int("BENCH_PIPE_ROUNDS", 15, 20), r, k, ok = 1;
	double rate[3][20], ratio;
	struct summary s[3];
	char text[160];

	for (r = 0; r < rounds; r++) {
		for (k = 0; k < 3; k++) {
			int which = (r + k) % 3;
			struct sample x = run_once(pipelines[which]);

			ok &= x.ok;
			rate[which][r] = 1024.0 / (x.wall_ms / 1e3);
		}
	}
	for (k = 0; k < 3; k++)
		s[k] = summarise(rate[k], rounds);
	ratio = s[1].median / s[0].median;
	printf("pipe, 1 GiB through cat (MiB/s, median of %d): without nonet %.0f (%.0f-%.0f), "
	       "with nonet %.0f (%.0f-%.0f) = %.1f%%, with the floor %.0f (%.0f-%.0f) = %.1f%%\n",
	       rounds, s[0].median, s[0].p25, s[0].p75, s[1].median, s[1].p25, s[1].p75, 100 * ratio,
	       s[2].median, s[2].p25, s[2].p75, 100 * s[2].median / s[0].median);
	snprintf(text, sizeof text, "%.1f%% of the plain pipeline (floor: %.1f%%)%s", 100 * ratio,
		 100 * s[2].median / s[0].median, ok ? "" : " (a run failed)");
	target(ok && ratio >= 0.95, "pipe throughput within 5%", text);
}

/* 1000 runs of nonet one after another, each followed by one of the floor:
 * the floor's times track the machine's load, so growth is judged on the
 * ratio nonet/floor, which a busy neighbour does not move. */
static void sequential(const char *nonet, const char *floor_bin)
{
	char *argv[] = { (char *)nonet, "true", NULL };
	char *reference[] = { (char *)floor_bin, "true", NULL };
	static double walls[1000], floors[1000];
	int n = 1000, window = 100, i, failures = 0;
	struct summary first, last, first_floor, last_floor;
	double growth;
	char text[160];

	for (i = 0; i < n; i++) {
		struct sample s = run_once(argv);

		walls[i] = s.wall_ms;
		failures += !s.ok;
		floors[i] = run_once(reference).wall_ms;
	}
	first = summarise(walls, window);
	last = summarise(walls + n - window, window);
	first_floor = summarise(floors, window);
	last_floor = summarise(floors + n - window, window);
	growth = (last.median / last_floor.median) / (first.median / first_floor.median);
	printf("1000 sequential runs: run 1 %.2f ms, run 1000 %.2f ms; median of runs 1-100 %.2f ms, "
	       "of runs 901-1000 %.2f ms (floor meanwhile %.2f -> %.2f ms); %d failed\n",
	       walls[0], walls[n - 1], first.median, last.median, first_floor.median, last_floor.median, failures);
	snprintf(text, sizeof text, "%+.0f%% (last 100 vs first 100, relative to the floor), %d failed",
		 100 * (growth - 1), failures);
	target(failures == 0 && growth <= 1.15, "no growth over 1000 sequential runs", text);
}

static void concurrent(const char *nonet)
{
	char *argv[] = { (char *)nonet, "true", NULL };
	pid_t pids[64];
	int i, ok = 0, n = 64;
	double t0 = now_ms(), total;
	char text[160];

	for (i = 0; i < n; i++)
		pids[i] = start(argv, -1);
	for (i = 0; i < n; i++) {
		struct rusage ru;
		int st = pids[i] > 0 ? reap(pids[i], &ru) : -1;

		ok += st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	total = now_ms() - t0;
	printf("64 runs started at once: %d succeeded, %.1f ms in all\n", ok, total);
	snprintf(text, sizeof text, "%d of 64 succeeded in %.1f ms", ok, total);
	target(ok == n, "64 concurrent runs all succeed", text);
}

/* ---- leaks --------------------------------------------------------------- */

/* Pids of this user's processes other than this one. */
static int own_processes(pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[64], line[256];
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL && n < max) {
		pid_t pid = (pid_t)atoi(e->d_name);
		FILE *f;

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof line, f)) {
			unsigned uid;

			if (sscanf(line, "Uid: %u", &uid) == 1) {
				if (uid == getuid())
					out[n++] = pid;
				break;
			}
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

static int contains(const pid_t *v, int n, pid_t x)
{
	int i;

	for (i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

static void leaks(const char *nonet, const char *self, const pid_t *before, int n_before)
{
	static pid_t after[MAX_PROCS];
	char *argv[] = { (char *)nonet, (char *)self, "--list-fds", NULL };
	char out[1024], text[160], command_fds[256] = "", launcher_fds[256] = "", host_fds[256] = "";
	int fds[2], n_after, leaked = 0, i;
	size_t got = 0;
	ssize_t r;
	pid_t pid;
	char *line;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return;
	pid = start(argv, fds[1]);
	close(fds[1]);
	while ((r = read(fds[0], out + got, sizeof out - 1 - got)) > 0)
		got += (size_t)r;
	close(fds[0]);
	out[got] = 0;
	if (pid > 0) {
		struct rusage ru;

		reap(pid, &ru);
	}
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		sscanf(line, "command %255s", command_fds);
		sscanf(line, "launcher %255s", launcher_fds);
		sscanf(line, "host %255s", host_fds);
	}
	printf("open fds: the command sees %s; the launcher holds %s; the host holds %s\n",
	       command_fds[0] ? command_fds : "?", launcher_fds[0] ? launcher_fds : "?",
	       host_fds[0] ? host_fds : "?");
	snprintf(text, sizeof text, "command: %s, launcher: %s", command_fds, launcher_fds);
	target(strcmp(command_fds, "0,1,2") == 0 && strcmp(launcher_fds, "0,1,2") == 0,
	       "no fds leak to the command or launcher", text);

	n_after = own_processes(after, MAX_PROCS);
	for (i = 0; i < n_after; i++) {
		if (contains(before, n_before, after[i]))
			continue;
		leaked++;
		printf("  left behind: pid %d\n", (int)after[i]);
	}
	printf("processes left behind after every run: %d\n", leaked);
	snprintf(text, sizeof text, "%d left behind", leaked);
	target(leaked == 0, "no leaked processes (so no leaked namespaces)", text);
}

/* "0,1,2" for the fds open in /proc/PID/fd; for "self", without the fd
 * that reads the directory. */
static void fd_list(const char *pid, char *buf, size_t size)
{
	char path[64];
	int fds[256], n = 0, i, j;
	size_t used = 0;
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof path, "/proc/%s/fd", pid);
	buf[0] = 0;
	d = opendir(path);
	if (!d) {
		snprintf(buf, size, "unreadable(%s)", strerror(errno));
		return;
	}
	while ((e = readdir(d)) != NULL && n < 256) {
		if (e->d_name[0] == '.')
			continue;
		fds[n] = atoi(e->d_name);
		if (strcmp(pid, "self") == 0 && fds[n] == dirfd(d))
			continue;
		n++;
	}
	closedir(d);
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
			int t = fds[j];

			fds[j] = fds[j - 1];
			fds[j - 1] = t;
		}
	for (i = 0; i < n && used + 12 < size; i++)
		used += (size_t)snprintf(buf + used, size - used, i ? ",%d" : "%d", fds[i]);
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	char *close_paren;
	int ppid = -1;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fgets(buf, sizeof buf, f) && (close_paren = strrchr(buf, ')')) != NULL)
		sscanf(close_paren + 1, " %*c %d", &ppid);
	fclose(f);
	return (pid_t)ppid;
}

static int list_fds(void)
{
	char buf[256], pid[32];
	pid_t launcher = getppid(), host = parent_of(launcher);

	fd_list("self", buf, sizeof buf);
	printf("command %s\n", buf);
	snprintf(pid, sizeof pid, "%d", (int)launcher);
	fd_list(pid, buf, sizeof buf);
	printf("launcher %s\n", buf);
	snprintf(pid, sizeof pid, "%d", (int)host);
	fd_list(pid, buf, sizeof buf);
	printf("host %s\n", buf);
	return 0;
}

/* ---- port forwarding (issue 5) ----------------------------------------- */

/* Lines from a child's stdout, read with a time limit: a relay that stalls
 * must fail the benchmark, not hang it. */
struct lines {
	int fd;
	size_t len;
	char buf[1024];
};

/* The next line (without its newline) in out; 0 at EOF or after timeout_ms. */
static int next_line(struct lines *l, char *out, size_t size, int timeout_ms)
{
	double deadline = now_ms() + timeout_ms;

	for (;;) {
		char *nl = memchr(l->buf, '\n', l->len);
		struct pollfd p = { .fd = l->fd, .events = POLLIN };
		double left = deadline - now_ms();
		ssize_t r;

		if (nl) {
			size_t n = (size_t)(nl - l->buf);

			snprintf(out, size, "%.*s", (int)n, l->buf);
			memmove(l->buf, nl + 1, l->len - n - 1);
			l->len -= n + 1;
			return 1;
		}
		if (l->len == sizeof l->buf - 1 || left <= 0)
			return 0;
		if (poll(&p, 1, (int)left + 1) <= 0)
			continue;
		r = read(l->fd, l->buf + l->len, sizeof l->buf - 1 - l->len);
		if (r == 0 || (r < 0 && errno != EINTR))
			return 0;
		if (r > 0)
			l->len += (size_t)r;
	}
}

/* CPU time (user + system) of every process reaped by reap_within(),
 * with the processes each of them reaped in turn: nonet's count includes
 * its launcher and the command. */
static double reaped_cpu_ms;
/* ru_maxrss of the last process reap_within() reaped, in KiB. */
static long reaped_rss_kib;

/* The wait status of pid, killing it (SIGKILL) if it has not exited within
 * timeout_ms; -1 if it could not be reaped. */
static int reap_within(pid_t pid, int timeout_ms)
{
	double deadline = now_ms() + timeout_ms;
	struct rusage ru;
	int st;
	pid_t r;

	if (pid <= 0)
		return -1;
	while ((r = wait4(pid, &st, WNOHANG, &ru)) == 0) {
		if (now_ms() > deadline) {
			fprintf(stderr, "harness: pid %d did not exit within %d ms; killing it\n", (int)pid, timeout_ms);
			kill(pid, SIGKILL);
			st = reap(pid, &ru);
			r = pid;
			break;
		}
		usleep(2000);
	}
	if (r != pid)
		return -1;
	reaped_cpu_ms += tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
	reaped_rss_kib = ru.ru_maxrss;
	return st;
}

static int exited_0(int st)
{
	return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Starts argv with stdout on a pipe; *out reads it.  -1 if it cannot. */
static pid_t start_reading(char *const argv[], int in_fd, struct lines *out)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	pid = start_io(argv, in_fd, fds[1]);
	close(fds[1]);
	out->fd = fds[0];
	out->len = 0;
	if (pid < 0)
		close(fds[0]);
	return pid;
}

/* A TCP port on 127.0.0.1 that is free now (the kernel's choice for port
 * 0).  Another process may take it before nonet binds it: the caller
 * retries with a new one when nonet says the port is in use. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* Starts "xfer serve 0 BYTES" or "xfer echo 0" and reads the port it got. */
static pid_t start_server(char *const argv[], int *port)
{
	struct lines out;
	char line[64];
	pid_t pid = start_reading(argv, -1, &out);

	if (pid < 0)
		return -1;
	*port = next_line(&out, line, sizeof line, 5000) ? atoi(line) : 0;
	close(out.fd);
	if (*port <= 0) {
		kill(pid, SIGKILL);
		reap_within(pid, 1000);
		return -1;
	}
	return pid;
}

/* Runs a "xfer fetch": its status, and bytes, seconds and connection
 * attempts from its report. */
static int run_fetch(char *const argv[], unsigned long long *bytes, double *seconds, int *attempts)
{
	struct lines out;
	char line[128];
	pid_t pid = start_reading(argv, -1, &out);
	int st, got_line;

	if (pid < 0)
		return -1;
	got_line = next_line(&out, line, sizeof line, 70000); /* xfer gives up after 60 s */
	close(out.fd);
	st = reap_within(pid, 10000);
	if (!got_line || sscanf(line, "%llu %lf %d", bytes, seconds, attempts) != 3)
		return -1;
	return st;
}

enum { PLAIN, FORWARD, PUBLISH, N_PATHS };

static const char *const path_names[N_PATHS] = { "plain loopback", "--forward", "--publish" };

/* The inner port, inside nonet's namespace: any will do, the namespace is
 * the command's alone.  Different from the host port, so that the mapping
 * is exercised. */
#define INNER_PORT "4000"

/* One transfer of `bytes` over one path, in MiB/s; 0 when it failed.  The
 * rate is the receiver's: connect() to EOF, as xfer fetch measures it.
 * *cpu_ms: the CPU time of every process involved, both ends and nonet
 * (whose start-up, about 4 ms, is noise next to a transfer). */
static double transfer(int path, const char *nonet, const char *xfer, unsigned long long bytes, int *attempts,
		       double *cpu_ms)
{
	double cpu0 = reaped_cpu_ms, rate = 0;

	char size[32], port[16], spec[64], expect[32];
	unsigned long long got = 0;
	double seconds = 0;
	int tries, p, st = -1, server_st;
	pid_t server;

	snprintf(size, sizeof size, "%llu", bytes);
	snprintf(expect, sizeof expect, "%llu", bytes);
	*attempts = 0;
	if (path != PUBLISH) {
		/* Server on the host; the client beside it, or inside nonet
		 * through --forward INNERPORT:HOSTPORT. */
		char *serve[] = { (char *)xfer, "serve", "0", size, NULL };
		char *plain[] = { (char *)xfer, "fetch", "127.0.0.1", port, "--expect", expect, NULL };
		char *inside[] = { (char *)nonet, "--forward", spec, (char *)xfer, "fetch", "127.0.0.1", INNER_PORT,
				   "--expect", expect, "--retry", "5", NULL };

		server = start_server(serve, &p);
		if (server < 0)
			return 0;
		snprintf(port, sizeof port, "%d", p);
		snprintf(spec, sizeof spec, "%s:%d", INNER_PORT, p);
		st = run_fetch(path == PLAIN ? plain : inside, &got, &seconds, attempts);
		server_st = reap_within(server, 10000);
		if (exited_0(st) && exited_0(server_st) && got == bytes)
			rate = bytes / 1048576.0 / seconds;
		*cpu_ms = reaped_cpu_ms - cpu0;
		return rate;
	}
	/* Server inside nonet behind --publish HOSTPORT:INNERPORT; the client
	 * on the host retries until the server inside listens (until then
	 * nonet resets the connection).  The host port is free when chosen;
	 * should someone take it before nonet binds it, nonet exits 125 and
	 * the round is tried again on another port. */
	for (tries = 0; tries < 3; tries++) {
		char *inside[] = { (char *)nonet, "--publish", spec, (char *)xfer, "serve", INNER_PORT, size, NULL };
		char *client[] = { (char *)xfer, "fetch", "127.0.0.1", port, "--expect", expect, "--retry", "10", NULL };

		p = free_port();
		snprintf(port, sizeof port, "%d", p);
		snprintf(spec, sizeof spec, "%d:%s", p, INNER_PORT);
		server = start(inside, -1);
		if (server < 0)
			return 0;
		cpu0 = reaped_cpu_ms;
		st = run_fetch(client, &got, &seconds, attempts);
		server_st = reap_within(server, 10000);
		*cpu_ms = reaped_cpu_ms - cpu0;
		if (exited_0(st) && exited_0(server_st) && got == bytes)
			return bytes / 1048576.0 / seconds;
		if (!(WIFEXITED(server_st) && WEXITSTATUS(server_st) == 125))
			break;
	}
	return 0;
}

/* Whether this nonet takes the option: the spec is valid, so a nonet that
 * knows it runs the command (true), one that does not exits 125. */
static int nonet_accepts(const char *nonet, const char *option, const char *spec)
{
	char *argv[] = { (char *)nonet, (char *)option, (char *)spec, "true", NULL };

	return run_once(argv).ok;
}

static void forwarding_throughput(const char *nonet, const char *xfer, const int usable[N_PATHS])
{
	int rounds = env_int("BENCH_FWD_ROUNDS", 5, 20), mib = env_int("BENCH_FWD_MIB", 1024, 65536);
	unsigned long long bytes = (unsigned long long)mib << 20;
	double rate[N_PATHS][20], cpu[N_PATHS][20];
	int failed[N_PATHS] = { 0 }, n[N_PATHS] = { 0 }, max_attempts = 0, r, k;
	struct summary s[N_PATHS];
	char text[200];

	/* Interleaved, in a rotating order, like the start-up table. */
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < N_PATHS; k++) {
			int path = (r + k) % N_PATHS, attempts;
			double x, cpu_ms = 0;

			/* One failure is enough to know: a stalled relay would
			 * cost its time limit on every round. */
			if (!usable[path] || failed[path])
				continue;
			x = transfer(path, nonet, xfer, bytes, &attempts, &cpu_ms);
			if (x <= 0) {
				failed[path]++;
				continue;
			}
			cpu[path][n[path]] = cpu_ms / 1e3 / (mib / 1024.0);
			rate[path][n[path]++] = x;
			if (path == PUBLISH && attempts > max_attempts)
				max_attempts = attempts;
		}
	}
	printf("TCP, %d MiB from server to client (MiB/s, median of %d rounds and interquartile range;\n"
	       "CPU time of both ends and nonet per GiB, median):\n", mib, rounds);
	for (k = 0; k < N_PATHS; k++) {
		if (!usable[k])
			continue;
		s[k] = summarise(rate[k], n[k]);
		if (n[k] == 0) {
			printf("  %-15s FAILED: no transfer completed\n", path_names[k]);
			continue;
		}
		printf("  %-15s %6.0f (%4.0f-%4.0f)", path_names[k], s[k].median, s[k].p25, s[k].p75);
		printf(", CPU %.2f s/GiB", summarise(cpu[k], n[k]).median);
		if (k != PLAIN && s[PLAIN].median > 0)
			printf(" = %.1f%% of plain loopback", 100 * s[k].median / s[PLAIN].median);
		if (failed[k])
			printf(", then a transfer FAILED (no more tried)");
		printf("\n");
	}
	if (n[PUBLISH] > 0)
		printf("  (--publish: the client needed up to %d connection attempts before the server inside listened)\n",
		       max_attempts);
	for (k = FORWARD; k <= PUBLISH; k++) {
		char what[64];
		double ratio = s[PLAIN].median > 0 ? s[k].median / s[PLAIN].median : 0;

		snprintf(what, sizeof what, "%s throughput >= 50%% of loopback", path_names[k]);
		if (!usable[k]) {
			target(-1, what, "not measured: this nonet has no such option");
			continue;
		}
		snprintf(text, sizeof text, "%.1f%% (%.0f vs %.0f MiB/s)%s", 100 * ratio, s[k].median, s[PLAIN].median,
			 failed[k] || failed[PLAIN] ? ", a transfer failed" : "");
		target(!failed[k] && !failed[PLAIN] && n[k] > 0 && ratio >= 0.5, what, text);
	}
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The first process found whose parent is pid: nonet's launcher. */
static pid_t child_of(pid_t pid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = -1;

	if (!d)
		return -1;
	while (found < 0 && (e = readdir(d)) != NULL) {
		pid_t p = (pid_t)atoi(e->d_name);

		if (p > 0 && parent_of(p) == pid)
			found = p;
	}
	closedir(d);
	return found;
}

/* nonet's fds once the connections are gone: relays close asynchronously,
 * so this waits (up to 3 s) for the count to come back to `baseline`. */
static int settled_fds(pid_t pid, int baseline)
{
	double deadline = now_ms() + 3000;
	int n;

	while ((n = count_fds(pid)) > baseline && now_ms() < deadline)
		usleep(10000);
	return n;
}

#define BURST 200
#define BURST_ROUNDS 2

/* BURST connections at once through one --forward, BURST_ROUNDS times: each
 * sends 32 KiB and checks the echo from a server on the host.  nonet's fds
 * are counted before, while they are all open, and after they are closed,
 * while nonet still runs (the command waits on its stdin for the harness). */
static void forwarding_burst(const char *nonet, const char *xfer)
{
	char *echo[] = { (char *)xfer, "echo", "0", NULL };
	char spec[64], line[128], text[200], counts[BURST_ROUNDS][96];
	char *inside[] = { (char *)nonet, "--forward", spec, (char *)xfer, "burst", "127.0.0.1", INNER_PORT,
			   STR(BURST), "32K", STR(BURST_ROUNDS), NULL };
	int sv[2], port, r, verified[BURST_ROUNDS] = { 0 }, before = -1, after = -1, open_ = -1;
	int l_before = -1, l_after = -1, completed = 0, all_verified, st;
	size_t used;
	pid_t server, pid, launcher;
	struct lines out = { .fd = -1 };

	server = start_server(echo, &port);
	if (server < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		target(0, STR(BURST) " connections through a forward", "the echo server did not start");
		return;
	}
	snprintf(spec, sizeof spec, "%s:%d", INNER_PORT, port);
	pid = start_reading(inside, sv[1], &out);
	close(sv[1]);
	if (pid > 0 && next_line(&out, line, sizeof line, 10000) && strcmp(line, "ready") == 0) {
		launcher = child_of(pid);
		before = count_fds(pid);
		l_before = count_fds(launcher);
		for (r = 0; r < BURST_ROUNDS; r++) {
			/* MSG_NOSIGNAL: should the command be gone, this fails
			 * instead of killing the harness with SIGPIPE. */
			if (send(sv[0], "\n", 1, MSG_NOSIGNAL) != 1 || !next_line(&out, line, sizeof line, 60000) ||
			    sscanf(line, "verified %d", &verified[r]) != 1)
				break;
			open_ = count_fds(pid);
			if (send(sv[0], "\n", 1, MSG_NOSIGNAL) != 1 || !next_line(&out, line, sizeof line, 10000) ||
			    strcmp(line, "closed") != 0)
				break;
			after = settled_fds(pid, before);
			l_after = count_fds(launcher);
			snprintf(counts[r], sizeof counts[r], "%d with %d open, %d after", open_, verified[r], after);
			completed++;
		}
	}
	close(sv[0]);
	close(out.fd);
	st = reap_within(pid, 10000);
	kill(server, SIGTERM);
	reap_within(server, 2000);

	printf("%d connections at once through --forward, %d times, 32 KiB echoed on each:", BURST, BURST_ROUNDS);
	for (r = 0; r < BURST_ROUNDS; r++)
		printf(" %d", verified[r]);
	printf(" verified; nonet exited %s\n", exited_0(st) ? "0" : "with a failure");
	printf("  fds of the nonet host: %d before", before);
	for (r = 0; r < completed; r++)
		printf("; burst %d: %s", r + 1, counts[r]);
	printf("\n  fds of the launcher: %d before, %d after\n", l_before, l_after);

	all_verified = completed == BURST_ROUNDS && exited_0(st);
	used = (size_t)snprintf(text, sizeof text, "%d rounds of %d, verified:", BURST_ROUNDS, BURST);
	for (r = 0; r < BURST_ROUNDS; r++) {
		all_verified &= verified[r] == BURST;
		used += (size_t)snprintf(text + used, sizeof text - used, " %d", verified[r]);
	}
	snprintf(text + used, sizeof text - used, "%s", exited_0(st) ? "" : ", nonet failed");
	target(all_verified, STR(BURST) " concurrent connections through a forward", text);
	snprintf(text, sizeof text, "host: %d before, %d after (launcher: %d, %d)", before, after, l_before, l_after);
	target(completed == BURST_ROUNDS && before > 0 && after <= before, "no fd growth in nonet after the bursts", text);
}

#define PARALLEL 8
#define PARALLEL_MIB 256
#define PARALLEL_ROUNDS 3

/* One round of forwarding_parallel(): the total rate in MiB/s, 0 when a
 * transfer failed; *rss_kib: the peak RSS of the client side's largest
 * process (through --forward, the nonet host). */
static double parallel_round(int path, const char *nonet, const char *xfer, long *rss_kib)
{
	/* $1: xfer, $2: the bytes each client expects, then one port each. */
	static const char script[] =
		"x=$1 e=$2; shift 2; for p; do \"$x\" fetch 127.0.0.1 \"$p\" --expect \"$e\" & done; wait";
	unsigned long long bytes = (unsigned long long)PARALLEL_MIB << 20, got;
	char size[32], ports[PARALLEL][16], specs[PARALLEL][40], line[128];
	char *argv[16 + 3 * PARALLEL];
	int n = 0, k, port, verified = 0, ok = 1, st;
	pid_t servers[PARALLEL], pid;
	struct lines out;
	double t0, seconds;

	snprintf(size, sizeof size, "%llu", bytes);
	for (k = 0; k < PARALLEL; k++) {
		char *serve[] = { (char *)xfer, "serve", "0", size, NULL };

		servers[k] = start_server(serve, &port);
		ok &= servers[k] > 0;
		/* Inside, the clients use ports 4000, 4001, ... */
		snprintf(ports[k], sizeof ports[k], "%d", path == PLAIN ? port : atoi(INNER_PORT) + k);
		snprintf(specs[k], sizeof specs[k], "%s:%d", ports[k], port);
	}
	if (path == FORWARD) {
		argv[n++] = (char *)nonet;
		for (k = 0; k < PARALLEL; k++) {
			argv[n++] = "--forward";
			argv[n++] = specs[k];
		}
	}
	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = (char *)script;
	argv[n++] = "sh";
	argv[n++] = (char *)xfer;
	argv[n++] = size;
	for (k = 0; k < PARALLEL; k++)
		argv[n++] = ports[k];
	argv[n] = NULL;

	t0 = now_ms();
	pid = ok ? start_reading(argv, -1, &out) : -1;
	if (pid > 0) {
		/* Each client prints "BYTES SECONDS ATTEMPTS" when it is done;
		 * each gives up after 60 s. */
		while (next_line(&out, line, sizeof line, 70000))
			verified += sscanf(line, "%llu %lf", &got, &seconds) == 2 && got == bytes;
		close(out.fd);
	}
	st = reap_within(pid, 10000);
	*rss_kib = reaped_rss_kib;
	seconds = (now_ms() - t0) / 1e3;
	for (k = 0; k < PARALLEL; k++)
		ok &= servers[k] > 0 && exited_0(reap_within(servers[k], 10000));
	if (!ok || !exited_0(st) || verified != PARALLEL)
		return 0;
	return PARALLEL * (double)PARALLEL_MIB / seconds;
}

/* PARALLEL transfers at once, from PARALLEL servers on the host: to clients
 * beside them, and to clients inside one nonet, each through its own
 * forward.  nonet relays every connection in one thread, so this shows
 * what its forwards carry together, next to what the same clients reach
 * without it.  It has no target: the issue sets none. */
static void forwarding_parallel(const char *nonet, const char *xfer)
{
	double rate[2][PARALLEL_ROUNDS];
	long rss[2][PARALLEL_ROUNDS];
	int n[2] = { 0, 0 }, failed[2] = { 0, 0 }, r, k;
	struct summary s[2];

	for (r = 0; r < PARALLEL_ROUNDS; r++) {
		for (k = 0; k < 2; k++) {
			int path = (r + k) % 2;
			double x;

			if (failed[path])
				continue;
			x = parallel_round(path, nonet, xfer, &rss[path][n[path]]);
			if (x <= 0)
				failed[path] = 1;
			else
				rate[path][n[path]++] = x;
		}
	}
	printf("%d transfers of %d MiB at once, from %d servers on the host (total MiB/s over the whole run,\n"
	       "median of %d rounds; peak RSS of the largest process on the client side):\n",
	       PARALLEL, PARALLEL_MIB, PARALLEL, PARALLEL_ROUNDS);
	for (k = 0; k < 2; k++) {
		double peak = 0;

		s[k] = summarise(rate[k], n[k]);
		for (r = 0; r < n[k]; r++)
			peak = rss[k][r] > peak ? rss[k][r] : peak;
		if (n[k] == 0) {
			printf("  %-15s FAILED: no round completed\n", path_names[k]);
			continue;
		}
		printf("  %-15s %6.0f (%4.0f-%4.0f)", path_names[k], s[k].median, s[k].p25, s[k].p75);
		if (k == FORWARD && s[PLAIN].median > 0)
			printf(" = %.1f%% of plain loopback", 100 * s[k].median / s[PLAIN].median);
		printf(", %.1f MiB%s%s\n", peak / 1024, k == FORWARD ? " (the nonet host)" : "",
		       failed[k] ? ", then a round FAILED (no more tried)" : "");
	}
}

static void forwarding(const char *nonet, const char *xfer)
{
	int usable[N_PATHS] = { 1, 0, 0 };
	char port[16];

	current_issue = 5;
	snprintf(port, sizeof port, "%d", free_port());
	usable[FORWARD] = nonet_accepts(nonet, "--forward", "1");
	usable[PUBLISH] = nonet_accepts(nonet, "--publish", port);
	if (!usable[FORWARD])
		printf("note: '%s --forward 1 true' fails: no --forward measurements\n", nonet);
	if (!usable[PUBLISH])
		printf("note: '%s --publish %s true' fails: no --publish measurements\n", nonet, port);
	forwarding_throughput(nonet, xfer, usable);
	if (usable[FORWARD]) {
		forwarding_parallel(nonet, xfer);
		forwarding_burst(nonet, xfer);
	}
	else
		target(-1, STR(BURST) " concurrent connections through a forward", "not measured: no --forward");
	printf("\n");
	current_issue = 4;
}

/* Two builds of nonet, A and B, interleaved: for measuring one change. */
static int compare_builds(int rounds, char *a, char *b)
{
	static struct subject pair[2];
	struct summary wall[2], cpu[2];
	double tree[2], own[2];
	int r, k;

	pair[0] = (struct subject){ .label = "A", .argv = { a, "true", NULL } };
	pair[1] = (struct subject){ .label = "B", .argv = { b, "true", NULL } };
	for (r = 0; r < 10 + rounds; r++) {
		for (k = 0; k < 2; k++) {
			struct subject *c = &pair[(r + k) % 2];
			struct sample s = run_once(c->argv);

			if (r >= 10)
				c->runs[c->n++] = s;
			c->failures += !s.ok;
		}
	}
	for (k = 0; k < 2; k++) {
		wall[k] = summarise_field(&pair[k], 0);
		cpu[k] = summarise_field(&pair[k], 1);
		tree[k] = median_faults(&pair[k], 0);
		own[k] = median_faults(&pair[k], 1);
		printf("%s %-30s wall %.3f ms (%.3f-%.3f)  CPU %.3f ms  peak RSS %.1f MiB  "
		       "page faults %.0f (host %.0f)  %d failed\n",
		       pair[k].label, pair[k].argv[0], wall[k].median, wall[k].p25, wall[k].p75,
		       cpu[k].median, peak_rss(&pair[k]) / 1024.0, tree[k], own[k], pair[k].failures);
	}
	printf("B/A wall %.3f, CPU %.3f, page faults %.3f (host %.3f)\n", wall[1].median / wall[0].median,
	       cpu[1].median / cpu[0].median, tree[1] / tree[0], own[1] / own[0]);
	return 0;
}

/* --compare-many: several builds (and bwrap) in one interleaved run, one
 * line each. */
static int compare_many(int rounds, int n, char **builds)
{
	static struct subject many[12];
	int r, k;

	if (n < 1 || n > 12 || rounds < 1 || rounds > MAX_RUNS) {
		fputs("harness --compare-many: 1 to 12 builds, 1 to 1000 rounds\n", stderr);
		return 2;
	}
	for (k = 0; k < n; k++) {
		if (strcmp(builds[k], "bwrap") == 0)
			many[k] = (struct subject){ .label = "bwrap",
				.argv = { "bwrap", "--dev-bind", "/", "/", "--unshare-net", "true", NULL } };
		else
			many[k] = (struct subject){ .label = builds[k], .argv = { builds[k], "true", NULL } };
	}
	for (r = 0; r < 10 + rounds; r++) {
		for (k = 0; k < n; k++) {
			struct subject *c = &many[(r + k) % n];
			struct sample s = run_once(c->argv);

			if (r >= 10)
				c->runs[c->n++] = s;
			c->failures += !s.ok;
		}
	}
	for (k = 0; k < n; k++) {
		struct summary wall = summarise_field(&many[k], 0), cpu = summarise_field(&many[k], 1);

		printf("%-30s wall %.3f ms (%.3f-%.3f)  CPU %.3f ms  page faults %.0f (first process %.0f)  %d failed\n",
		       many[k].label, wall.median, wall.p25, wall.p75, cpu.median, median_faults(&many[k], 0),
		       median_faults(&many[k], 1), many[k].failures);
	}
	return 0;
}

/* ---- main ---------------------------------------------------------------- */

static void describe_machine(void)
{
	char line[256], model[256] = "unknown CPU";
	FILE *f = fopen("/proc/cpuinfo", "re");
	double load[3] = { 0 };

	if (f) {
		while (fgets(line, sizeof line, f)) {
			char *colon = strchr(line, ':');

			if (strncmp(line, "model name", 10) == 0 && colon) {
				snprintf(model, sizeof model, "%s", colon + 2);
				model[strcspn(model, "\n")] = 0;
				break;
			}
		}
		fclose(f);
	}
	getloadavg(load, 3);
	printf("machine: %s, %ld CPUs online, load average %.2f; uid %u\n\n", model,
	       sysconf(_SC_NPROCESSORS_ONLN), load[0], (unsigned)getuid());
}

int main(int argc, char **argv)
{
	static pid_t before[MAX_PROCS];
	char self[PATH_MAX];
	const char *only = getenv("BENCH_ONLY");
	int n_before, rounds, forwarding_only = only && strcmp(only, "forwarding") == 0;
	int startup_only = only && strcmp(only, "startup") == 0;
	ssize_t len;
	double t0 = now_ms();

	if (argc == 2 && strcmp(argv[1], "--list-fds") == 0)
		return list_fds();
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Whatever fds the caller left open would reach every command and show
	 * up as leaks: start clean, so that any extra fd is nonet's. */
	if (close_range(3, ~0U, 0) < 0)
		return 2;
	if (argc >= 4 && strcmp(argv[1], "--compare-many") == 0)
		return compare_many(env_int("BENCH_ROUNDS", atoi(argv[2]), MAX_RUNS), argc - 3, argv + 3);
	if (argc == 5 && strcmp(argv[1], "--compare") == 0)
		return compare_builds(env_int("BENCH_ROUNDS", atoi(argv[2]), MAX_RUNS), argv[3], argv[4]);
	if (argc != 3 && argc != 4) {
		fputs("usage: harness NONET FLOOR [XFER] | harness --compare ROUNDS NONET_A NONET_B | harness --compare-many ROUNDS NONET... | harness --list-fds\n",
		      stderr);
		return 2;
	}
	len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len < 0)
		return 2;
	self[len] = 0;
	rounds = env_int("BENCH_ROUNDS", 300, MAX_RUNS);

	describe_machine();
	n_before = own_processes(before, MAX_PROCS);
	if (!forwarding_only) {
		compare_startup(argv[1], argv[2], rounds);
		one_cpu_startup(rounds / 3 > 0 ? rounds / 3 : 1);
	}
	if (!forwarding_only && !startup_only) {
		self_test(argv[1]);
		pipe_throughput(argv[1], argv[2]);
		sequential(argv[1], argv[2]);
		concurrent(argv[1]);
	}
	if (argc == 4 && !startup_only) {
		if (!forwarding_only)
			printf("\n");
		forwarding(argv[1], argv[3]);
	}
	leaks(argv[1], self, before, n_before);

	print_targets(4, "Targets (issue 4)");
	print_targets(5, "Targets (issue 5: --forward and --publish)");
	print_targets(15, "Targets (issue 15: start-up)");
	print_targets(23, "Targets (issue 23: start-up page faults)");
	printf("\n%d of %d targets missed", n_failed, n_targets - n_skipped);
	if (n_skipped)
		printf(", %d not measured", n_skipped);
	printf("; benchmark took %.0f s\n", (now_ms() - t0) / 1e3);
	return 0;
}
