// SPDX-License-Identifier: GPL-2.0
/*
 * The send pool: pages mapped from /dev/zcopy into the application, sent
 * without copying, and copied on write while a send holds them.
 *
 * A pool is an array of slots, each holding one page that the pool owns.
 * The application maps it MAP_SHARED. ->fault inserts a slot's page as a
 * special PTE of a VM_PFNMAP mapping, under the pool lock: get_user_pages()
 * refuses such mappings, so vmsplice(), O_DIRECT, io_uring buffers,
 * process_vm_readv() and MSG_ZEROCOPY cannot take a reference to a pool
 * page, and no one but zcopy ever holds one. A read fault maps the page
 * read-only (the mapping is write-notify); the first write then comes to
 * ->pfn_mkwrite. Writes that take no reference (ptrace, /proc/PID/mem) come
 * through ->access.
 *
 * A slot is held while a send has its page: one with a completion record
 * until the stack has let go of every skb, one by reference for good, as
 * the receiver may keep the very page as long as it likes. A send zaps its
 * slots from every mapping under the pool lock, so a write from then on
 * faults; a write to a held slot gives the slot a copy of the page
 * (copy-on-write), zapping first so that no write lands in the page being
 * copied. The page in flight is never written.
 *
 * The pages of a completed send are mapped writable again when their
 * owner reads the record, in one batch (zcopy_pool_rearm(), from read(2)):
 * an application that rewrites only buffers whose record it has read takes
 * neither a fault nor a copy. No completion path touches an mm or waits.
 *
 * Lock order: mmap_lock, pool->lock, i_mmap_rwsem, PTE lock. Every pool
 * shares the device inode's address_space, so each has its own range of
 * file offsets: zapping one pool never touches another.
 */

#include <linux/bitmap.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/net.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <net/sock.h>

#include "zcopy.h"

static unsigned int max_pool_pages = 65536;
module_param(max_pool_pages, uint, 0644);
MODULE_PARM_DESC(max_pool_pages, "Most pages in one pool (default 65536)");

/**
 * struct zcopy_pool - the pages of a send pool
 * @lock:	protects everything below but @nr_pages, and orders every
 *		insertion of a PTE against every zap
 * @zf:		the file that owns the pool
 * @mapping:	the device's address_space
 * @pgoff:	the pool's first file offset, in pages
 * @nr_pages:	pages in the pool
 * @mm:		the address space that last mapped the pool (grabbed)
 * @uaddr:	where @mm maps the pool's start, as far as we know: where
 *		zcopy_pool_rearm() looks, checking the VMA each time
 * @mmp:	the RLIMIT_MEMLOCK charge
 * @held:	slots held now (pool_pages_in_flight)
 * @sending:	per slot, the sends with a record that hold its page
 * @given:	slots whose page went out by reference
 * @rearm:	slots that a completed send has let go of since the last
 *		zcopy_pool_rearm()
 * @slots:	the pages
 */
struct zcopy_pool {
	struct mutex		lock;		/* see above */
	struct zcopy_file	*zf;
	struct address_space	*mapping;
	pgoff_t			pgoff;
	unsigned long		nr_pages;
	struct mm_struct	*mm;
	unsigned long		uaddr;
	struct mmpin		mmp;
	unsigned long		held;
	unsigned int		*sending;
	unsigned long		*given;
	unsigned long		*rearm;
	struct page		*slots[];
};

static const struct vm_operations_struct zcopy_pool_vm_ops;

/* Does a send hold slot @idx's page? */
static bool zcopy_slot_held(struct zcopy_pool *pool, unsigned long idx)
{
	lockdep_assert_held(&pool->lock);
	return pool->sending[idx] || test_bit(idx, pool->given);
}

/* Count slot @idx held, when it was not (@was_held) and is now, or back. */
static void zcopy_pool_account(struct zcopy_pool *pool, unsigned long idx, bool was_held)
{
	bool held = zcopy_slot_held(pool, idx);

	if (held == was_held)
		return;
	pool->held += held ? 1 : -1;
	zcopy_count(pool->zf, ZC_POOL_IN_FLIGHT, held ? 1 : -1);
}

/* Remove slots [idx, idx + nr) from every page table that maps them. */
static void zcopy_pool_zap(struct zcopy_pool *pool, unsigned long idx,
			   unsigned long nr)
{
	unmap_mapping_range(pool->mapping, (loff_t)(pool->pgoff + idx) << PAGE_SHIFT,
			    (loff_t)nr << PAGE_SHIFT, 1);
}

