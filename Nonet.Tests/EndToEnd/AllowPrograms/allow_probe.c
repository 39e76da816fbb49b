/*
 * Test client for nonet --allow (AllowConnectTests): plain clients, and
 * the attacks on the connect hand-over that the design note reproduced.
 * Each mode prints what it saw, one line per fact, and exits 0 when it ran
 * to its end (the test judges the lines and the listeners' counts).
 *
 *   get BLOCK|NONBLOCK HOST PORT      HTTP/1.0 GET /hello.txt, print the body
 *   time HOST PORT                    how long a blocking connect takes to fail
 *   reaim ALLOWED CLOSEDPORT T PORT   a failed host socket connect()ed at T again
 *   unspec ALLOWED PORT T TPORT       connected host socket, AF_UNSPEC, then T
 *   fastopen ALLOWED CLOSEDPORT T P   failed host socket re-aimed by MSG_FASTOPEN
 *   fastopen-connect ALLOWED CP T P   ... by TCP_FASTOPEN_CONNECT and connect()
 *   flip ALLOWED PORT T TPORT N       another thread flips the address: N connects
 *   swap ALLOWED CLOSEDPORT T P N     another thread dup2()s a host socket over
 *                                     the one being connected: N connects
 *   swap-unix HOSTFD NAME N           the same with an inherited host Unix socket
 *                                     and an abstract name
 *   udp ALLOWED PORT                  connect() and send() a UDP socket
 *   hostile ALLOWED BLACKHOLEPORT N   bad addresses, lengths, descriptors; N
 *                                     blocking connects to a black hole, each
 *                                     cut short by a signal
 *   uring                             io_uring_setup()
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <stddef.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif

static int make_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof *in;
		return AF_INET;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof *in6;
		return AF_INET6;
	}
	fprintf(stderr, "bad address %s\n", host);
	exit(2);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *err(int e)
{
	static char b[64];
	snprintf(b, sizeof b, "%s", e == 0 ? "OK" : strerrorname_np(e));
	return b;
}

/* A TCP connect, blocking or not, to HOST:PORT: the socket, or -errno. */
static int dial(const char *host, int port, int nonblock)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int family = make_addr(host, port, &ss, &len);
	int fd = socket(family, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) == 0)
		return fd;
	int e = errno;
	if (nonblock && e == EINPROGRESS) {
		struct pollfd p = { fd, POLLOUT, 0 };
		if (poll(&p, 1, 5000) != 1) {
			close(fd);
			return -ETIMEDOUT;
		}
		socklen_t l = sizeof e;
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
		if (e == 0)
			return fd;
	}
	close(fd);
	return -e;
}

