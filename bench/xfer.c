/*
 * xfer: the TCP ends of the forwarding benchmark (issue 5); the harness
 * starts them on either side of nonet's --forward and --publish.
 *
 *   xfer serve PORT BYTES       listen on 127.0.0.1:PORT (0: any free port),
 *                               print the port, send BYTES to the first
 *                               client, then wait for it to close
 *   xfer fetch HOST PORT [--expect BYTES] [--retry SECONDS]
 *                               connect, read to EOF, print
 *                               "BYTES SECONDS ATTEMPTS"; the time runs from
 *                               connect() to EOF
 *   xfer echo PORT              listen on 127.0.0.1:PORT (0: any), print the
 *                               port, echo every connection until killed
 *   xfer burst HOST PORT N BYTES ROUNDS
 *                               ROUNDS times: open N connections at once,
 *                               send BYTES on each, check the echo, keep them
 *                               open, then close them all; paced by lines on
 *                               stdin (see burst())
 *
 * BYTES may end in K, M or G (binary).  HOST is an IPv4 or IPv6 literal.
 * Data moves with plain read() and write() of 1 MiB buffers, as an ordinary
 * program would move it: what is measured is the path, not this tool.
 * Every mode but echo gives up after TIMEOUT seconds (SIGALRM), so that a
 * stalled relay fails the benchmark instead of hanging it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)
#define TIMEOUT 60
#define MAX_BURST 1000

static char buffer[CHUNK];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static _Noreturn void die(const char *what)
{
	fprintf(stderr, "xfer: %s: %s\n", what, strerror(errno));
	exit(1);
}

static unsigned long long parse_bytes(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		goto bad;
	switch (*end) {
	case 'G': v <<= 10; /* fall through */
	case 'M': v <<= 10; /* fall through */
	case 'K': v <<= 10; end++; break;
	}
	if (*end == 0)
		return v;
bad:
	fprintf(stderr, "xfer: '%s' is not a byte count\n", s);
	exit(2);
}

static int parse_port(const char *s, int allow_zero)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == 0 || *end != 0 || v < (allow_zero ? 0 : 1) || v > 65535) {
		fprintf(stderr, "xfer: '%s' is not a port\n", s);
		exit(2);
	}
	return (int)v;
}