/*
 * The protection of a PTE for @vma: read-only (the VMA's own, write-notify
 * protection), or writable when @write, as the VMA's would be without
 * write-notify (the mapping sets no caching attributes of its own).
 */
static pgprot_t zcopy_pool_prot(struct vm_area_struct *vma, bool write)
{
	return write ? vm_get_page_prot(vma->vm_flags) : vma->vm_page_prot;
}

/*
 * Give held slot @idx a copy of its page; the send keeps the original.
 * The slot is zapped before the copy is made: a write through another
 * mapping of the pool faults from then on, and waits for our lock.
 */
static struct page *zcopy_pool_cow(struct zcopy_pool *pool, unsigned long idx)
{
	struct page *old = pool->slots[idx], *new;

	lockdep_assert_held(&pool->lock);
	new = alloc_page(GFP_HIGHUSER | __GFP_ACCOUNT);
	if (!new)
		return NULL;
	zcopy_pool_zap(pool, idx, 1);
	copy_highpage(new, old);

	pool->slots[idx] = new;
	pool->sending[idx] = 0;
	__clear_bit(idx, pool->given);
	__clear_bit(idx, pool->rearm);
	zcopy_pool_account(pool, idx, true);
	put_page(old);
	zcopy_count(pool->zf, ZC_COW_COPIES, 1);
	return new;
}

static vm_fault_t zcopy_pool_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct zcopy_pool *pool = vma->vm_private_data;
	unsigned long idx = vmf->pgoff - pool->pgoff;
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	struct page *page;
	vm_fault_t ret;

	if (idx >= pool->nr_pages)
		return VM_FAULT_SIGBUS;

	mutex_lock(&pool->lock);
	page = pool->slots[idx];
	/* A write to a held page gets its copy now, saving a second fault. */
	if (write && zcopy_slot_held(pool, idx)) {
		page = zcopy_pool_cow(pool, idx);
		if (!page) {
			mutex_unlock(&pool->lock);
			return VM_FAULT_OOM;
		}
	}
	ret = vmf_insert_pfn_prot(vma, vmf->address, page_to_pfn(page),
				  zcopy_pool_prot(vma, write));
	mutex_unlock(&pool->lock);

	if (write)
		zcopy_count(pool->zf, ZC_WRITE_FAULTS, 1);
	return ret;
}

/*
 * The first write through a read-only PTE. A free page is made writable
 * by the core once we return 0, if its PTE is still the one we saw: a
 * send that zaps it meanwhile makes the write fault again. A held page
 * is copied and the copy mapped writable in its place.
 */
static vm_fault_t zcopy_pool_pfn_mkwrite(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct zcopy_pool *pool = vma->vm_private_data;
	unsigned long idx = vmf->pgoff - pool->pgoff;
	struct page *page;
	vm_fault_t ret = 0;

	mutex_lock(&pool->lock);
	page = pool->slots[idx];
	if (pte_pfn(vmf->orig_pte) != page_to_pfn(page)) {
		/* Not the slot's page: inserts and copies exclude this, but retry afresh. */
		zcopy_pool_zap(pool, idx, 1);
		ret = VM_FAULT_NOPAGE;
	} else if (zcopy_slot_held(pool, idx)) {
		page = zcopy_pool_cow(pool, idx);
		ret = page ? vmf_insert_pfn_prot(vma, vmf->address, page_to_pfn(page),
						 zcopy_pool_prot(vma, true)) : VM_FAULT_OOM;
	}
	mutex_unlock(&pool->lock);

	zcopy_count(pool->zf, ZC_WRITE_FAULTS, 1);
	return ret;
}

/*
 * ptrace() and /proc/PID/mem, which get_user_pages() cannot serve here: a
 * read copies from the slot's page, a write is a write, copy-on-write
 * included, and is refused where the mapping is not writable.
 */
static int zcopy_pool_access(struct vm_area_struct *vma, unsigned long addr,
			     void *buf, int len, int write)
{
	struct zcopy_pool *pool = vma->vm_private_data;
	unsigned long idx = linear_page_index(vma, addr) - pool->pgoff;
	unsigned int off = offset_in_page(addr);
	struct page *page;
	void *kaddr;

	if (idx >= pool->nr_pages || (write && !(vma->vm_flags & VM_WRITE)))
		return -EFAULT;
	len = min_t(int, len, PAGE_SIZE - off);

	mutex_lock(&pool->lock);
	page = pool->slots[idx];
	if (write && zcopy_slot_held(pool, idx)) {
		page = zcopy_pool_cow(pool, idx);
		if (!page) {
			mutex_unlock(&pool->lock);
			return -ENOMEM;
		}
	}
	kaddr = kmap_local_page(page);
	if (write)
		memcpy(kaddr + off, buf, len);
	else
		memcpy(buf, kaddr + off, len);
	kunmap_local(kaddr);
	mutex_unlock(&pool->lock);
	return len;
}

