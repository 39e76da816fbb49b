/*
 * Inside the new network namespace, run by the launcher's child before it
 * drops its capabilities: "lo" up, the namespace's own sysctls, and the
 * host's nameserver addresses made local so that nonet can answer them.
 * Helpers return -1 and leave errno; the caller reports the step.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "netns.h"

/* From <linux/netlink.h> and <linux/rtnetlink.h>, which musl does not ship. */
#define NETLINK_ROUTE 0
#define NLM_F_REQUEST 0x01
#define NLM_F_ACK 0x04
#define NLM_F_EXCL 0x200
#define NLM_F_CREATE 0x400
#define NLMSG_ERROR 0x2
#define RTM_NEWROUTE 24
#define RT_TABLE_LOCAL 255
#define RTPROT_BOOT 3
#define RT_SCOPE_HOST 254
#define RTN_LOCAL 2
#define RTA_DST 1
#define RTA_OIF 4
#define NLMSG_HDRLEN ((unsigned)sizeof(struct nlmsghdr))
#define RTA_ALIGN(len) (((len) + 3u) & ~3u)
#define RTA_LENGTH(len) (RTA_ALIGN((unsigned)sizeof(struct rtattr)) + (unsigned)(len))
#define RTA_DATA(rta) ((void *)((char *)(rta) + RTA_LENGTH(0)))

struct sockaddr_nl {
	unsigned short nl_family;
	unsigned short nl_pad;
	uint32_t nl_pid;
	uint32_t nl_groups;
};
struct nlmsghdr {
	uint32_t nlmsg_len;
	uint16_t nlmsg_type;
	uint16_t nlmsg_flags;
	uint32_t nlmsg_seq;
	uint32_t nlmsg_pid;
};
struct nlmsgerr {
	int error;
	struct nlmsghdr msg;
};
struct rtmsg {
	unsigned char rtm_family;
	unsigned char rtm_dst_len;
	unsigned char rtm_src_len;
	unsigned char rtm_tos;
	unsigned char rtm_table;
	unsigned char rtm_protocol;
	unsigned char rtm_scope;
	unsigned char rtm_type;
	unsigned rtm_flags;
};
struct rtattr {
	unsigned short rta_len;
	unsigned short rta_type;
};
struct ifaddrmsg {
	unsigned char ifa_family;
	unsigned char ifa_prefixlen;
	unsigned char ifa_flags;
	unsigned char ifa_scope;
	uint32_t ifa_index;
};
#define RTM_NEWADDR 20
#define IFA_ADDRESS 1
#define IFA_LOCAL 2
#define IFA_F_NODAD 0x02

static int rtnetlink_request(const struct nlmsghdr *request);

#define DNS_PORT 53
#define TCP_BACKLOG 64

#ifndef IP_FREEBIND
#define IP_FREEBIND 15
#endif

/* Closes FD and fails, keeping the errno of what failed. */
static int close_and_fail(int fd)
{
	int saved_errno = errno;

	close(fd);
	errno = saved_errno;
	return -1;
}

static int write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int saved_errno;

	if (fd < 0)
		return -1;
	do
		n = write(fd, text, len);
	while (n < 0 && errno == EINTR);
	saved_errno = errno;
	close(fd);
	if (n == (ssize_t)len)
		return 0;
	errno = n < 0 ? saved_errno : EIO;
	return -1;
}

int parse_address(const char *text, struct nonet_address *out)
{
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, text, &out->addr.v4) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &out->addr.v6) == 1) {
		out->family = AF_INET6;
		return 0;
	}
	errno = EINVAL;
	return -1;
}

int is_loopback(const struct nonet_address *address)
{
	if (address->family == AF_INET)
		return (ntohl(address->addr.v4.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&address->addr.v6);
}

/* A fresh namespace has only "lo", and it is down.  Raising it gives
 * 127.0.0.1/8 and ::1. */
int bring_loopback_up(void)
{
	struct ifreq ifr;
	int fd;

	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, "lo", sizeof "lo");
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return close_and_fail(fd);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return close_and_fail(fd);
	close(fd);
	return 0;
}

#define PORT_START_PATH "/proc/sys/net/ipv4/ip_unprivileged_port_start"

/* net.ipv4.ip_unprivileged_port_start of the network namespace the caller
 * is in (each namespace has its own; a new one starts at 1024), or -1. */
