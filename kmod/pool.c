// SPDX-License-Identifier: GPL-2.0
/*
 * The send pool: pages mapped from /dev/zcopy into the application, sent
 * without copying, and copied on write while the network stack holds them.
 *
 * A pool is an array of slots, each holding one page. The application maps
 * it MAP_SHARED and pages are faulted in from the slots; as the mapping has
 * ->page_mkwrite, the core maps them read-only until the first write, which
 * comes to us (write-notify).
 *
 * A page is busy while anyone but the pool and the page tables holds it:
 * the skbs of a send, a receiver that mapped it, a pipe, a pin; and for
 * good once it has been sent by reference, as a receiver may then map it
 * (TCP_ZEROCOPY_RECEIVE) with no reference we could see. A send
 * locks its pages, as writeback does, zaps their PTEs in every mapping and
 * takes references; a later write faults, finds the page busy, and puts a
 * copy in the slot (copy-on-write). So the page in flight is never written:
 * no writable PTE of it exists, GUP for writing goes through the same
 * fault, and a page pinned by another subsystem, which could write to it
 * behind our back, is sent from a copy instead.
 *
 * Only a write to a busy page costs a fault and a copy. For sends with a
 * completion record, the pages are re-armed when the stack lets go, before
 * the record is queued: faulted in writable on the owner's behalf, so that
 * an application that reuses only completed buffers takes no fault at all.
 *
 * Lock order: mmap_lock, pool->lock, page lock, i_mmap_rwsem, PTE lock.
 * Every pool shares the device inode's address_space, so each has its own
 * range of file offsets: zapping one pool never touches another.
 */

#include <linux/bitmap.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/net.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <net/sock.h>

#include "zcopy.h"

/* How long a re-arm waits for the stack's last references to a batch. */
#define ZCOPY_SETTLE_MS		50

static unsigned int max_pool_pages = 65536;
module_param(max_pool_pages, uint, 0644);
MODULE_PARM_DESC(max_pool_pages, "Most pages in one pool (default 65536)");

static LIST_HEAD(zcopy_pools);
static DEFINE_MUTEX(zcopy_pools_lock);

enum zcopy_rearm {
	ZCOPY_REARM_NONE,	/* not called: the PTE was writable, or no page */
	ZCOPY_REARM_WRITABLE,	/* the page may be written */
	ZCOPY_REARM_BUSY,	/* someone else held the page: left read-only */
};

/**
 * struct zcopy_pool - the pages of a send pool
 * @node:	in zcopy_pools
 * @lock:	protects @slots
 * @rearm_lock:	one re-arm at a time, so @rearming names it
 * @rearming:	the task re-arming pages, whose faults must not copy
 * @rearm_mkwrite: what ->page_mkwrite said to the re-arm's last fault
 * @zf:		the file that owns the pool
 * @mapping:	the device's address_space
 * @pgoff:	the pool's first file offset, in pages
 * @nr_pages:	pages in the pool
 * @mm:		the address space that first mapped the pool (grabbed)
 * @uaddr:	where @mm maps the pool's start, as far as we know; used to
 *		re-arm, and checked against the VMA each time
 * @mmp:	the RLIMIT_MEMLOCK charge
 * @shared:	slots whose page was sent by reference: never written again
 * @sending:	per slot, the sends with a record in flight that took it
 * @slots:	the pages
 */
struct zcopy_pool {
	struct list_head	node;
	struct mutex		lock;		/* see above */
	struct mutex		rearm_lock;	/* see above */
	struct task_struct	*rearming;
	enum zcopy_rearm	rearm_mkwrite;	/* under rearm_lock */
	struct zcopy_file	*zf;
	struct address_space	*mapping;
	pgoff_t			pgoff;
	unsigned long		nr_pages;
	struct mm_struct	*mm;
	unsigned long		uaddr;
	struct mmpin		mmp;
	unsigned long		*shared;
	unsigned int		*sending;
	struct page		*slots[];
};

static const struct vm_operations_struct zcopy_pool_vm_ops;

/*
 * Held by anyone but the pool, the page tables, and @extra references of
 * the fault path? A passing reference (GUP-fast, compaction) may make a
 * page look busy for a moment: that costs a copy, never correctness.
 */
static bool zcopy_page_busy(struct page *page, int extra)
{
	return page_ref_count(page) > 1 + zcopy_page_mapcount(page) + extra;
}

