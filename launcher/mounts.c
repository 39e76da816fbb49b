/*
 * In a mount namespace of the child's own (owned by its user namespace, so
 * nothing here reaches the host's mounts): host resolver sockets hidden, and
 * the kernel's settings made read-only.  Helpers return -1 and leave errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mounts.h"

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#define NONET_MOUNT_ATTR_RDONLY 0x00000001

/* From <linux/mount.h>, which musl does not ship. */
struct nonet_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

/* A mount namespace of our own, every mount a slave of the host's: mounts
 * made here never propagate out. */
int enter_mount_namespace(void)
{
	if (unshare(CLONE_NEWNS) < 0)
		return -1;
	return mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL);
}

/* /dev/null over PATH (a host daemon's Unix socket): connect() to it fails
 * with ECONNREFUSED, and the client falls back as when the daemon is not
 * running.  Only that one name changes.  A path that has gone since the
 * host looked is already hidden. */
int hide_path(const char *path)
{
	if (mount("/dev/null", path, NULL, MS_BIND, NULL) == 0)
		return 0;
	return errno == ENOENT ? 0 : -1;
}

/* The mount flags a bind mount in a user namespace must keep on remount:
 * the kernel locks those it inherited from the host. */
static unsigned long locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long flags = 0;

	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		flags |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		flags |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		flags |= MS_RELATIME;
	return flags;
}

/* PATH and every mount below it, read-only, as container engines do for
 * /proc/sys and /sys: uid 0 inside still passes the owner checks there.
 * mount_setattr(2) (Linux 5.12) does the whole tree at once; older kernels
 * get PATH itself remounted. */
int make_read_only(const char *path)
{
	struct nonet_mount_attr attr = { .attr_set = NONET_MOUNT_ATTR_RDONLY };

	if (access(path, F_OK) < 0)
		return errno == ENOENT ? 0 : -1;
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -1;
	if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(path), NULL);
}