/* connect() of an existing socket: 0 or errno. */
static int reconnect(int fd, const char *host, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr(host, port, &ss, &len);
	return connect(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : errno;
}

/* A host socket whose connection failed: a blocking connect to an allowed
 * address's closed port (nonet hands it over; the peer refuses). */
static int failed_host_socket(const char *allowed, int closed_port, int family_hint)
{
	(void)family_hint;
	struct sockaddr_storage ss;
	socklen_t len;
	int family = make_addr(allowed, closed_port, &ss, &len);
	int fd = socket(family, SOCK_STREAM, 0);
	int r = connect(fd, (struct sockaddr *)&ss, len);
	printf("first connect: %s\n", err(r == 0 ? 0 : errno));
	return fd;
}

static int get(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	int fd = dial(argv[3], atoi(argv[4]), strcmp(argv[2], "NONBLOCK") == 0);
	if (fd < 0) {
		printf("connect: %s\n", err(-fd));
		return 1;
	}
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	const char *req = "GET /hello.txt HTTP/1.0\r\n\r\n";
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		printf("write: %s\n", err(errno));
		return 1;
	}
	char buf[4096];
	size_t got = 0;
	ssize_t n;
	while ((n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	char *body = strstr(buf, "\r\n\r\n");
	printf("body: %s", body ? body + 4 : "(none)\n");
	return 0;
}

static int time_connect(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	double t0 = now();
	int fd = dial(argv[2], atoi(argv[3]), 0);
	printf("connect: %s in %.3f s\n", err(fd < 0 ? -fd : 0), now() - t0);
	return 0;
}

static void try_targets(int fd, const char *target, int port)
{
	for (int i = 0; i < 2; i++)
		printf("again: %s\n", err(reconnect(fd, target, port)));
	char c = 'x';
	ssize_t w = send(fd, &c, 1, MSG_NOSIGNAL);
	printf("write: %s\n", err(w == 1 ? 0 : errno));
}

static int reaim(int argc, char **argv)
{
	if (argc < 6)
		return 2;
	int fd = failed_host_socket(argv[2], atoi(argv[3]), 0);
	try_targets(fd, argv[4], atoi(argv[5]));
	return 0;
}

static int unspec(int argc, char **argv)
{
	if (argc < 6)
		return 2;
	int fd = dial(argv[2], atoi(argv[3]), 0);
	printf("first connect: %s\n", err(fd < 0 ? -fd : 0));
	if (fd < 0)
		return 1;
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	printf("unspec: %s\n", err(connect(fd, &sa, sizeof sa) == 0 ? 0 : errno));
	try_targets(fd, argv[4], atoi(argv[5]));
	return 0;
}

static int fastopen(int argc, char **argv)
{
	if (argc < 6)
		return 2;
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr(argv[4], atoi(argv[5]), &ss, &len);
	const char *names[] = { "sendto", "sendmsg", "sendmmsg" };
	for (int call = 0; call < 3; call++) {
		int fd = failed_host_socket(argv[2], atoi(argv[3]), 0);
		char data[] = "x";
		struct iovec iov = { data, 1 };
		struct msghdr msg = { .msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1 };
		struct mmsghdr mm = { .msg_hdr = msg };
		long r;
		if (call == 0)
			r = sendto(fd, data, 1, MSG_FASTOPEN, (struct sockaddr *)&ss, len);
		else if (call == 1)
			r = sendmsg(fd, &msg, MSG_FASTOPEN);
		else
			r = sendmmsg(fd, &mm, 1, MSG_FASTOPEN);
		printf("%s: %s\n", names[call], err(r >= 0 ? 0 : errno));
		close(fd);
	}
	return 0;
}

static int fastopen_connect(int argc, char **argv)
{
	if (argc < 6)
		return 2;
	int fd = failed_host_socket(argv[2], atoi(argv[3]), 0);
	int one = 1;
	printf("setsockopt: %s\n", err(setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one) == 0 ? 0 : errno));
	try_targets(fd, argv[4], atoi(argv[5]));
	return 0;
}

/* The address-flip race: the address connect() reads is flipped from an
 * allowed one to a target by another thread. */
static struct sockaddr_storage flip_addr, flip_good, flip_bad;
static atomic_int flip_stop;
static long flips;

static void *flipper(void *unused)
{
	(void)unused;
	/* Each address for a while, so that connects see both. */
	while (!atomic_load(&flip_stop)) {
		memcpy(&flip_addr, &flip_bad, sizeof flip_addr);
		atomic_thread_fence(memory_order_seq_cst);
		for (volatile int i = 0; i < 20000; i++)
			;
		memcpy(&flip_addr, &flip_good, sizeof flip_addr);
		atomic_thread_fence(memory_order_seq_cst);
		for (volatile int i = 0; i < 20000; i++)
			;
		flips++;
	}
	return NULL;
}

static int flip(int argc, char **argv)
{
	if (argc < 7)
		return 2;
	socklen_t len, len2;
	int family = make_addr(argv[2], atoi(argv[3]), &flip_good, &len);
	make_addr(argv[4], atoi(argv[5]), &flip_bad, &len2);
	memcpy(&flip_addr, &flip_good, sizeof flip_addr);
	int n = atoi(argv[6]), ok = 0, failed = 0;
	pthread_t t;
	pthread_create(&t, NULL, flipper, NULL);
	for (int i = 0; i < n; i++) {
		int fd = socket(family, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&flip_addr, len) == 0)
			ok++;
		else
			failed++;
		close(fd);
	}
	atomic_store(&flip_stop, 1);
	pthread_join(t, NULL);
	printf("flip: %d connected, %d failed, %ld flips\n", ok, failed, flips);
	return 0;
}

/* The descriptor-swap race: VICTIM is connected to the target while another
 * thread puts a host socket (or the inside one back) in its place. */
static int swap_victim = 100, swap_inside = -1, swap_host = -1;

static void *swapper(void *unused)
{
	(void)unused;
	while (!atomic_load(&flip_stop)) {
		dup2(swap_host, swap_victim);
		dup2(swap_inside, swap_victim);
	}
	return NULL;
}

static int race_swap(struct sockaddr *target, socklen_t len, int n)
{
	int reached = 0;
	pthread_t t;
	pthread_create(&t, NULL, swapper, NULL);
	for (int i = 0; i < n; i++) {
		if (connect(swap_victim, target, len) == 0)
			reached++;
	}
	atomic_store(&flip_stop, 1);
	pthread_join(t, NULL);
	printf("swap: %d connected of %d\n", reached, n);
	return 0;
}

static int swap(int argc, char **argv)
{
	if (argc < 7)
		return 2;
	swap_host = failed_host_socket(argv[2], atoi(argv[3]), 0);
	struct sockaddr_storage ss;
	socklen_t len;
	int family = make_addr(argv[4], atoi(argv[5]), &ss, &len);
	swap_inside = socket(family, SOCK_STREAM, 0);
	dup2(swap_inside, swap_victim);
	return race_swap((struct sockaddr *)&ss, len, atoi(argv[6]));
}