/* May slot @idx's page be written in place? Called with pool->lock held. */
static bool zcopy_slot_busy(struct zcopy_pool *pool, unsigned long idx, int extra)
{
	return test_bit(idx, pool->shared) || zcopy_page_busy(pool->slots[idx], extra);
}

static bool zcopy_pool_rearming(struct zcopy_pool *pool)
{
	return READ_ONCE(pool->rearming) == current;
}

/* Remove slots [idx, idx + nr) from every page table that maps them. */
static void zcopy_pool_zap(struct zcopy_pool *pool, unsigned long idx,
			   unsigned long nr)
{
	unmap_mapping_range(pool->mapping, (loff_t)(pool->pgoff + idx) << PAGE_SHIFT,
			    (loff_t)nr << PAGE_SHIFT, 1);
}

/* Give slot @idx a copy of its busy page; its holders keep the original. */
static struct page *zcopy_pool_cow(struct zcopy_pool *pool, unsigned long idx)
{
	struct page *old = pool->slots[idx], *new;

	lockdep_assert_held(&pool->lock);
	new = alloc_page(GFP_HIGHUSER);
	if (!new)
		return NULL;
	copy_highpage(new, old);
	/*
	 * A fault that found @old writable holds its lock until its PTE is in
	 * (->page_mkwrite returns it locked): wait for that PTE, then zap it
	 * with the others, as a send does.
	 */
	lock_page(old);
	pool->slots[idx] = new;
	__clear_bit(idx, pool->shared);
	zcopy_pool_zap(pool, idx, 1);
	unlock_page(old);
	put_page(old);
	zcopy_count(pool->zf, ZC_COW_COPIES, 1);
	return new;
}

static vm_fault_t zcopy_pool_fault(struct vm_fault *vmf)
{
	struct zcopy_pool *pool = vmf->vma->vm_private_data;
	unsigned long idx = vmf->pgoff - pool->pgoff;
	struct page *page;

	if (idx >= pool->nr_pages)
		return VM_FAULT_SIGBUS;

	mutex_lock(&pool->lock);
	page = pool->slots[idx];
	/* A write to a busy page gets the copy now, saving a fault. */
	if ((vmf->flags & FAULT_FLAG_WRITE) && zcopy_slot_busy(pool, idx, 0) &&
	    !zcopy_pool_rearming(pool)) {
		page = zcopy_pool_cow(pool, idx);
		if (!page) {
			mutex_unlock(&pool->lock);
			return VM_FAULT_OOM;
		}
	}
	get_page(page);
	mutex_unlock(&pool->lock);

	vmf->page = page;
	return 0;
}

/*
 * The first write through a read-only PTE, or a write fault that just
 * looked the page up. The page is returned locked when it may be written:
 * a send locks the page before zapping, so it waits until the writable PTE
 * is in place, and then zaps it.
 */
static vm_fault_t zcopy_pool_mkwrite(struct vm_fault *vmf)
{
	struct zcopy_pool *pool = vmf->vma->vm_private_data;
	unsigned long idx = vmf->pgoff - pool->pgoff;
	bool rearm = zcopy_pool_rearming(pool);
	struct page *page = vmf->page;

	mutex_lock(&pool->lock);
	if (pool->slots[idx] != page) {
		/* A copy took this page's place since it was looked up. */
		mutex_unlock(&pool->lock);
		return VM_FAULT_NOPAGE;
	}
	if (zcopy_slot_busy(pool, idx, 1)) {
		/* Re-arming leaves a busy page alone; a write copies it. */
		if (rearm) {
			pool->rearm_mkwrite = ZCOPY_REARM_BUSY;
		} else if (!zcopy_pool_cow(pool, idx)) {
			mutex_unlock(&pool->lock);
			return VM_FAULT_OOM;
		}
		mutex_unlock(&pool->lock);
		return VM_FAULT_NOPAGE;
	}
	lock_page(page);
	mutex_unlock(&pool->lock);

	/* The re-arm counts its page once the PTE is in: see zcopy_pool_rearm_one(). */
	if (rearm)
		pool->rearm_mkwrite = ZCOPY_REARM_WRITABLE;
	else
		zcopy_count(pool->zf, ZC_WRITE_FAULTS, 1);
	return VM_FAULT_LOCKED;
}

static int zcopy_pool_mremap(struct vm_area_struct *vma)
{
	struct zcopy_pool *pool = vma->vm_private_data;

	if (vma->vm_mm == pool->mm)
		pool->uaddr = vma->vm_start -
			      ((vma->vm_pgoff - pool->pgoff) << PAGE_SHIFT);
	return 0;
}

