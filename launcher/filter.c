/*
 * nonet's seccomp filter (seccomp(2), seccomp_unotify(2)): a classic BPF
 * program made here, installed by the launcher's child, and inherited by
 * everything the command starts.  FILTER_BASE goes in while the host is
 * still starting (the kernel's build of it then costs the command
 * nothing); --report's or --allow's program, which refuses all that the
 * base one does, goes on top of it just before execve().
 *
 * Every mode (FILTER_BASE, on every run):
 *
 *   - socket() and socketpair() only for the address families whose
 *     sockets the kernel confines to the caller's network namespace:
 *     AF_UNIX, AF_INET, AF_INET6, AF_NETLINK and AF_PACKET (each is made
 *     with the caller's struct net and reaches only its namespace's devices,
 *     routes and port spaces), and AF_ALG (the kernel's crypto API, which
 *     reaches no network at all).  Every other family fails with
 *     EAFNOSUPPORT, as on a kernel without it.  AF_VSOCK above all: its
 *     sockets live in global tables (net/vmw_vsock/af_vsock.c: "all sockets
 *     on the system are placed within them"), so a port bound outside is in
 *     use inside, and on a virtual machine a connect to CID 2 reaches the
 *     hypervisor.  An allow-list, so a family added to a future kernel is
 *     refused until someone checks it.
 *   - io_uring_setup() fails with ENOSYS, as on a kernel without io_uring
 *     (programs fall back to ordinary calls): io_uring's operations never
 *     pass through seccomp, and IORING_OP_SOCKET (Linux 5.19) makes a
 *     socket of any family, AF_VSOCK included; its connect and send would
 *     also go unseen by --report.
 *   - ioctl(TIOCSTI) and ioctl(TIOCLINUX) fail with EPERM (as in Flatpak):
 *     the command shares the caller's terminal, and TIOCSTI (on kernels
 *     that allow it: dev.tty.legacy_tiocsti=1, every kernel before 6.2)
 *     types a command line into the caller's shell, which runs it outside
 *     nonet once nonet has exited; TIOCLINUX can do the same on a virtual
 *     console.  Job control (TIOCSPGRP and the rest) is untouched.
 *
 * FILTER_REPORT (--report) also hands connect(), sendto(), sendmsg() and
 * sendmmsg() to the host, which holds the listener, reads the destination
 * from the caller's memory and records it (Nonet.Host/Report).  A sendto()
 * whose address argument is NULL (glibc's send()) is allowed here: on a
 * connected socket it cannot reach a destination the connect() did not
 * (the argument is a register, so no other thread can change it after
 * the check), and a database test suite sends a great many of them.
 *
 * FILTER_ALLOW (--allow) is FILTER_REPORT, and MSG_FASTOPEN on sendto()
 * (argument 3), sendmsg() (2) and sendmmsg() (3) fails with EOPNOTSUPP:
 * it connects without connect(), and a host socket that nonet handed over
 * and whose handshake failed could be re-aimed with it.  (sendmmsg's
 * per-message msg_flags are not used for sending: the kernel takes the
 * call's flags.)
 *
 * Other ABIs.  A 64-bit kernel also runs 32-bit programs, whose calls have
 * numbers of their own and a different AUDIT_ARCH: on x86-64, i386 (int
 * $0x80) and x32 (the native arch, numbers with bit 30 set); on arm64,
 * arm32.  The same refusals apply to each, with its numbers.  Under
 * --report and --allow, every network call of such a program (connect,
 * every send, and i386's socketcall() forms of them) is handed to the host,
 * which cannot decode their 32-bit layouts and answers ENOSYS, so that
 * nothing goes out unseen.  i386's socketcall(SYS_SOCKET) and
 * socketcall(SYS_SOCKETPAIR) pass the family in memory, which BPF cannot
 * read: they fail with EAFNOSUPPORT on every run, so a 32-bit x86 program
 * whose C library makes sockets through socketcall (glibc's i386 build
 * does) makes none inside nonet; one that uses the direct socket() call
 * (i386 number 359) gets the same checks as a 64-bit one.  Any other
 * AUDIT_ARCH cannot occur on a kernel that runs this launcher; its calls
 * would kill the process rather than pass unchecked.
 *
 * No PR_SET_NO_NEW_PRIVS: the child holds CAP_SYS_ADMIN in its user
 * namespace, which seccomp(2) accepts instead, and no_new_privs would stop
 * ping's file capability from being granted at execve().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "filter.h"

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
#define BPF_JGE 0x30
#define BPF_JSET 0x40
#define BPF_K 0x00
#define BPF_RET 0x06

#define SECCOMP_SET_MODE_FILTER 1
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW (1UL << 2)
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#define SECCOMP_RET_KILL_PROCESS 0x80000000u
#define SECCOMP_RET_ERRNO 0x00050000u
#define SECCOMP_RET_USER_NOTIF 0x7fc00000u
#define SECCOMP_RET_ALLOW 0x7fff0000u

/* struct seccomp_data: the offsets the program loads.  An argument is 64
 * bits; the calls checked here take an int or unsigned int (family, ioctl
 * request, flags), of which the kernel uses the low 32 bits only, so only
 * those are compared.  Pointers are compared whole. */
