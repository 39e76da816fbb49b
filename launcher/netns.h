/*
 * netns.c: what the launcher's child sets up inside the new network
 * namespace, while it still has every capability there.
 */
#ifndef NONET_NETNS_H
#define NONET_NETNS_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

/* An address the child makes answer inside: a nameserver of the host's. */
struct nonet_address {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
};

int parse_address(const char *text, struct nonet_address *out);
int bring_loopback_up(void);
int read_unprivileged_port_start(void);
void keep_unprivileged_port_start(int outside, int may_bind_any_port);
int allow_ping(gid_t gid);
int forbid_user_namespaces(void);
int route_locally(const struct nonet_address *address);
int add_loopback_address(const struct nonet_address *address);
int bind_dns_socket(const struct nonet_address *address, int type);
int is_loopback(const struct nonet_address *address);

#endif