static int swap_unix(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	swap_host = atoi(argv[2]);
	int type;
	socklen_t tl = sizeof type;
	if (getsockopt(swap_host, SOL_SOCKET, SO_TYPE, &type, &tl) != 0) {
		printf("no inherited socket at %d: %s\n", swap_host, err(errno));
		return 1;
	}
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	size_t l = strlen(argv[3]);
	memcpy(un.sun_path + 1, argv[3], l); /* abstract: a leading NUL */
	swap_inside = socket(AF_UNIX, SOCK_STREAM, 0);
	dup2(swap_inside, swap_victim);
	return race_swap((struct sockaddr *)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + l), atoi(argv[4]));
}

static int udp(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	struct sockaddr_storage ss;
	socklen_t len;
	int family = make_addr(argv[2], atoi(argv[3]), &ss, &len);
	int fd = socket(family, SOCK_DGRAM, 0);
	printf("udp connect: %s\n", err(connect(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : errno));
	printf("udp send: %s\n", err(send(fd, "x", 1, 0) == 1 ? 0 : errno));
	printf("udp sendto: %s\n", err(sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len) == 1 ? 0 : errno));
	return 0;
}

static void on_alarm(int sig)
{
	(void)sig;
}

static int hostile(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	struct sockaddr_storage ss;
	socklen_t len;
	int family = make_addr(argv[2], atoi(argv[3]), &ss, &len);
	int fd = socket(family, SOCK_STREAM, 0);
	printf("null: %s\n", err(connect(fd, NULL, len) == 0 ? 0 : errno));
	printf("unmapped: %s\n", err(connect(fd, (struct sockaddr *)16, len) == 0 ? 0 : errno));
	printf("short: %s\n", err(connect(fd, (struct sockaddr *)&ss, 3) == 0 ? 0 : errno));
	printf("long: %s\n", err(connect(fd, (struct sockaddr *)&ss, 4096) == 0 ? 0 : errno));
	printf("negative: %s\n", err(connect(fd, (struct sockaddr *)&ss, (socklen_t)-1) == 0 ? 0 : errno));
	printf("closed: %s\n", err(connect(900, (struct sockaddr *)&ss, len) == 0 ? 0 : errno));
	printf("negative fd: %s\n", err(connect(-5, (struct sockaddr *)&ss, len) == 0 ? 0 : errno));
	printf("not a socket: %s\n", err(connect(0 + open("/dev/null", O_RDONLY), (struct sockaddr *)&ss, len) == 0 ? 0 : errno));
	close(fd);

	/* Blocking connects to an allowed address that never answers, each
	 * interrupted by a signal: EINTR at once, every time. */
	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);
	int n = atoi(argv[4]), eintr = 0, other = 0;
	double slowest = 0;
	for (int i = 0; i < n; i++) {
		int s = socket(family, SOCK_STREAM, 0);
		/* Repeating, so that a signal that came before connect() began
		 * is followed by one during it. */
		struct itimerval it = { .it_interval = { 0, 2000 }, .it_value = { 0, 2000 } };
		struct itimerval off = { { 0, 0 }, { 0, 0 } };
		setitimer(ITIMER_REAL, &it, NULL);
		double t0 = now();
		int r = connect(s, (struct sockaddr *)&ss, len);
		double took = now() - t0;
		setitimer(ITIMER_REAL, &off, NULL);
		if (took > slowest)
			slowest = took;
		if (r < 0 && errno == EINTR)
			eintr++;
		else
			other++;
		close(s);
	}
	printf("blackhole: %d EINTR, %d other, slowest %.3f s\n", eintr, other, slowest);
	return 0;
}

static int uring(void)
{
	char params[120] = { 0 };
	long r = syscall(425 /* io_uring_setup */, 4, params);
	printf("io_uring_setup: %s\n", err(r >= 0 ? 0 : errno));
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return 2;
	const char *m = argv[1];
	if (!strcmp(m, "get"))
		return get(argc, argv);
	if (!strcmp(m, "time"))
		return time_connect(argc, argv);
	if (!strcmp(m, "reaim"))
		return reaim(argc, argv);
	if (!strcmp(m, "unspec"))
		return unspec(argc, argv);
	if (!strcmp(m, "fastopen"))
		return fastopen(argc, argv);
	if (!strcmp(m, "fastopen-connect"))
		return fastopen_connect(argc, argv);
	if (!strcmp(m, "flip"))
		return flip(argc, argv);
	if (!strcmp(m, "swap"))
		return swap(argc, argv);
	if (!strcmp(m, "swap-unix"))
		return swap_unix(argc, argv);
	if (!strcmp(m, "udp"))
		return udp(argc, argv);
	if (!strcmp(m, "hostile"))
		return hostile(argc, argv);
	if (!strcmp(m, "uring"))
		return uring();
	return 2;
}
