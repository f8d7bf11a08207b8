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

#include <linux/skbuff.h>

/*
 * 6.10 replaced ubuf_info's callback with a table of operations whose
 * complete() has the callback's signature. Older kernels get the table's
 * type; zcopy_ubuf_set_ops() installs it either way.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 10, 0)
struct ubuf_info_ops {
	void (*complete)(struct sk_buff *skb, struct ubuf_info *uarg,
			 bool zerocopy_success);
	int (*link_skb)(struct sk_buff *skb, struct ubuf_info *uarg);
};

static inline void zcopy_ubuf_set_ops(struct ubuf_info *uarg,
				      const struct ubuf_info_ops *ops)
{
	uarg->callback = ops->complete;
}
#else
static inline void zcopy_ubuf_set_ops(struct ubuf_info *uarg,
				      const struct ubuf_info_ops *ops)
{
	uarg->ops = ops;
}
#endif

#endif /* _ZCOPY_COMPAT_H */
