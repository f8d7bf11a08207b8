/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * zcopy: zero-copy socket I/O through /dev/zcopy.
 *
 * This header is the ABI. Its rules:
 *  - structures use fixed-width types only, with explicit padding, and have
 *    the same size and layout for 32-bit and 64-bit user space (checked by
 *    selftests/host/uapi_layout.c), so compat_ioctl needs no translation;
 *  - user pointers travel as __u64 (u64_to_user_ptr() in the kernel);
 *  - every flags word rejects unknown bits with EINVAL, and every field
 *    named reserved or __pad must be zero on input, else EINVAL, so that
 *    they can be given a meaning later;
 *  - ioctl numbers are never reused: a replaced command gets a new number.
 */
#ifndef _UAPI_LINUX_ZCOPY_H
#define _UAPI_LINUX_ZCOPY_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define ZCOPY_DEVICE		"/dev/zcopy"
#define ZCOPY_ABI_VERSION	1

/* Capabilities reported in zcopy_info.features. */

/**
 * struct zcopy_info - what this module offers (ZCOPY_IOC_INFO)
 * @abi_version:	out: ZCOPY_ABI_VERSION of the module
 * @page_size:		out: PAGE_SIZE of the running kernel
 * @features:		out: ZCOPY_FEAT_* bits
 * @flags:		in: none defined, must be zero
 * @__pad:		must be zero
 * @reserved:		must be zero
 */
struct zcopy_info {
	__u32	abi_version;
	__u32	page_size;
	__u64	features;
	__u32	flags;
	__u32	__pad;
	__u64	reserved[4];
};

#define ZCOPY_IOC_MAGIC		0xBB

#define ZCOPY_IOC_INFO		_IOWR(ZCOPY_IOC_MAGIC, 0x00, struct zcopy_info)

#endif /* _UAPI_LINUX_ZCOPY_H */