#define DATA_NR 0
#define DATA_ARCH 4
#define DATA_ARG_LOW(i) (16 + 8 * (i))
#define DATA_ARG_HIGH(i) (16 + 8 * (i) + 4)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the argument offsets assume a little-endian machine"
#endif

#define AUDIT_ARCH_X86_64 0xc000003eu
#define AUDIT_ARCH_I386 0x40000003u
#define AUDIT_ARCH_AARCH64 0xc00000b7u
#define AUDIT_ARCH_ARM 0x40000028u
#define X32_SYSCALL_BIT 0x40000000u

/* The address families allowed (<linux/socket.h>). */
static const uint32_t allowed_families[] = {
	1,  /* AF_UNIX */
	2,  /* AF_INET */
	10, /* AF_INET6 */
	16, /* AF_NETLINK */
	17, /* AF_PACKET */
	38, /* AF_ALG */
};

#define TIOCSTI 0x5412u   /* the same on x86, arm and arm64 (asm-generic/ioctls.h) */
#define TIOCLINUX 0x541cu
#define MSG_FASTOPEN 0x20000000u
#define SYS_SOCKET_CALL 1     /* socketcall()'s first argument (<linux/net.h>) */
#define SYS_CONNECT_CALL 3
#define SYS_SOCKETPAIR_CALL 8
#define SYS_SEND_CALL 9
#define SYS_SENDTO_CALL 11
#define SYS_SENDMSG_CALL 16
#define SYS_SENDMMSG_CALL 20

/*
 * One ABI's system call numbers (0: the ABI has no such call).  Every ABI
 * has two numbers for a few calls: x32's own ioctl, sendmsg and sendmmsg,
 * and the 64-bit ones that kernels before 5.4 let an x32 program call too.
 */
struct abi {
	uint32_t socket, socketpair, socketcall;
	uint32_t ioctl[2];
	uint32_t connect, send, sendto;
	uint32_t sendmsg[2], sendmmsg[2];
	uint32_t io_uring_setup;
};

