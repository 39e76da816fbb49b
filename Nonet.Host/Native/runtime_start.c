/*
 * Linked into the NativeAOT host (see Nonet.Host.csproj): one line and
 * status 125 when the .NET runtime cannot start.
 *
 * The runtime sets itself up before Main runs; when it cannot (too little
 * address space under 'ulimit -v', no thread under 'ulimit -u'), it returns
 * -1 from main() and the process exits 255 without a word, a status that
 * could be the command's, or, short of memory, it may even crash with
 * SIGSEGV.  This constructor registers an exit handler and a SIGSEGV
 * handler (the runtime passes on faults that are not its own to the handler
 * it found).  Main tells them the runtime started (nonet_runtime_started);
 * an exit or a crash before that is the runtime's failure: they say so,
 * naming the limits that cause it, and end the process with nonet's own
 * 125.  A crash after that is left as it was.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void nonet_runtime_started(void);
void nonet_prestart_cancel(void);

static volatile int started;

static void limit_text(int resource, const char *name, char *out, size_t size)
{
	struct rlimit rl;

	if (getrlimit(resource, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		snprintf(out, size, "%s is %llu", name,
			 (unsigned long long)(resource == RLIMIT_AS ? rl.rlim_cur / 1024 : rl.rlim_cur));
	else
		snprintf(out, size, "%s is unlimited", name);
}

static void report_failed_start(void)
{
	char memory[64], processes[64], line[256];
	int n;

	if (started)
		return;
	limit_text(RLIMIT_AS, "'ulimit -v'", memory, sizeof memory);
	limit_text(RLIMIT_NPROC, "'ulimit -u'", processes, sizeof processes);
	n = snprintf(line, sizeof line,
		     "nonet: cannot start: the .NET runtime could not get the memory or threads it needs; "
		     "check the limits (%s, %s)\n", memory, processes);
	if (n > 0)
		(void)!write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	/* A launcher Native/prestart.c started ends too, without running anything. */
	nonet_prestart_cancel();
	_exit(125);
}

static void report_crashed_start(int sig)
{
	if (started) {
		/* Not the start: crash as if this handler were not there. */
		(void)signal(sig, SIG_DFL);
		return;
	}
	report_failed_start();
}

__attribute__((constructor)) static void watch_runtime_start(void)
{
	struct sigaction sa;

	(void)atexit(report_failed_start);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = report_crashed_start;
	sa.sa_flags = SA_NODEFER | SA_RESETHAND;
	(void)sigaction(SIGSEGV, &sa, NULL);
}

/* Called first thing in Main: from here on, exits are nonet's own. */
void nonet_runtime_started(void)
{
	started = 1;
}

/* argv as the kernel gave it, for Interop/RawProcess.cs: glibc passes it to
 * the executable's constructors, so Main need not read /proc/self/cmdline
 * (one open, one read and a copy on every run). */
int nonet_arguments(char ***argv);

static int saved_argc;
static char **saved_argv;

__attribute__((constructor)) static void keep_arguments(int argc, char **argv, char **envp)
{
	(void)envp;
	saved_argc = argc;
	saved_argv = argv;
}

/* argc, with *argv set; 0 when no constructor ran with them. */
int nonet_arguments(char ***argv)
{
	*argv = saved_argv;
	return saved_argv == NULL ? 0 : saved_argc;
}

/* The environment for Interop.cs (Libc.Environ): the host is a static
 * executable, which has no dynamic symbol table in which managed code
 * could look 'environ' up. */
extern char **environ;
char **nonet_environ(void);

char **nonet_environ(void)
{
	return environ;
}