int read_unprivileged_port_start(void)
{
	char text[16];
	int fd = open(PORT_START_PATH, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	int value = 0;
	ssize_t i;

	if (fd < 0)
		return -1;
	do
		n = read(fd, text, sizeof text - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return -1;
	for (i = 0; i < n && text[i] >= '0' && text[i] <= '9' && value <= 65536; i++)
		value = value * 10 + (text[i] - '0');
	return i > 0 && i < n && text[i] == '\n' && value <= 65536 ? value : -1;
}

/* Only the network changes: a port the caller could not bind outside, it
 * cannot bind inside, and the other way round (a test suite that checks
 * that an ordinary user cannot bind port 1 passes inside as outside).  The
 * new namespace gets the caller's value from outside, or 0 for a caller
 * that could bind any port there (root, CAP_NET_BIND_SERVICE): inside, it
 * has no capabilities left.  --forward needs nothing of this: the child
 * binds its listeners while it still holds its capabilities.  Best effort:
 * where /proc/sys is read-only the kernel's 1024 stays. */
void keep_unprivileged_port_start(int outside, int may_bind_any_port)
{
	char text[16];

	if (may_bind_any_port)
		outside = 0;
	if (outside < 0)
		return;
	snprintf(text, sizeof text, "%d\n", outside);
	(void)write_file(PORT_START_PATH, text);
}

/* For a root caller, just before /proc/sys goes read-only: no user namespace
 * can be made inside this one (user.max_user_namespaces is per user
 * namespace, and counts every namespace nested below it, at any depth).
 * In a nested user namespace root would hold every capability again, over
 * namespaces of its own, and uid 0 passes the owner checks of the host's
 * root-owned files in what it mounts there: a cgroup namespace's cgroupfs
 * is the host's hierarchy, writable (issue 19).  Another caller's uid owns
 * nothing of the host's that way, and keeps nesting (nonet in nonet). */
int forbid_user_namespaces(void)
{
	return write_file("/proc/sys/user/max_user_namespaces", "0\n");
}

/* ping(8) without privileges uses ICMP datagram sockets, which the kernel
 * allows to the groups in net.ipv4.ping_group_range (per network namespace,
 * "1 0", nobody, in a new one; ICMPv6 uses the same range).  Only a mapped
 * gid may be written, so this runs after the maps. */
int allow_ping(gid_t gid)
{
	char range[32];

	snprintf(range, sizeof range, "%u %u\n", (unsigned)gid, (unsigned)gid);
	return write_file("/proc/sys/net/ipv4/ping_group_range", range);
}

/* One attribute of an rtnetlink request: its TYPE, then LEN bytes of DATA. */
struct rtnetlink_attribute {
	unsigned short type;
	const void *data;
	size_t len;
};

/* Asks the kernel over rtnetlink to create something new (NLM_F_CREATE |
 * NLM_F_EXCL): one request of TYPE, its fixed part BODY (a struct rtmsg or
 * struct ifaddrmsg of BODY_LEN bytes) after the header, then N_ATTRS
 * attributes, each at a 4-byte boundary.  -1 with EMSGSIZE if they do not
 * fit; else rtnetlink_request()'s answer. */
static int rtnetlink_create(uint16_t type, const void *body, size_t body_len,
			    const struct rtnetlink_attribute *attrs, size_t n_attrs)
{
	union {
		struct nlmsghdr nh;
		char bytes[128];
	} req;
	size_t len = NLMSG_HDRLEN + body_len;
	size_t i;

	if (len > sizeof req) {
		errno = EMSGSIZE;
		return -1;
	}
	memset(&req, 0, sizeof req);
	memcpy(req.bytes + NLMSG_HDRLEN, body, body_len);
	for (i = 0; i < n_attrs; i++) {
		struct rtattr rta = {
			.rta_len = (unsigned short)RTA_LENGTH(attrs[i].len),
			.rta_type = attrs[i].type,
		};

		len = RTA_ALIGN(len);
		if (attrs[i].len > sizeof req || len + RTA_LENGTH(attrs[i].len) > sizeof req) {
			errno = EMSGSIZE;
			return -1;
		}
		memcpy(req.bytes + len, &rta, sizeof rta);
		memcpy(req.bytes + len + RTA_LENGTH(0), attrs[i].data, attrs[i].len);
		len += RTA_LENGTH(attrs[i].len);
	}
	req.nh.nlmsg_len = (uint32_t)len;
	req.nh.nlmsg_type = type;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	req.nh.nlmsg_seq = 1;
	return rtnetlink_request(&req.nh);
}

/* A route of type "local" for exactly ADDRESS, in the local table, on "lo"
 * (ip route add local ADDRESS dev lo table local): packets to it are
 * delivered inside, where nonet's DNS sockets wait, instead of failing with
 * ENETUNREACH.  No address is added, so "lo" still shows only 127.0.0.1/8
 * and ::1.  One RTM_NEWROUTE over rtnetlink, acknowledged. */
int route_locally(const struct nonet_address *address)
{
	size_t addr_len = address->family == AF_INET ? 4 : 16;
	unsigned int lo = if_nametoindex("lo");
	struct rtmsg rt = {
		.rtm_family = (unsigned char)address->family,
		.rtm_dst_len = (unsigned char)(addr_len * 8),
		.rtm_table = RT_TABLE_LOCAL,
		.rtm_protocol = RTPROT_BOOT,
		.rtm_scope = RT_SCOPE_HOST,
		.rtm_type = RTN_LOCAL,
	};
	struct rtnetlink_attribute attrs[] = {
		{ RTA_DST, &address->addr, addr_len },
		{ RTA_OIF, &lo, sizeof lo },
	};

	if (lo == 0)
		return -1;
	/* EEXIST: a loopback address, or the same nameserver listed twice. */
	return rtnetlink_create(RTM_NEWROUTE, &rt, sizeof rt, attrs, sizeof attrs / sizeof attrs[0]);
}

/* Sends one rtnetlink request and waits for its acknowledgement; EEXIST
 * counts as done. */
static int rtnetlink_request(const struct nlmsghdr *request)
{
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr err;
	} ack;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	ssize_t n;
	int fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -1;
	do
		n = sendto(fd, request, request->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return close_and_fail(fd);
	do
		n = recv(fd, &ack, sizeof ack, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return close_and_fail(fd);
	close(fd);
	if ((size_t)n < sizeof ack || ack.nh.nlmsg_type != NLMSG_ERROR) {
		errno = EPROTO;
		return -1;
	}
	if (ack.err.error != 0 && ack.err.error != -EEXIST) {
		errno = -ack.err.error;
		return -1;
	}
	return 0;
}

/* --allow: ADDRESS (192.0.0.8, RFC 7600, or 100::8, RFC 6666: neither
 * leads anywhere) as a /32 or /128 on "lo" (ip addr add ADDRESS dev lo).
 * glibc's getaddrinfo(AI_ADDRCONFIG) counts no loopback address, and with
 * only 127.0.0.1 and ::1 it would answer "no such name" for every allowed
 * name without asking.  One RTM_NEWADDR, acknowledged. */
int add_loopback_address(const struct nonet_address *address)
{
	size_t addr_len = address->family == AF_INET ? 4 : 16;
	unsigned int lo = if_nametoindex("lo");
	struct ifaddrmsg ifa = {
		.ifa_family = (unsigned char)address->family,
		.ifa_prefixlen = (unsigned char)(addr_len * 8),
		.ifa_flags = IFA_F_NODAD,
		.ifa_index = lo,
	};
	struct rtnetlink_attribute attrs[] = {
		{ IFA_LOCAL, &address->addr, addr_len },
		{ IFA_ADDRESS, &address->addr, addr_len },
	};

	if (lo == 0)
		return -1;
	return rtnetlink_create(RTM_NEWADDR, &ifa, sizeof ifa, attrs, sizeof attrs / sizeof attrs[0]);
}

/* A socket of TYPE (SOCK_DGRAM or SOCK_STREAM) on ADDRESS port 53, for the
 * host to answer on.  IPv6 binds only to assigned addresses, and a local
 * route assigns none: IP_FREEBIND lets it bind, and the route delivers. */
int bind_dns_socket(const struct nonet_address *address, int type)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;
	int fd;

	memset(&ss, 0, sizeof ss);
	if (address->family == AF_INET) {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;

		a4->sin_family = AF_INET;
		a4->sin_port = htons(DNS_PORT);
		a4->sin_addr = address->addr.v4;
		len = sizeof *a4;
	} else {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;

		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(DNS_PORT);
		a6->sin6_addr = address->addr.v6;
		len = sizeof *a6;
	}
	fd = socket(address->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if ((address->family == AF_INET6 &&
	     (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0 ||
	      setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one) < 0)) ||
	    /* A server of the command's on 0.0.0.0:53 that also sets
	     * SO_REUSEADDR can still bind beside these. */
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, TCP_BACKLOG) < 0))
		return close_and_fail(fd);
	return fd;
}
