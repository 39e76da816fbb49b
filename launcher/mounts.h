/*
 * mounts.c: the launcher's child's own mount namespace, made only when
 * there is something to hide or to make read-only.
 */
#ifndef NONET_MOUNTS_H
#define NONET_MOUNTS_H

#include <stddef.h>

int enter_mount_namespace(void);
int hide_path(const char *path);
int make_read_only(const char *path);

#endif
