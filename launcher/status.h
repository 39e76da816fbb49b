/*
 * The status protocol between nonet-launcher and the nonet host.
 *
 * The launcher (parent and child alike) writes fixed-size records to the
 * status pipe the host handed it.  Each record says which step ran and how
 * it ended.  The child's copy of the pipe is close-on-exec, so when the
 * host reads STEP_EXEC with err == 0 followed by end-of-file, the command
 * is running; a record with err != 0 means the command never started.
 *
 * The order: START and CLONE from the parent; from the child UNSHARE_NET,
 * LOOPBACK_UP and DROP_CAPS, which do not wait for the host, so they may
 * come before CLONE as well as after it; then, once the host has written
 * the id maps and sent the run message (below), WAIT_MAPS and the rest.
 * A reader keys on the step, never on a record's place.
 *
 * Nonet.Host/Launch/StatusProtocol.cs mirrors these numbers, and a unit test
 * reads this file to keep the two in step.  Append new steps; never renumber.
 */
#ifndef NONET_STATUS_H
#define NONET_STATUS_H

#include <stdint.h>

#define NONET_STATUS_MAGIC 0x4e4f4e54u /* "NONT" */

enum nonet_step {
	STEP_START = 1,        /* launcher parent: arguments checked, parent-death signal set */
	STEP_CLONE = 2,        /* launcher parent: clone(CLONE_NEWUSER); value = child pid */
	STEP_WAIT_MAPS = 3,    /* child: the run message, sent by the host after it wrote the id maps */
	STEP_UNSHARE_NET = 4,  /* child: unshare(CLONE_NEWNET) */
	STEP_LOOPBACK_UP = 5,  /* child: SIOCGIFFLAGS/SIOCSIFFLAGS on "lo" */
	STEP_DROP_CAPS = 6,    /* child: bounding set, ambient set, securebits */
	STEP_EXEC = 7,         /* child: err == 0 just before execve(), else its errno */
	STEP_LISTEN = 8,       /* child: --forward listeners made and sent; on failure value = port */
	STEP_HELPER = 9,       /* child: --publish helper started; value = its pid */
	STEP_DNS = 10,         /* child: nameserver made local and its DNS sockets bound; on failure value = which -n, from 0 */
	STEP_MOUNTS = 11,      /* child: mount namespace; on failure value = 0 (unshare) or N for the Nth -H/-o path, from 1 */
	STEP_REPORT = 12,      /* child, once the filter is in place under -r report or -r allow: value = the filter's
	                        * listener's fd (the host takes it); a second record, value -1, if the wait
	                        * for the host failed */
	STEP_FILTER = 13,      /* child, on every run, only on failure: the seccomp filter (filter.c) could
	                        * not be installed; value = its mode (0 base, 1 report, 2 allow) */
};

/*
 * What to run, from the host over GO_FD once it has written the id maps: a
 * header, then LENGTH bytes of NUL-terminated strings, as a command line
 * would hold them: the options of nonet-launcher.c ("-n", "ADDR", ...),
 * then PATH, ARGV0 and the arguments.  End-of-file instead: do not run.
 */
#define NONET_MAX_RUN_MESSAGE (256u << 20)

struct nonet_run_header {
	uint32_t magic;   /* NONET_STATUS_MAGIC */
	uint32_t length;  /* of the strings that follow, each NUL included */
};

struct nonet_status {
	uint32_t magic;  /* NONET_STATUS_MAGIC */
	uint32_t step;   /* enum nonet_step */
	int32_t err;     /* 0 on success, else the errno of the failing call */
	int32_t value;   /* step-specific: the child pid for STEP_CLONE */
};

/*
 * Sockets made inside, over the control socket (an AF_UNIX SOCK_SEQPACKET
 * pair; the launcher gets one end as -c FD).
 *
 * The child sends one message holding every socket it made for the host
 * (SCM_RIGHTS): the --forward listeners and the DNS sockets on each
 * nameserver address, with one struct nonet_listener per descriptor, in
 * order, then reports STEP_LISTEN and waits for one byte from the host.
 * For --publish, a helper stays in the namespace and answers each
 * struct nonet_connect_request with a struct nonet_connect_reply, carrying
 * a new socket (connect() to 127.0.0.1 or ::1 begun, non-blocking) when
 * err == 0.
 */
#define NONET_FAMILY_IPV4 4u
#define NONET_FAMILY_IPV6 6u
#define NONET_MAX_FORWARDS 100
#define NONET_MAX_NAMESERVERS 16
#define NONET_MAX_MOUNTS 16

#define NONET_SOCKET_FORWARD 1u  /* a --forward listener (TCP) */
#define NONET_SOCKET_DNS_UDP 2u  /* a nameserver's port 53, UDP */
#define NONET_SOCKET_DNS_TCP 3u  /* a nameserver's port 53, TCP listener */

struct nonet_listener {
	uint32_t kind;    /* NONET_SOCKET_* */
	uint32_t index;   /* which -f (or -n) option, from 0 */
	uint32_t family;  /* NONET_FAMILY_IPV4 or NONET_FAMILY_IPV6 */
};

struct nonet_connect_request {
	uint32_t magic;   /* NONET_STATUS_MAGIC */
	uint32_t id;      /* echoed in the reply */
	uint32_t index;   /* which -p option, from 0 */
	uint32_t family;  /* NONET_FAMILY_IPV4 or NONET_FAMILY_IPV6 */
};

struct nonet_connect_reply {
	uint32_t magic;   /* NONET_STATUS_MAGIC */
	uint32_t id;      /* from the request */
	int32_t err;      /* 0: a socket is attached; else the errno */
	uint32_t reserved;
};

#endif
