/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where zcopy adapts to the kernel it is built against.
 *
 * Force-included into every file (see Kbuild), so that the rest of the
 * module reads like upstream code for the newest supported kernel. Each
 * block backports one interface to older kernels and says which.
 */
#ifndef _ZCOPY_COMPAT_H
#define _ZCOPY_COMPAT_H

#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0)
#error "zcopy needs Linux 6.1 or later"
#endif

#endif /* _ZCOPY_COMPAT_H */