static const struct vm_operations_struct zcopy_pool_vm_ops = {
	.fault		= zcopy_pool_fault,
	.page_mkwrite	= zcopy_pool_mkwrite,
	.mremap		= zcopy_pool_mremap,
};

static struct zcopy_pool *zcopy_pool_create(struct zcopy_file *zf,
					    struct file *file, unsigned long nr)
{
	struct zcopy_pool *pool;
	unsigned long i;
	int ret;

	if (nr > READ_ONCE(max_pool_pages))
		return ERR_PTR(-EINVAL);

	pool = kvzalloc(struct_size(pool, slots, nr), GFP_KERNEL_ACCOUNT);
	if (!pool)
		return ERR_PTR(-ENOMEM);
	/* As mmap(2) fails over RLIMIT_MEMLOCK. */
	ret = -EAGAIN;
	if (zcopy_account_pages(&pool->mmp, nr))
		goto err_free_pool;
	ret = zcopy_offsets_get(&pool->pgoff);
	if (ret)
		goto err_unaccount;
	ret = -ENOMEM;
	pool->shared = bitmap_zalloc(nr, GFP_KERNEL_ACCOUNT);
	if (!pool->shared)
		goto err_free_id;
	pool->sending = kvcalloc(nr, sizeof(*pool->sending), GFP_KERNEL_ACCOUNT);
	if (!pool->sending)
		goto err_free_shared;
	for (i = 0; i < nr; i++) {
		pool->slots[i] = alloc_page(GFP_HIGHUSER | __GFP_ZERO);
		if (!pool->slots[i])
			goto err_free_pages;
	}

	mutex_init(&pool->lock);
	mutex_init(&pool->rearm_lock);
	pool->zf = zf;
	pool->mapping = file->f_mapping;
	pool->nr_pages = nr;

	mutex_lock(&zcopy_pools_lock);
	list_add(&pool->node, &zcopy_pools);
	mutex_unlock(&zcopy_pools_lock);
	zcopy_count(zf, ZC_POOL_PAGES, nr);
	return pool;

err_free_pages:
	while (i--)
		put_page(pool->slots[i]);
	kvfree(pool->sending);
err_free_shared:
	bitmap_free(pool->shared);
err_free_id:
	zcopy_offsets_put(pool->pgoff);
err_unaccount:
	mm_unaccount_pinned_pages(&pool->mmp);
err_free_pool:
	kvfree(pool);
	return ERR_PTR(ret);
}

/* With the file: no mapping is left, no send holds the pool. */
void zcopy_pool_free(struct zcopy_pool *pool)
{
	unsigned long i;

	mutex_lock(&zcopy_pools_lock);
	list_del(&pool->node);
	mutex_unlock(&zcopy_pools_lock);
	zcopy_count(pool->zf, ZC_POOL_PAGES, -(s64)pool->nr_pages);

	/* The stack keeps the pages it still holds. */
	for (i = 0; i < pool->nr_pages; i++)
		put_page(pool->slots[i]);
	mm_unaccount_pinned_pages(&pool->mmp);
	if (pool->mm)
		mmdrop(pool->mm);
	kvfree(pool->sending);
	bitmap_free(pool->shared);
	zcopy_offsets_put(pool->pgoff);
	kvfree(pool);
}

int zcopy_pool_mmap(struct zcopy_file *zf, struct file *file,
		    struct vm_area_struct *vma)
{
	unsigned long nr = vma_pages(vma);
	struct zcopy_pool *pool;
	int ret = 0;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;

	mutex_lock(&zf->pool_lock);
	pool = zf->pool;
	if (!pool) {
		pool = zcopy_pool_create(zf, file, nr);
		if (IS_ERR(pool)) {
			ret = PTR_ERR(pool);
			goto out_unlock;
		}
		/* Pairs with smp_load_acquire() in zcopy_ioctl_pool_send(). */
		smp_store_release(&zf->pool, pool);
	} else if (nr > pool->nr_pages) {
		ret = -EINVAL;
		goto out_unlock;
	}
	if (!pool->mm) {
		pool->mm = current->mm;
		mmgrab(pool->mm);
	}
	if (pool->mm == current->mm)
		pool->uaddr = vma->vm_start;

	vma->vm_pgoff = pool->pgoff;
	vma->vm_private_data = pool;
	vma->vm_ops = &zcopy_pool_vm_ops;
	vm_flags_set(vma, VM_DONTCOPY | VM_DONTEXPAND);
	vm_flags_clear(vma, VM_MAYEXEC);
out_unlock:
	mutex_unlock(&zf->pool_lock);
	return ret;
}

