/*
 * The seccomp filter of --report (see seccomp_unotify(2)).
 *
 * Every connect(), sendto(), sendmsg() and sendmmsg() of the command and
 * of every process it starts stops until the host, holding the listener,
 * has read the destination (from /proc/PID/mem) and recorded it; the host
 * then answers SECCOMP_USER_NOTIF_FLAG_CONTINUE and the kernel carries the
 * call out as without the filter: to the outside it fails at once.
 *
 * io_uring's connect and send operations never pass through seccomp, so
 * io_uring_setup() fails with ENOSYS (as on a kernel without io_uring,
 * which programs fall back from): nothing goes out unrecorded that way.
 *
 * Only the native architecture's calls are handed over; a 32-bit program
 * (i386 or x32 calls) runs as without the filter, unrecorded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "report.h"

/* From <linux/filter.h>, <linux/seccomp.h> and <linux/audit.h>, which
 * musl does not ship. */
struct sock_filter {
	uint16_t code;
	uint8_t jt;
	uint8_t jf;
	uint32_t k;
};
struct sock_fprog {
	unsigned short len;
	struct sock_filter *filter;
};
#define BPF_LD 0x00
#define BPF_W 0x00
#define BPF_ABS 0x20
#define BPF_JMP 0x05
#define BPF_JEQ 0x10
#define BPF_K 0x00
#define BPF_RET 0x06
#define BPF_STMT(code, k) { (uint16_t)(code), 0, 0, (uint32_t)(k) }
#define BPF_JUMP(code, k, jt, jf) { (uint16_t)(code), (jt), (jf), (uint32_t)(k) }

#define SECCOMP_SET_MODE_FILTER 1
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#define SECCOMP_RET_ALLOW 0x7fff0000u
#define SECCOMP_RET_USER_NOTIF 0x7fc00000u
#define SECCOMP_RET_ERRNO 0x00050000u
#define SECCOMP_DATA_NR 0
#define SECCOMP_DATA_ARCH 4
#define SECCOMP_DATA_ARG4_LO (16 + 4 * 8) /* little-endian: the low word first */

#if defined(__x86_64__)
#define NATIVE_ARCH 0xc000003eu /* AUDIT_ARCH_X86_64 */
#elif defined(__aarch64__)
#define NATIVE_ARCH 0xc00000b7u /* AUDIT_ARCH_AARCH64 */
#else
#error "--report knows x86-64 and arm64 only"
#endif

#ifndef NETLINK_SOCK_DIAG
#define NETLINK_SOCK_DIAG 4
#endif

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif

int install_report_filter(void)
{
	struct sock_filter program[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARCH),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_connect, 9, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sendmsg, 8, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sendmmsg, 7, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 7, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sendto, 0, 4),
		/* sendto() without an address (send() on a connected socket)
		 * reaches no new destination: not handed over.  The address
		 * is a register, so no other thread can change it. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARG4_LO),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARG4_LO + 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof program / sizeof program[0]),
		.filter = program,
	};

	/* Without PR_SET_NO_NEW_PRIVS: the child holds CAP_SYS_ADMIN in its
	 * user namespace, which seccomp(2) accepts instead, and no_new_privs
	 * would stop ping's file capability from being granted at execve(). */
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			    SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

int open_namespace_diag(void)
{
	return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
}

int wait_for_report_listener(int diag_fd)
{
	long rc;

	/* connect(-1, NULL, DIAG) reaches the host, which recognises it by the
	 * child's pid, takes DIAG too (unless -1) and answers 0 once it holds
	 * the listener. */
	do
		rc = syscall(SYS_connect, -1, NULL, (long)diag_fd);
	while (rc < 0 && errno == EINTR);
	return rc == 0 ? 0 : -1;
}