static int zcopy_pool_mremap(struct vm_area_struct *vma)
{
	struct zcopy_pool *pool = vma->vm_private_data;

	mutex_lock(&pool->lock);
	if (vma->vm_mm == pool->mm)
		pool->uaddr = vma->vm_start - ((vma->vm_pgoff - pool->pgoff) << PAGE_SHIFT);
	mutex_unlock(&pool->lock);
	return 0;
}

static const struct vm_operations_struct zcopy_pool_vm_ops = {
	.fault		= zcopy_pool_fault,
	.pfn_mkwrite	= zcopy_pool_pfn_mkwrite,
	.access		= zcopy_pool_access,
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
	pool->sending = kvcalloc(nr, sizeof(*pool->sending), GFP_KERNEL_ACCOUNT);
	pool->given = bitmap_zalloc(nr, GFP_KERNEL_ACCOUNT);
	pool->rearm = bitmap_zalloc(nr, GFP_KERNEL_ACCOUNT);
	if (!pool->sending || !pool->given || !pool->rearm)
		goto err_free_maps;
	for (i = 0; i < nr; i++) {
		pool->slots[i] = alloc_page(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT);
		if (!pool->slots[i])
			goto err_free_pages;
	}

	mutex_init(&pool->lock);
	pool->zf = zf;
	pool->mapping = file->f_mapping;
	pool->nr_pages = nr;
	zcopy_count(zf, ZC_POOL_PAGES, nr);
	return pool;

err_free_pages:
	while (i--)
		put_page(pool->slots[i]);
err_free_maps:
	bitmap_free(pool->rearm);
	bitmap_free(pool->given);
	kvfree(pool->sending);
	zcopy_offsets_put(pool->pgoff);
err_unaccount:
	mm_unaccount_pinned_pages(&pool->mmp);
err_free_pool:
	kvfree(pool);
	return ERR_PTR(ret);
}

/* With the file: no mapping is left, no send with a record holds the pool. */
void zcopy_pool_free(struct zcopy_pool *pool)
{
	unsigned long i;

	zcopy_count(pool->zf, ZC_POOL_PAGES, -(s64)pool->nr_pages);
	zcopy_count(pool->zf, ZC_POOL_IN_FLIGHT, -(s64)pool->held);
	/* Receivers keep the pages they hold. */
	for (i = 0; i < pool->nr_pages; i++)
		put_page(pool->slots[i]);
	mm_unaccount_pinned_pages(&pool->mmp);
	if (pool->mm)
		mmdrop(pool->mm);
	bitmap_free(pool->rearm);
	bitmap_free(pool->given);
	kvfree(pool->sending);
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

	mutex_lock(&pool->lock);
	if (pool->mm != current->mm) {
		if (pool->mm)
			mmdrop(pool->mm);
		pool->mm = current->mm;
		mmgrab(pool->mm);
	}
	pool->uaddr = vma->vm_start;
	mutex_unlock(&pool->lock);

	vma->vm_pgoff = pool->pgoff;
	vma->vm_private_data = pool;
	vma->vm_ops = &zcopy_pool_vm_ops;
	/* Special PTEs: get_user_pages() and its users stay out. */
	vm_flags_set(vma, VM_PFNMAP | VM_DONTCOPY | VM_DONTEXPAND);
	vm_flags_clear(vma, VM_MAYEXEC);
out_unlock:
	mutex_unlock(&zf->pool_lock);
	return ret;
}

/*
 * Map writable, where the caller last mapped the pool, the slots that
 * completed sends have let go of: the caller has just read their records
 * and will write to them next. One batch under one lock, in the caller's
 * own address space: each run of such slots is zapped there (the caller
 * may have read them since, mapping them read-only) and inserted
 * writable. A slot held again is left to fault as usual.
 */
