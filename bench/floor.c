/*
 * floor: the least work that gives a command nonet's environment, as the
 * benchmark's reference point.
 *
 *   floor COMMAND [ARG...]
 *
 * One process, no helper, no status pipe, no signal forwarding: it moves
 * itself into a new user and network namespace, maps its own uid and gid,
 * raises "lo" and execs.  nonet cannot be cheaper than this; the benchmark
 * reports how far above it nonet is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *step)
{
	fprintf(stderr, "floor: %s: %s\n", step, strerror(errno));
	_exit(125);
}

/* One open and one write: procfs id maps accept a single write. */
static int write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, len);
	close(fd);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* The process maps itself: setgroups must be denied first (user_namespaces(7)). */
static void map_ids(uid_t uid, gid_t gid)
{
	char map[64];

	if (write_file("/proc/self/setgroups", "deny") < 0 && errno != ENOENT)
		die("write setgroups");
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (write_file("/proc/self/uid_map", map) < 0)
		die("write uid_map");
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	if (write_file("/proc/self/gid_map", map) < 0)
		die("write gid_map");
}

static void bring_loopback_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, "lo", sizeof "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		die("SIOCGIFFLAGS lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		die("SIOCSIFFLAGS lo");
	close(fd);
}

int main(int argc, char **argv)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();

	if (argc < 2) {
		fputs("usage: floor COMMAND [ARG...]\n", stderr);
		return 125;
	}
	/* 1. Both namespaces at once: the new user namespace owns the network one. */
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
		die("unshare");
	/* 2. Keep the caller's ids. */
	map_ids(uid, gid);
	/* 3. A fresh network namespace has only "lo", and it is down. */
	bring_loopback_up();
	/* 4. Become the command. */
	execvp(argv[1], argv + 1);
	die("exec");
	return 125;
}