/*
 * The stack calls zcopy_tx_complete() from skb_release_data() before it
 * drops the frags' page references, so the re-arm work, on another CPU,
 * may find slot @idx's page still held a moment longer: longer still when
 * that CPU is a vCPU its host has preempted, for milliseconds. A fault of
 * the owner's, in progress, holds it for a moment too. Wait for those
 * references, sleeping, up to @deadline for the whole batch, and say
 * whether the page is free now. A slot another send of ours holds (its
 * completion re-arms it) or one sent by reference has nothing to wait for.
 */
static bool zcopy_pool_settle(struct zcopy_pool *pool, unsigned long idx,
			      u64 deadline)
{
	bool held, busy;

	for (;;) {
		mutex_lock(&pool->lock);
		held = pool->sending[idx] || test_bit(idx, pool->shared);
		busy = held || zcopy_page_busy(pool->slots[idx], 0);
		mutex_unlock(&pool->lock);
		if (!busy)
			return true;
		if (held || ktime_get_ns() > deadline)
			return false;
		usleep_range(10, 20);
	}
}

/*
 * Fault slot @idx in writable at @addr. A fault of the owner's own (a read
 * of the page just sent, say) may race with it: holding the page when
 * ->page_mkwrite looks, or putting a read-only PTE in first. Settle and
 * fault again then, through that PTE.
 */
static void zcopy_pool_rearm_one(struct zcopy_pool *pool, struct vm_area_struct *vma,
				 unsigned long idx, unsigned long addr, u64 deadline)
{
	vm_fault_t ret;
	int tries;

	for (tries = 0; tries < 4; tries++) {
		if (!zcopy_pool_settle(pool, idx, deadline))
			return;
		pool->rearm_mkwrite = ZCOPY_REARM_NONE;
		ret = handle_mm_fault(vma, addr, FAULT_FLAG_WRITE | FAULT_FLAG_REMOTE, NULL);
		if (pool->rearm_mkwrite == ZCOPY_REARM_NONE || (ret & VM_FAULT_ERROR))
			return;
		if (pool->rearm_mkwrite == ZCOPY_REARM_WRITABLE && !(ret & VM_FAULT_NOPAGE)) {
			zcopy_count(pool->zf, ZC_PAGES_REARMED, 1);
			return;
		}
	}
}

/*
 * Fault slots [first, first + nr) in writable where the pool's owner maps
 * them, now that a send has let go of them: the owner's next write to them
 * takes no fault. Pages still busy, or mapped elsewhere, are left alone.
 */
static void zcopy_pool_rearm(struct zcopy_pool *pool, unsigned long first,
			     unsigned int nr)
{
	struct mm_struct *mm = pool->mm;
	struct vm_area_struct *vma = NULL;
	u64 deadline = ktime_get_ns() + ZCOPY_SETTLE_MS * NSEC_PER_MSEC;
	unsigned long i, addr;

	if (!mm || !mmget_not_zero(mm))
		return;
	mutex_lock(&pool->rearm_lock);
	mmap_read_lock(mm);
	WRITE_ONCE(pool->rearming, current);
	for (i = first; i < first + nr; i++) {
		addr = pool->uaddr + (i << PAGE_SHIFT);
		if (!vma || addr < vma->vm_start || addr >= vma->vm_end)
			vma = vma_lookup(mm, addr);
		if (!vma || vma->vm_ops != &zcopy_pool_vm_ops ||
		    vma->vm_private_data != pool || !(vma->vm_flags & VM_WRITE) ||
		    linear_page_index(vma, addr) != pool->pgoff + i)
			continue;
		zcopy_pool_rearm_one(pool, vma, i, addr, deadline);
	}
	WRITE_ONCE(pool->rearming, NULL);
	mmap_read_unlock(mm);
	mutex_unlock(&pool->rearm_lock);
	mmput(mm);
}

/* Let go of pages [from, tx->nr_pages) of a send with a record. */
void zcopy_pool_tx_put(struct zcopy_tx *tx, unsigned int from)
{
	struct zcopy_pool *pool = tx->pool;
	unsigned int i;

	mutex_lock(&pool->lock);
	for (i = from; i < tx->nr_pages; i++)
		pool->sending[tx->first + i]--;
	mutex_unlock(&pool->lock);
	for (i = from; i < tx->nr_pages; i++)
		put_page(tx->pages[i]);
}

