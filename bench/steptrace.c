/*
 * steptrace: the addresses a program's main thread executes, for
 * bench/startup-order.py (issue 23).
 *
 *   steptrace OUT LOW HIGH PROGRAM [ARG...]
 *
 * Runs PROGRAM under ptrace, one instruction at a time (PTRACE_SINGLESTEP),
 * and writes to OUT, in hex, one line per instruction address in
 * [LOW, HIGH) the first time it runs: the order in which the code is first
 * reached.  Only the main thread is followed (threads it starts and
 * processes it spawns run freely).  About a million instructions a minute.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long low, high;
	unsigned char *seen;
	long steps = 0;
	int st, pending = 0;
	FILE *out;
	pid_t pid;

	if (argc < 5) {
		fputs("usage: steptrace OUT LOW HIGH PROGRAM [ARG...]\n", stderr);
		return 2;
	}
	low = strtoul(argv[2], NULL, 0);
	high = strtoul(argv[3], NULL, 0);
	if (high <= low || high - low > (1UL << 30) || !(seen = calloc(high - low, 1)) || !(out = fopen(argv[1], "we"))) {
		fprintf(stderr, "steptrace: bad range or %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		execv(argv[4], argv + 4);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFSTOPPED(st))
		return 2;
	ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_EXITKILL);
	for (;;) {
		struct user_regs_struct regs;

		/* A signal other than the step's SIGTRAP is delivered on the next step. */
		if (ptrace(PTRACE_SINGLESTEP, pid, 0, pending) < 0 || waitpid(pid, &st, __WALL) < 0)
			break;
		pending = 0;
		if (WIFEXITED(st) || WIFSIGNALED(st))
			break;
		if (WSTOPSIG(st) != SIGTRAP) {
			pending = WSTOPSIG(st);
			continue;
		}
		steps++;
		if (ptrace(PTRACE_GETREGS, pid, 0, &regs) < 0)
			break;
		if (regs.rip >= low && regs.rip < high && !seen[regs.rip - low]) {
			seen[regs.rip - low] = 1;
			fprintf(out, "%llx\n", (unsigned long long)regs.rip);
		}
	}
	fprintf(stderr, "steptrace: %ld instructions; %s %d\n", steps,
		WIFEXITED(st) ? "exit status" : "killed by signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	if (fclose(out) != 0)
		return 2;
	/* A run that failed took another path than start-up's: its trace is
	 * no order to lay out by. */
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 3;
}
