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
 * complete() has the callback's signature, and a link_skb() that TCP
 * asks before it appends to an skb holding another ubuf. Older kernels get
 * the table's type, and never call link_skb(); zcopy_ubuf_set_ops()
 * installs the table either way, zcopy_ubuf_has_ops() recognizes it, and
 * zcopy_tcp_links_ubufs() says whether TCP calls link_skb().
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

static inline bool zcopy_ubuf_has_ops(const struct ubuf_info *uarg,
				      const struct ubuf_info_ops *ops)
{
	return uarg->callback == ops->complete;
}

static inline bool zcopy_tcp_links_ubufs(void)
{
	return false;
}
#else
static inline void zcopy_ubuf_set_ops(struct ubuf_info *uarg,
				      const struct ubuf_info_ops *ops)
{
	uarg->ops = ops;
}

static inline bool zcopy_ubuf_has_ops(const struct ubuf_info *uarg,
				      const struct ubuf_info_ops *ops)
{
	return uarg->ops == ops;
}

static inline bool zcopy_tcp_links_ubufs(void)
{
	return true;
}
#endif

/*
 * 6.2 made a read-only long-term pin of memory shared copy-on-write unshare
 * it first ("mm/gup: reliable R/O long-term pinning in COW mappings").
 * Before, such a pin keeps the shared page (the zero page, a private file
 * mapping's page cache) while the next write gets a new one: there, a pin
 * meant to follow what the application writes is made writable in a
 * copy-on-write mapping, as io_uring pins its fixed buffers. A shared
 * mapping's pages are the ones written either way: pinned read-only.
 *
 * zcopy_pin_longterm_read() pins @nr pages from @start, long-term, to
 * follow what the application writes there: the number pinned, or an
 * -errno if none, as pin_user_pages_fast().
 */
#include <linux/mm.h>
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
static inline long zcopy_pin_longterm_read(unsigned long start, unsigned long nr,
					   struct page **pages)
{
	unsigned long addr = start, done = 0, n;
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	unsigned int flags;
	long ret = -EFAULT;

	mmap_read_lock(mm);
	while (done < nr) {
		vma = vma_lookup(mm, addr);
		if (!vma)
			break;
		n = min(nr - done, (vma->vm_end - addr) >> PAGE_SHIFT);
		flags = FOLL_LONGTERM | (is_cow_mapping(vma->vm_flags) ? FOLL_WRITE : 0);
		ret = pin_user_pages(addr, n, flags, pages + done, NULL);
		if (ret <= 0)
			break;
		done += ret;
		addr += ret << PAGE_SHIFT;
	}
	mmap_read_unlock(mm);
	return done ? done : ret;
}
#else
static inline long zcopy_pin_longterm_read(unsigned long start, unsigned long nr,
					   struct page **pages)
{
	return pin_user_pages_fast(start, nr, FOLL_LONGTERM, pages);
}
#endif

/* 6.3 made vma->vm_flags read-only, to be changed through these. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
#include <linux/mm.h>

static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/*
 * Send pages by reference, the receiver getting the pages themselves: 6.5
 * replaced ->sendpage() with MSG_SPLICE_PAGES. Before it, only TCP's
 * sendpage takes references (UDP's copies); callers send UDP otherwise.
 */
#include <linux/net.h>
#include <linux/socket.h>
#include <linux/uio.h>
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 5, 0)
static inline int zcopy_sendpages(struct socket *sock, const struct bio_vec *bvec,
				  unsigned int nr, size_t len, int flags)
{
	unsigned int i;
	int sent = 0, ret;

	for (i = 0; i < nr; i++) {
		ret = kernel_sendpage(sock, bvec[i].bv_page, bvec[i].bv_offset,
				      bvec[i].bv_len,
				      flags | (i + 1 < nr ? MSG_SENDPAGE_NOTLAST : 0));
		if (ret <= 0)
			return sent ?: ret;
		sent += ret;
		if (ret < bvec[i].bv_len)
			break;
	}
	return sent;
}
#else
static inline int zcopy_sendpages(struct socket *sock, struct bio_vec *bvec,
				  unsigned int nr, size_t len, int flags)
{
	struct msghdr msg = { .msg_flags = flags | MSG_SPLICE_PAGES };

	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, bvec, nr, len);
	return sock_sendmsg(sock, &msg);
}
#endif

/*
 * 6.5 made TCP's MTU probe take the pages of the skbs it merges by
 * reference (tcp_clone_payload()) and free those skbs, dropping their
 * ubuf_info: a send can complete while the probe still carries its pages.
 * Before, the probe copied them.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 5, 0)
#define ZCOPY_TCP_PROBE_TAKES_PAGES	false
#else
#define ZCOPY_TCP_PROBE_TAKES_PAGES	true
#endif

/*
 * 6.6 moved inet_sock's flags into one word, read with inet_test_bit().
 * Only the flag zcopy reads is backported.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 6, 0)
#include <net/inet_sock.h>

#define inet_test_bit(nr, sk)	zcopy_inet_test_##nr(sk)

static inline bool zcopy_inet_test_DEFER_CONNECT(const struct sock *sk)
{
	return inet_sk(sk)->defer_connect;
}
#endif

/*
 * Before 6.5, TCP's sendpage (tcp_build_frag(), under sendfile(), splice(),
 * kTLS) adds a page by reference to the tail skb without first giving its
 * managed frags references (skb_zcopy_downgrade_managed()), and an skb of
 * managed frags (SKBFL_MANAGED_FRAG_REFS) never drops that one: there,
 * every frag of a send takes a reference, as the core's own fill does.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 5, 0)
#define ZCOPY_MANAGED_FRAGS	false
#else
#define ZCOPY_MANAGED_FRAGS	true
#endif

/*
 * 6.11 made __zerocopy_sg_from_iter() charge the socket for what
 * msghdr.sg_from_iter adds to an skb, and dropped the callback's socket
 * argument. ZCOPY_SG_FROM_ITER() defines @name, the callback as the
 * kernel calls it, around @fill, one of 6.11's form; before 6.11 it
 * charges, as the core does after the callback since.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 11, 0)
#include <net/sock.h>

static inline void zcopy_sg_charge(struct sock *sk, struct sk_buff *skb,
				   unsigned long truesize)
{
	if (sk && sk->sk_type == SOCK_STREAM) {
		sk_wmem_queued_add(sk, truesize);
		if (!skb_zcopy_pure(skb))
			sk_mem_charge(sk, truesize);
	} else {
		refcount_add(truesize, &skb->sk->sk_wmem_alloc);
	}
}

#define ZCOPY_SG_FROM_ITER(name, fill)					\
static int name(struct sock *sk, struct sk_buff *skb,			\
		struct iov_iter *from, size_t length)			\
{									\
	unsigned long truesize = skb->truesize;				\
	int ret = fill(skb, from, length);				\
									\
	zcopy_sg_charge(sk, skb, skb->truesize - truesize);		\
	return ret;							\
}
#else
#define ZCOPY_SG_FROM_ITER(name, fill)					\
static int name(struct sk_buff *skb, struct iov_iter *from, size_t length) \
{									\
	return fill(skb, from, length);					\
}
#endif

/* 6.12 brought frags of device memory (net_iov), which have no page. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
static inline bool skb_frag_is_net_iov(const skb_frag_t *frag)
{
	return false;
}
#endif

#endif /* _ZCOPY_COMPAT_H */
