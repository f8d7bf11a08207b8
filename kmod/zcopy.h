/* SPDX-License-Identifier: GPL-2.0 */
/*
 * zcopy internals shared between the module's files.
 */
#ifndef _ZCOPY_H
#define _ZCOPY_H

#include <linux/types.h>

/* Feature bits this build of the module implements. */
#define ZCOPY_FEATURES	0ULL

/**
 * struct zcopy_file - the state of one open /dev/zcopy
 *
 * Everything a process does through one file description hangs off this;
 * it is freed when the last reference to the file goes away.
 */
struct zcopy_file {
	int unused;
};

#endif /* _ZCOPY_H */