#define X32(nr) (X32_SYSCALL_BIT | (nr))
#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#define COMPAT_ARCH AUDIT_ARCH_I386
static const struct abi native_abi = {
	.socket = 41, .socketpair = 53, .ioctl = { 16 }, .connect = 42, .sendto = 44,
	.sendmsg = { 46 }, .sendmmsg = { 307 }, .io_uring_setup = 425,
};
static const struct abi x32_abi = {
	.socket = X32(41), .socketpair = X32(53), .ioctl = { X32(514), X32(16) }, .connect = X32(42),
	.sendto = X32(44), .sendmsg = { X32(518), X32(46) }, .sendmmsg = { X32(538), X32(307) },
	.io_uring_setup = X32(425),
};
static const struct abi compat_abi = { /* i386 */
	.socket = 359, .socketpair = 360, .socketcall = 102, .ioctl = { 54 }, .connect = 362,
	.sendto = 369, .sendmsg = { 370 }, .sendmmsg = { 345 }, .io_uring_setup = 425,
};
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#define COMPAT_ARCH AUDIT_ARCH_ARM
static const struct abi native_abi = {
	.socket = 198, .socketpair = 199, .ioctl = { 29 }, .connect = 203, .sendto = 206,
	.sendmsg = { 211 }, .sendmmsg = { 269 }, .io_uring_setup = 425,
};
static const struct abi compat_abi = { /* arm32 (EABI; arm64 runs no OABI, so no socketcall) */
	.socket = 281, .socketpair = 288, .ioctl = { 54 }, .connect = 283, .send = 289,
	.sendto = 290, .sendmsg = { 296 }, .sendmmsg = { 374 }, .io_uring_setup = 425,
};
#else
#error "nonet's seccomp filter knows x86-64 and arm64 only"
#endif

/*
 * The generator: instructions with symbolic jump targets, resolved once the
 * program is laid out.  Classic BPF jumps only forward, by at most 255.
 */
enum label {
	NEXT, /* no jump: the next instruction */
	ALLOW,
	NOTIFY,
	E_NOSYS,
	E_PERM,
	E_AFNOSUPPORT,
	E_OPNOTSUPP,
	KILL,
	CHECK_FAMILY,   /* socket(), socketpair(): argument 0 */
	CHECK_TTY,      /* ioctl(): argument 1 */
	CHECK_SENDTO,   /* native sendto(): flags (3), address (4) */
	CHECK_SENDMSG,  /* native sendmsg(): flags (2) */
	CHECK_SENDMMSG, /* native sendmmsg(): flags (3) */
	SOCKETCALL,     /* i386 socketcall(): which call (0) */
	OTHER_ABI,      /* x32 */
	OTHER_ARCH,     /* i386 or arm32 */
	N_LABELS,
};

#define MAX_PROGRAM 160

struct program {
	struct sock_filter insn[MAX_PROGRAM];
	uint8_t jt[MAX_PROGRAM], jf[MAX_PROGRAM];
	int at[N_LABELS];
	size_t n;
	int overflow;
};

static void emit(struct program *p, uint16_t code, uint32_t k, enum label jt, enum label jf)
{
	if (p->n == MAX_PROGRAM) {
		p->overflow = 1;
		return;
	}
	p->insn[p->n] = (struct sock_filter){ code, 0, 0, k };
	p->jt[p->n] = (uint8_t)jt;
	p->jf[p->n] = (uint8_t)jf;
	p->n++;
}

static void load(struct program *p, uint32_t offset)
{
	emit(p, BPF_LD | BPF_W | BPF_ABS, offset, NEXT, NEXT);
}

/* A jump to TARGET when the loaded word equals K; a call number of 0 is no
 * call, and emits nothing. */
static void on_equal(struct program *p, uint32_t k, enum label target)
{
	if (k != 0)
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, k, target, NEXT);
}

static void ret(struct program *p, uint32_t action)
{
	emit(p, BPF_RET | BPF_K, action, NEXT, NEXT);
}

static void place(struct program *p, enum label l)
{
	p->at[l] = (int)p->n;
}

/* The checks of one ABI, its call number loaded.  The native ABI's network
 * calls get the mode's checks; another ABI's are handed to the host. */
static void emit_abi(struct program *p, const struct abi *abi, int native, enum filter_mode mode)
{
	size_t i;

	on_equal(p, abi->socket, CHECK_FAMILY);
	on_equal(p, abi->socketpair, CHECK_FAMILY);
	on_equal(p, abi->socketcall, SOCKETCALL);
	for (i = 0; i < 2; i++)
		on_equal(p, abi->ioctl[i], CHECK_TTY);
	on_equal(p, abi->io_uring_setup, E_NOSYS);
	if (mode != FILTER_BASE) {
		on_equal(p, abi->connect, NOTIFY);
		on_equal(p, abi->send, NOTIFY);
		on_equal(p, abi->sendto, native ? CHECK_SENDTO : NOTIFY);
		for (i = 0; i < 2; i++) {
			on_equal(p, abi->sendmsg[i], native && mode == FILTER_ALLOW ? CHECK_SENDMSG : NOTIFY);
			on_equal(p, abi->sendmmsg[i], native && mode == FILTER_ALLOW ? CHECK_SENDMMSG : NOTIFY);
		}
	}
}