static ssize_t write_all(int fd, const char *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

/* A listening socket on 127.0.0.1:port; prints the port it got. */
static int listen_loopback(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	socklen_t len = sizeof a;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
		die("bind");
	if (listen(fd, SOMAXCONN) < 0)
		die("listen");
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("getsockname");
	/* The harness reads this line to learn the port. */
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	return fd;
}

/* A socket connected to host:port, or -1 with errno. */
static int connect_to(const char *host, int port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, saved;

	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((unsigned short)port);
		len = sizeof *v4;
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((unsigned short)port);
		len = sizeof *v6;
	} else {
		fprintf(stderr, "xfer: '%s' is not an IP address\n", host);
		exit(2);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	while (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		if (errno == EINTR)
			continue;
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int serve(int port, unsigned long long bytes)
{
	int lfd = listen_loopback(port), fd;
	unsigned long long sent = 0;

	memset(buffer, 'x', sizeof buffer);
	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		if (errno != EINTR)
			die("accept");
	close(lfd);
	while (sent < bytes) {
		size_t n = bytes - sent < CHUNK ? (size_t)(bytes - sent) : CHUNK;

		if (write_all(fd, buffer, n) < 0)
			die("write");
		sent += n;
	}
	/* EOF for the client, then wait for its close: exiting now could end
	 * the command under nonet while the relay still holds data. */
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t r = read(fd, buffer, sizeof buffer);

		if (r == 0 || (r < 0 && errno != EINTR))
			break;
	}
	close(fd);
	return 0;
}

/* A connection that is refused, reset or closed before any data arrived is
 * retried until the deadline: a published port is reset until the server
 * inside listens.  Once data flowed, any error is a failure. */
static int fetch(const char *host, int port, long long expect, double retry_s)
{
	double deadline = now_s() + retry_s, t0, elapsed;
	unsigned long long got;
	int attempts = 0;

	for (;;) {
		const char *failed = "connect";
		int fd;
		ssize_t r = 0;

		attempts++;
		got = 0;
		t0 = now_s();
		fd = connect_to(host, port);
		if (fd >= 0) {
			while ((r = read(fd, buffer, sizeof buffer)) != 0) {
				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0)
					break;
				got += (unsigned long long)r;
			}
			elapsed = now_s() - t0;
			failed = "read";
			if (r == 0 && got == 0)
				errno = ENODATA; /* closed before any data */
			if (r < 0 && got > 0)
				die(failed);
			close(fd);
			if (got > 0)
				break;
		}
		if (now_s() >= deadline)
			die(failed);
		usleep(2000);
	}
	printf("%llu %.6f %d\n", got, elapsed, attempts);
	if (expect >= 0 && got != (unsigned long long)expect) {
		fprintf(stderr, "xfer: got %llu bytes, expected %lld\n", got, expect);
		return 1;
	}
	return 0;
}

/* ---- echo and burst: many connections at once --------------------------- */

struct echo_conn {
	int fd;
	size_t pending, offset; /* bytes read and not yet written back */
	char data[65536];
};

static _Noreturn void echo(int port)
{
	static struct echo_conn conns[MAX_BURST];
	static struct pollfd pfd[MAX_BURST + 1];
	int lfd = listen_loopback(port), n = 0, i;

	for (;;) {
		pfd[0] = (struct pollfd){ .fd = n < MAX_BURST ? lfd : -1, .events = POLLIN };
		for (i = 0; i < n; i++)
			pfd[i + 1] = (struct pollfd){ .fd = conns[i].fd,
				.events = conns[i].pending ? POLLOUT : POLLIN };
		if (poll(pfd, (nfds_t)n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (i = n - 1; i >= 0; i--) {
			struct echo_conn *c = &conns[i];
			ssize_t r;

			if (!pfd[i + 1].revents)
				continue;
			if (c->pending) {
				r = write(c->fd, c->data + c->offset, c->pending);
				if (r > 0) {
					c->offset += (size_t)r;
					c->pending -= (size_t)r;
					continue;
				}
			} else {
				r = read(c->fd, c->data, sizeof c->data);
				if (r > 0) {
					c->pending = (size_t)r;
					c->offset = 0;
					continue;
				}
			}
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			/* EOF or an error: this connection is done. */
			close(c->fd);
			conns[i] = conns[--n];
		}
		if (pfd[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				conns[n].fd = fd;
				conns[n].pending = 0;
				n++;
			}
		}
	}
}

/* The byte at position i of connection k: different on every connection,
 * so that crossed streams fail the check. */
static char pattern(int k, size_t i)
{
	return (char)((unsigned)k * 131u + (unsigned)(i % 251) * 7u);
}

/* One line on stdin; 0 at EOF. */
static int await_line(void)
{
	char c;
	ssize_t r;

	while ((r = read(0, &c, 1)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || c == '\n')
			return r > 0;
	}
	return 0;
}

/* Opens n connections, sends bytes on each and checks the echo, all at
 * once (non-blocking, one poll loop); returns how many checked out.  The
 * connections stay open in fds[]. */
static int open_and_verify(const char *host, int port, int n, size_t bytes, int *fds)
{
	static size_t sent[MAX_BURST], got[MAX_BURST];
	static struct pollfd pfd[MAX_BURST];
	static char in[65536], out[65536];
	int k, ok = 0, active = 0;

	for (k = 0; k < n; k++) {
		fds[k] = connect_to(host, port);
		if (fds[k] < 0) {
			fprintf(stderr, "xfer: connection %d: connect: %s\n", k, strerror(errno));
			continue;
		}
		sent[k] = got[k] = 0;
		fcntl(fds[k], F_SETFL, O_NONBLOCK);
		active++;
	}
	while (active > 0) {
		for (k = 0; k < n; k++) {
			int live = fds[k] >= 0 && got[k] < bytes;

			pfd[k] = (struct pollfd){ .fd = live ? fds[k] : -1,
				.events = (short)(POLLIN | (sent[k] < bytes ? POLLOUT : 0)) };
		}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (k = 0; k < n; k++) {
			size_t i, len;
			ssize_t r;

			if (pfd[k].fd < 0 || !pfd[k].revents)
				continue;
			if (sent[k] < bytes && (pfd[k].revents & POLLOUT)) {
				len = bytes - sent[k] < sizeof out ? bytes - sent[k] : sizeof out;
				for (i = 0; i < len; i++)
					out[i] = pattern(k, sent[k] + i);
				r = write(fds[k], out, len);
				if (r > 0)
					sent[k] += (size_t)r;
			}
			if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			len = bytes - got[k] < sizeof in ? bytes - got[k] : sizeof in;
			r = read(fds[k], in, len);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			for (i = 0; r > 0 && i < (size_t)r; i++)
				if (in[i] != pattern(k, got[k] + i))
					break;
			if (r <= 0 || i < (size_t)r) {
				fprintf(stderr, "xfer: connection %d: %s after %zu bytes\n", k,
					r < 0 ? strerror(errno) : r == 0 ? "closed" : "wrong data", got[k]);
				got[k] = bytes; /* done with it, not counted */
				active--;
				continue;
			}
			got[k] += (size_t)r;
			if (got[k] == bytes) {
				ok++;
				active--;
			}
		}
	}
	return ok;
}

/* Paced by the harness, which counts nonet's fds between the steps:
 *   prints "ready", waits for a line;
 *   each round: opens n connections and checks them, prints "verified K",
 *   waits for a line, closes them all, prints "closed", waits for a line
 *   or EOF.  The exit status is 0 if every connection checked out. */
static int burst(const char *host, int port, int n, size_t bytes, int rounds)
{
	static int fds[MAX_BURST];
	int r, k, ok, failed = 0;

	printf("ready\n");
	fflush(stdout);
	if (!await_line())
		return 1;
	for (r = 0; r < rounds; r++) {
		ok = open_and_verify(host, port, n, bytes, fds);
		failed |= ok != n;
		printf("verified %d\n", ok);
		fflush(stdout);
		await_line();
		for (k = 0; k < n; k++)
			if (fds[k] >= 0)
				close(fds[k]);
		printf("closed\n");
		fflush(stdout);
		await_line();
	}
	return failed;
}

static _Noreturn void usage(void)
{
	fputs("usage: xfer serve PORT BYTES\n"
	      "       xfer fetch HOST PORT [--expect BYTES] [--retry SECONDS]\n"
	      "       xfer echo PORT\n"
	      "       xfer burst HOST PORT N BYTES ROUNDS\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "echo") == 0 && argc == 3)
		echo(parse_port(argv[2], 1));
	alarm(TIMEOUT);
	if (strcmp(argv[1], "serve") == 0 && argc == 4)
		return serve(parse_port(argv[2], 1), parse_bytes(argv[3]));
	if (strcmp(argv[1], "fetch") == 0 && argc >= 4) {
		long long expect = -1;
		double retry = 0;
		int i;

		for (i = 4; i + 1 < argc; i += 2) {
			if (strcmp(argv[i], "--expect") == 0)
				expect = (long long)parse_bytes(argv[i + 1]);
			else if (strcmp(argv[i], "--retry") == 0)
				retry = atof(argv[i + 1]);
			else
				usage();
		}
		if (i != argc)
			usage();
		return fetch(argv[2], parse_port(argv[3], 0), expect, retry);
	}
	if (strcmp(argv[1], "burst") == 0 && argc == 7) {
		int n = atoi(argv[4]), rounds = atoi(argv[6]);
		unsigned long long bytes = parse_bytes(argv[5]);

		if (n < 1 || n > MAX_BURST || rounds < 1 || bytes == 0 || bytes > (1ULL << 30))
			usage();
		return burst(argv[2], parse_port(argv[3], 0), n, (size_t)bytes, rounds);
	}
	usage();
}
