/*
 * The status protocol between nonet-launcher and the nonet host.
 *
 * The launcher (parent and child alike) writes fixed-size records to the
 * status pipe the host handed it.  Each record says which step ran and how
 * it ended.  The child's copy of the pipe is close-on-exec, so when the
 * host reads STEP_EXEC with err == 0 followed by end-of-file, the command
 * is running; a record with err != 0 means the command never started.
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
	STEP_WAIT_MAPS = 3,    /* child: released by the host after it wrote the id maps */
	STEP_UNSHARE_NET = 4,  /* child: unshare(CLONE_NEWNET) */
	STEP_LOOPBACK_UP = 5,  /* child: SIOCGIFFLAGS/SIOCSIFFLAGS on "lo" */
	STEP_DROP_CAPS = 6,    /* child: bounding set, ambient set, securebits */
	STEP_EXEC = 7,         /* child: err == 0 just before execve(), else its errno */
};

struct nonet_status {
	uint32_t magic;  /* NONET_STATUS_MAGIC */
	uint32_t step;   /* enum nonet_step */
	int32_t err;     /* 0 on success, else the errno of the failing call */
	int32_t value;   /* step-specific: the child pid for STEP_CLONE */
};

#endif