static void generate(struct program *p, enum filter_mode mode)
{
	size_t i;

	/* Which ABI: the native one first, the common case. */
	load(p, DATA_ARCH);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, NEXT, OTHER_ARCH);
	load(p, DATA_NR);
#if defined(__x86_64__)
	emit(p, BPF_JMP | BPF_JSET | BPF_K, X32_SYSCALL_BIT, OTHER_ABI, NEXT);
#endif
	emit_abi(p, &native_abi, 1, mode);
#if defined(__x86_64__)
	/* 512-547 are x32's own calls; before Linux 5.4 a 64-bit program could
	 * call them without the x32 bit (compat ioctl and sendmsg among them).
	 * Newer kernels answer ENOSYS, as this does. */
	emit(p, BPF_JMP | BPF_JGE | BPF_K, 548, ALLOW, NEXT);
	emit(p, BPF_JMP | BPF_JGE | BPF_K, 512, E_NOSYS, NEXT);
#endif
	ret(p, SECCOMP_RET_ALLOW);

#if defined(__x86_64__)
	place(p, OTHER_ABI);
	emit_abi(p, &x32_abi, 0, mode);
	ret(p, SECCOMP_RET_ALLOW);
#endif

	place(p, OTHER_ARCH);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, COMPAT_ARCH, NEXT, KILL);
	load(p, DATA_NR);
	emit_abi(p, &compat_abi, 0, mode);
	ret(p, SECCOMP_RET_ALLOW);

	/* The calls whose arguments decide. */
	place(p, CHECK_FAMILY);
	load(p, DATA_ARG_LOW(0));
	for (i = 0; i < sizeof allowed_families / sizeof allowed_families[0]; i++)
		on_equal(p, allowed_families[i], ALLOW);
	ret(p, SECCOMP_RET_ERRNO | EAFNOSUPPORT);

	place(p, CHECK_TTY);
	load(p, DATA_ARG_LOW(1));
	on_equal(p, TIOCSTI, E_PERM);
	on_equal(p, TIOCLINUX, E_PERM);
	ret(p, SECCOMP_RET_ALLOW);

	if (compat_abi.socketcall != 0) {
		place(p, SOCKETCALL);
		load(p, DATA_ARG_LOW(0));
		on_equal(p, SYS_SOCKET_CALL, E_AFNOSUPPORT);
		on_equal(p, SYS_SOCKETPAIR_CALL, E_AFNOSUPPORT);
		if (mode != FILTER_BASE) {
			on_equal(p, SYS_CONNECT_CALL, NOTIFY);
			on_equal(p, SYS_SEND_CALL, NOTIFY);
			on_equal(p, SYS_SENDTO_CALL, NOTIFY);
			on_equal(p, SYS_SENDMSG_CALL, NOTIFY);
			on_equal(p, SYS_SENDMMSG_CALL, NOTIFY);
		}
		ret(p, SECCOMP_RET_ALLOW);
	}

	if (mode != FILTER_BASE) {
		place(p, CHECK_SENDTO);
		if (mode == FILTER_ALLOW) {
			load(p, DATA_ARG_LOW(3));
			emit(p, BPF_JMP | BPF_JSET | BPF_K, MSG_FASTOPEN, E_OPNOTSUPP, NEXT);
		}
		/* A NULL address: a send on the socket's own connection. */
		load(p, DATA_ARG_LOW(4));
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, NEXT, NOTIFY);
		load(p, DATA_ARG_HIGH(4));
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, ALLOW, NOTIFY);
	}
	if (mode == FILTER_ALLOW) {
		place(p, CHECK_SENDMSG);
		load(p, DATA_ARG_LOW(2));
		emit(p, BPF_JMP | BPF_JSET | BPF_K, MSG_FASTOPEN, E_OPNOTSUPP, NOTIFY);
		place(p, CHECK_SENDMMSG);
		load(p, DATA_ARG_LOW(3));
		emit(p, BPF_JMP | BPF_JSET | BPF_K, MSG_FASTOPEN, E_OPNOTSUPP, NOTIFY);
	}

	/* The verdicts. */
	place(p, ALLOW);
	ret(p, SECCOMP_RET_ALLOW);
	place(p, E_AFNOSUPPORT);
	ret(p, SECCOMP_RET_ERRNO | EAFNOSUPPORT);
	place(p, E_PERM);
	ret(p, SECCOMP_RET_ERRNO | EPERM);
	place(p, E_NOSYS);
	ret(p, SECCOMP_RET_ERRNO | ENOSYS);
	place(p, KILL);
	ret(p, SECCOMP_RET_KILL_PROCESS);
	if (mode != FILTER_BASE) {
		place(p, NOTIFY);
		ret(p, SECCOMP_RET_USER_NOTIF);
	}
	if (mode == FILTER_ALLOW) {
		place(p, E_OPNOTSUPP);
		ret(p, SECCOMP_RET_ERRNO | EOPNOTSUPP);
	}
}