/* A send with a record completed: drop its pages, re-arm them if it went out. */
void zcopy_pool_tx_done(struct zcopy_tx *tx, bool rearm)
{
	zcopy_pool_tx_put(tx, 0);
	if (rearm && tx->nr_pages)
		zcopy_pool_rearm(tx->pool, tx->first, tx->nr_pages);
}

/*
 * Take slots [first, first + nr) for a send: zap them from every page table
 * and hold a reference, so that a write from now on copies. A page pinned by someone else,
 * who could write to it, is replaced by a copy for the send. Fills @pages
 * and @bvec for bytes [@off, @off + @len) of the first page on; returns the
 * bytes that come from copies, or an error.
 */
static ssize_t zcopy_pool_take(struct zcopy_pool *pool, unsigned long first,
			       unsigned int nr, unsigned int off, size_t len,
			       struct page **pages, struct bio_vec *bvec)
{
	struct page *page, *copy;
	size_t copied = 0, seg;
	unsigned int i, j;

	mutex_lock(&pool->lock);
	for (i = 0; i < nr; i++)
		lock_page(pool->slots[first + i]);
	zcopy_pool_zap(pool, first, nr);

	for (i = 0; i < nr; i++, off = 0) {
		page = pool->slots[first + i];
		seg = min_t(size_t, len, PAGE_SIZE - off);
		if (folio_maybe_dma_pinned(page_folio(page))) {
			copy = alloc_page(GFP_HIGHUSER);
			if (!copy)
				break;
			copy_highpage(copy, page);
			page = copy;
			copied += seg;
		} else {
			get_page(page);
		}
		pages[i] = page;
		bvec_set_page(&bvec[i], page, seg, off);
		len -= seg;
	}

	for (j = 0; j < nr; j++)
		unlock_page(pool->slots[first + j]);
	mutex_unlock(&pool->lock);

	if (i < nr) {
		while (i--)
			put_page(pages[i]);
		return -ENOMEM;
	}
	return copied;
}

/* Translate an address in a mapping of @pool to an offset in the pool. */
static int zcopy_pool_addr(struct zcopy_pool *pool, u64 addr, u64 len, u64 *off)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	int ret = -EFAULT;

	if (addr > TASK_SIZE_MAX)
		return -EFAULT;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, addr);
	if (vma && vma->vm_ops == &zcopy_pool_vm_ops && vma->vm_private_data == pool &&
	    len <= vma->vm_end - addr) {
		*off = ((u64)(linear_page_index(vma, addr) - pool->pgoff) << PAGE_SHIFT) +
		       offset_in_page(addr);
		ret = 0;
	}
	mmap_read_unlock(mm);
	return ret;
}

/*
 * Send by page reference: no record; the receiver gets the pages themselves
 * and may keep them for good, so the slots whose page went out are marked
 * copy-on-write from now on (unless a copy already took a slot's place).
 */
static int zcopy_pool_send_pages(struct socket *sock, struct zcopy_pool *pool,
				 unsigned long first, struct page **pages,
				 struct bio_vec *bvec, unsigned int nr,
				 size_t len, u32 flags)
{
	unsigned int i;
	size_t sent;
	int ret;

	ret = zcopy_sendpages(sock, bvec, nr, len, zcopy_msg_flags(sock, flags));

	mutex_lock(&pool->lock);
	for (i = 0, sent = max(ret, 0); i < nr && sent; i++) {
		sent -= min_t(size_t, sent, bvec[i].bv_len);
		if (pool->slots[first + i] == pages[i])
			__set_bit(first + i, pool->shared);
	}
	mutex_unlock(&pool->lock);

	for (i = 0; i < nr; i++)
		put_page(pages[i]);
	return ret ?: -EAGAIN;
}

static int zcopy_pool_send(struct zcopy_file *zf, struct zcopy_pool *pool,
			   struct socket *sock, struct zcopy_pool_send *args)
{
	bool notify = (args->flags & ZCOPY_POOL_SEND_NOTIFY) ||
		      sock->sk->sk_protocol == IPPROTO_UDP;
	u32 flags = args->flags & ZCOPY_SEND_FLAGS;
	struct zcopy_tx *tx = NULL;
	struct page **pages;
	struct bio_vec *bvec;
	unsigned long first;
	unsigned int nr;
	ssize_t copied;
	size_t len;
	u64 off;
	int ret;