void zcopy_pool_rearm(struct zcopy_pool *pool)
{
	struct mm_struct *mm = current->mm;
	unsigned long start, end, idx, addr, n = 0;
	struct vm_area_struct *vma;
	pgprot_t prot;

	if (!mm || READ_ONCE(pool->mm) != mm ||
	    bitmap_empty(pool->rearm, pool->nr_pages))
		return;

	mmap_read_lock(mm);
	mutex_lock(&pool->lock);
	vma = vma_lookup(mm, pool->uaddr);
	if (!vma || vma->vm_ops != &zcopy_pool_vm_ops || vma->vm_private_data != pool ||
	    !(vma->vm_flags & VM_WRITE) || vma->vm_start != pool->uaddr ||
	    vma->vm_pgoff != pool->pgoff)
		goto out_unlock;
	prot = zcopy_pool_prot(vma, true);
	end = min(vma_pages(vma), pool->nr_pages);
	for_each_set_bitrange(start, idx, pool->rearm, end) {
		addr = vma->vm_start + (start << PAGE_SHIFT);
		zap_vma_ptes(vma, addr, (idx - start) << PAGE_SHIFT);
		for (; start < idx; start++, addr += PAGE_SIZE) {
			if (zcopy_slot_held(pool, start))
				continue;
			if (vmf_insert_pfn_prot(vma, addr, page_to_pfn(pool->slots[start]),
						prot) == VM_FAULT_NOPAGE)
				n++;
		}
	}
	bitmap_zero(pool->rearm, pool->nr_pages);
	zcopy_count(pool->zf, ZC_PAGES_REARMED, n);
out_unlock:
	mutex_unlock(&pool->lock);
	mmap_read_unlock(mm);
}

/* A send with a record let go of its pages: release their slots. */
void zcopy_pool_tx_put(struct zcopy_tx *tx, unsigned int from, bool sent)
{
	struct zcopy_pool *pool = tx->pool;
	unsigned long idx;
	unsigned int i;

	mutex_lock(&pool->lock);
	for (i = from; i < tx->nr_pages; i++) {
		idx = tx->first + i;
		/* A copy has taken the slot since: the send's page is its own. */
		if (pool->slots[idx] != tx->pages[i])
			continue;
		pool->sending[idx]--;
		zcopy_pool_account(pool, idx, true);
		if (sent && !zcopy_slot_held(pool, idx))
			__set_bit(idx, pool->rearm);
	}
	mutex_unlock(&pool->lock);
	for (i = from; i < tx->nr_pages; i++)
		put_page(tx->pages[i]);
}

/*
 * Take slots [first, first + nr) for a send: zap them from every page
 * table, so that a write from now on faults and copies; hold them for the
 * send; and take a reference to each page for it. Fills @pages and @bvec
 * for bytes [@off, @off + @len) of the first page on.
 */
static void zcopy_pool_take(struct zcopy_pool *pool, unsigned long first,
			    unsigned int nr, unsigned int off, size_t len,
			    struct page **pages, struct bio_vec *bvec)
{
	unsigned long idx;
	unsigned int i;
	size_t seg;
	bool was;

	mutex_lock(&pool->lock);
	zcopy_pool_zap(pool, first, nr);
	for (i = 0; i < nr; i++, off = 0) {
		idx = first + i;
		was = zcopy_slot_held(pool, idx);
		pool->sending[idx]++;
		zcopy_pool_account(pool, idx, was);
		__clear_bit(idx, pool->rearm);

		pages[i] = pool->slots[idx];
		get_page(pages[i]);
		seg = min_t(size_t, len, PAGE_SIZE - off);
		bvec_set_page(&bvec[i], pages[i], seg, off);
		len -= seg;
	}
	mutex_unlock(&pool->lock);
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
 * Send by page reference: no record; the receiver gets the pages
 * themselves and may keep them for good, so the slots whose page the
 * socket took stay held (given) until a write copies them; the others are
 * let go, unless a write copied them meanwhile.
 */
static int zcopy_pool_send_pages(struct socket *sock, struct zcopy_pool *pool,
				 unsigned long first, struct page **pages,
				 struct bio_vec *bvec, unsigned int nr,
				 size_t len, u32 flags)
{
	unsigned long idx;
	unsigned int i;
	size_t sent;
	int ret;

	ret = zcopy_sendpages(sock, bvec, nr, len, zcopy_msg_flags(sock, flags));

	mutex_lock(&pool->lock);
	for (i = 0, sent = max(ret, 0); i < nr; i++) {
		idx = first + i;
		if (pool->slots[idx] == pages[i]) {
			pool->sending[idx]--;
			if (sent)
				__set_bit(idx, pool->given);
			zcopy_pool_account(pool, idx, true);
		}
		sent -= min_t(size_t, sent, bvec[i].bv_len);
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

	zcopy_pool_take(pool, first, nr, offset_in_page(off), len, pages, bvec);
	if (notify) {
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