/* Lays out the mode's program; its length, or -1 (a bug: the jumps do not
 * reach, or a label is used but never placed). */
static int build(struct program *p, enum filter_mode mode)
{
	size_t i;
	int l;

	p->n = 0;
	p->overflow = 0;
	for (l = 0; l < N_LABELS; l++)
		p->at[l] = -1;
	generate(p, mode);
	if (p->overflow)
		return -1;
	for (i = 0; i < p->n; i++) {
		uint8_t *targets[2] = { &p->insn[i].jt, &p->insn[i].jf };
		uint8_t labels[2] = { p->jt[i], p->jf[i] };
		int t;

		for (t = 0; t < 2; t++) {
			long off;

			if (labels[t] == NEXT)
				continue;
			off = (long)p->at[labels[t]] - (long)(i + 1);
			if (p->at[labels[t]] < 0 || off < 0 || off > 255)
				return -1;
			*targets[t] = (uint8_t)off;
		}
	}
	return (int)p->n;
}

int filter_mode_parse(const char *name, enum filter_mode *mode)
{
	static const char *const names[] = { "base", "report", "allow" };
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(name, names[i]) == 0) {
			*mode = (enum filter_mode)i;
			return 0;
		}
	}
	return -1;
}

int filter_has_listener(enum filter_mode mode)
{
	return mode != FILTER_BASE;
}

int filter_install(enum filter_mode mode)
{
	static struct program p;
	struct sock_fprog prog;
	unsigned long flags = filter_has_listener(mode) ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
	long rc;
	int n = build(&p, mode);

	if (n < 0) {
		errno = EINVAL;
		return -1;
	}
	prog.len = (unsigned short)n;
	prog.filter = p.insn;
	/* SPEC_ALLOW: no speculation mitigations forced on the command
	 * (kernels before 5.16 turn on SSBD and STIBP for every filtered task
	 * otherwise); it runs as fast as without nonet.  Linux 4.17; without
	 * it, the filter alone. */
	rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags | SECCOMP_FILTER_FLAG_SPEC_ALLOW, &prog);
	if (rc < 0 && errno == EINVAL)
		rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	return (int)rc;
}

int filter_print(enum filter_mode mode, int fd)
{
	static struct program p;
	const char *at = (const char *)p.insn;
	size_t left;
	int n = build(&p, mode);

	if (n < 0)
		return -1;
	left = (size_t)n * sizeof p.insn[0];
	while (left > 0) {
		ssize_t w = write(fd, at, left);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		at += w;
		left -= (size_t)w;
	}
	return 0;
}