	off = args->offset;
	if (args->flags & ZCOPY_POOL_SEND_ADDR) {
		ret = zcopy_pool_addr(pool, args->offset, args->len, &off);
		if (ret)
			return ret;
	}
	if (off >= (u64)pool->nr_pages << PAGE_SHIFT ||
	    args->len > ((u64)pool->nr_pages << PAGE_SHIFT) - off)
		return -EINVAL;

	len = zcopy_send_limit(offset_in_page(off), args->len);
	/* A datagram is sent whole or not at all. */
	if (sock->type == SOCK_DGRAM && len < args->len)
		return -EMSGSIZE;
	first = off >> PAGE_SHIFT;
	nr = DIV_ROUND_UP(offset_in_page(off) + len, PAGE_SIZE);

	bvec = kvmalloc_array(nr, sizeof(*bvec), GFP_KERNEL_ACCOUNT);
	if (!bvec)
		return -ENOMEM;
	if (notify) {
		ret = zcopy_reserve_record(zf);
		if (ret)
			goto out_free_bvec;
		ret = -ENOMEM;
		tx = zcopy_tx_alloc(zf, nr);
		if (!tx) {
			zcopy_unreserve_record(zf);
			goto out_free_bvec;
		}
		pages = tx->pages;
	} else {
		ret = -ENOMEM;
		pages = kvmalloc_array(nr, sizeof(*pages), GFP_KERNEL_ACCOUNT);
		if (!pages)
			goto out_free_bvec;
	}

	copied = zcopy_pool_take(pool, first, nr, offset_in_page(off), len, pages, bvec);
	if (copied < 0) {
		ret = copied;
		if (notify) {
			zcopy_tx_free(tx);
			zcopy_unreserve_record(zf);
		} else {
			kvfree(pages);
		}
		goto out_free_bvec;
	}

	if (notify) {
		unsigned int i;

		mutex_lock(&pool->lock);
		for (i = 0; i < nr; i++)
			pool->sending[first + i]++;
		mutex_unlock(&pool->lock);
		tx->pool = pool;
		tx->first = first;
		tx->nr_pages = nr;
		ret = zcopy_tx_submit(tx, sock, bvec, len, flags, args->cookie,
				      &args->seq, &args->stream_offset);
	} else {
		ret = zcopy_pool_send_pages(sock, pool, first, pages, bvec, nr, len, flags);
		args->seq = ZCOPY_NO_SEQ;
		args->stream_offset = ZCOPY_NO_SEQ;
		kvfree(pages);
	}
	if (ret > 0) {
		args->bytes = ret;
		zcopy_count(zf, ZC_POOL_SENDS, 1);
		zcopy_count(zf, ZC_POOL_SEND_BYTES, ret);
		zcopy_count(zf, ZC_POOL_SEND_COPIED_BYTES, min_t(size_t, copied, ret));
		ret = 0;
	}
out_free_bvec:
	kvfree(bvec);
	return ret;
}

long zcopy_ioctl_pool_send(struct zcopy_file *zf, struct zcopy_pool_send __user *uarg)
{
	struct zcopy_pool_send args;
	struct zcopy_pool *pool;
	struct socket *sock;
	int ret;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~ZCOPY_POOL_SEND_FLAGS ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)) || !args.len)
		return -EINVAL;
	/* Pairs with smp_store_release() in zcopy_pool_mmap(). */
	pool = smp_load_acquire(&zf->pool);
	if (!pool)
		return -ENXIO;
	if (copy_to_user(uarg, &args, sizeof(args)))
		return -EFAULT;

	sock = zcopy_get_send_socket(args.sockfd);
	if (IS_ERR(sock))
		return PTR_ERR(sock);
	ret = zcopy_pool_send(zf, pool, sock, &args);
	sockfd_put(sock);

	if (!ret && copy_to_user(uarg, &args, sizeof(args)))
		ret = -EFAULT;
	return ret;
}

/* Pool pages that anyone but the pool and the page tables hold now. */
unsigned long zcopy_pool_in_flight(struct zcopy_pool *pool)
{
	unsigned long i, n = 0;

	mutex_lock(&pool->lock);
	for (i = 0; i < pool->nr_pages; i++)
		n += zcopy_page_busy(pool->slots[i], 0);
	mutex_unlock(&pool->lock);
	return n;
}

unsigned long zcopy_pools_in_flight(void)
{
	struct zcopy_pool *pool;
	unsigned long n = 0;

	mutex_lock(&zcopy_pools_lock);
	list_for_each_entry(pool, &zcopy_pools, node)
		n += zcopy_pool_in_flight(pool);
	mutex_unlock(&zcopy_pools_lock);
	return n;
}
