/*
 * nonet's seccomp filter: one BPF program, made by one generator, for
 * every run (see filter.c for what each mode does and why).
 *
 *   FILTER_BASE    every run: socket() only for address families that a
 *                  network namespace confines; no TIOCSTI or TIOCLINUX
 *   FILTER_REPORT  --report: BASE, and the network calls handed to the
 *                  host (user notification), which records them
 *   FILTER_ALLOW   --allow: REPORT, and no MSG_FASTOPEN on any send
 */
#ifndef NONET_FILTER_H
#define NONET_FILTER_H

enum filter_mode {
	FILTER_BASE,
	FILTER_REPORT,
	FILTER_ALLOW,
};

/* "base", "report" or "allow": 0, or -1 for any other name. */
int filter_mode_parse(const char *name, enum filter_mode *mode);

/* Whether the mode's program hands calls to the host (has a listener). */
int filter_has_listener(enum filter_mode mode);

/* Child side, before execve(), while the child still has
 * CAP_SYS_ADMIN in its user namespace (so no_new_privs is not needed, and
 * ping's file capability still works): installs the mode's filter.
 * Returns the listener's descriptor (close-on-exec) for a mode that has
 * one, else 0; -1 with errno set on failure. */
int filter_install(enum filter_mode mode);

/* A debugging and testing aid (nonet-launcher --print-filter MODE): the
 * mode's program, as the kernel gets it (struct sock_filter, 8 bytes an
 * instruction, in this machine's byte order), written to FD.  0, or -1. */
int filter_print(enum filter_mode mode, int fd);

#endif
