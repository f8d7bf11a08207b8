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
 * A page is written in place only while the pool alone holds it, though:
 * the stack may keep one past the send's completion (see
 * zcopy_slot_shared()), and a write to it copies as if it were held.
 *
 * Lock order: mmap_lock, pool->lock, i_mmap_rwsem, PTE lock.
 */

#include <linux/bitmap.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/net.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <net/sock.h>

#include "zcopy.h"

static unsigned int max_pool_pages = 65536;
module_param(max_pool_pages, uint, 0644);
MODULE_PARM_DESC(max_pool_pages, "Most pages in one pool (default 65536)");

/**
 * struct zcopy_pool - the pages of a send pool
 * @area:	what it shares with a receive area
 * @lock:	protects everything below, and orders every insertion of a
 *		PTE against every zap
 * @held:	slots held now (pool_pages_in_flight)
 * @sending:	per slot, the sends that hold its page: those with a record
 *		until they complete, those by reference while being made
 * @given:	slots whose page went out by reference
 * @rearm:	slots that a completed send has let go of since the last
 *		zcopy_pool_rearm()
 * @slots:	the pages
 */
struct zcopy_pool {
	struct zcopy_area	area;
	struct mutex		lock;		/* see above */
	unsigned long		held;
	unsigned int		*sending;
	unsigned long		*given;
	unsigned long		*rearm;
	struct page		*slots[];
};

/* A pool send's own state, at tx->priv. */
struct zcopy_pool_tx {
	struct zcopy_pool	*pool;
	unsigned long		slots[];	/* the slot of each page */
};

/*
 * Where a pool send's bytes are: @len bytes from @off into slot @first's
 * page, on through the @nr slots from it.
 */
struct zcopy_pool_seg {
	unsigned long		first;
	unsigned int		nr;
	unsigned int		off;
	size_t			len;
};

static const struct zcopy_area_ops zcopy_pool_area_ops;

static struct zcopy_pool *zcopy_pool(struct zcopy_area *area)
{
	return container_of(area, struct zcopy_pool, area);
}

/* Does a send hold slot @idx's page? */
static bool zcopy_slot_held(struct zcopy_pool *pool, unsigned long idx)
{
	lockdep_assert_held(&pool->lock);
	return pool->sending[idx] || test_bit(idx, pool->given);
}

/*
 * Whether slot @idx's page may have readers besides the pool, which a
 * write in place would change: while a send holds it, and while anyone
 * else has a reference. The stack can keep a page after the last skb of
 * its send let go: from 6.5 a TCP MTU probe takes the pages of the skbs it
 * merges, but not their ubuf_info, and frees them (see compat.h), and the
 * send completes while the probe, or a receiver on this machine, still has
 * the pages. Nobody can take a new reference meanwhile: the mapping is
 * VM_PFNMAP, and sends take theirs under the pool lock. A send that
 * copies holds its references only while it runs, zapping nothing: a
 * write that faults meanwhile copies too, as anonymous memory's COW does
 * for a page with extra references, and one through a writable PTE lands
 * in place, as under write(2).
 */
static bool zcopy_slot_shared(struct zcopy_pool *pool, unsigned long idx)
{
	return zcopy_slot_held(pool, idx) || page_ref_count(pool->slots[idx]) != 1;
}

/* Count slot @idx held, when it was not (@was_held) and is now, or back. */
static void zcopy_pool_account(struct zcopy_pool *pool, unsigned long idx, bool was_held)
{
	bool held = zcopy_slot_held(pool, idx);

	if (held == was_held)
		return;
	pool->held += held ? 1 : -1;
	zcopy_count(pool->area.zf, ZC_POOL_IN_FLIGHT, held ? 1 : -1);
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
 * Give shared slot @idx a copy of its page; the send, or whoever else has
 * it, keeps the original. The slot is zapped before the copy is made: a
 * write through another mapping of the pool faults from then on, and
 * waits for our lock.
 */
static struct page *zcopy_pool_cow(struct zcopy_pool *pool, unsigned long idx)
{
	struct page *old = pool->slots[idx], *new;
	bool was_held;

	lockdep_assert_held(&pool->lock);
	new = alloc_page(GFP_HIGHUSER | __GFP_ACCOUNT);
	if (!new)
		return NULL;
	zcopy_area_zap(&pool->area, idx, 1);
	copy_highpage(new, old);

	was_held = zcopy_slot_held(pool, idx);
	pool->slots[idx] = new;
	pool->sending[idx] = 0;
	__clear_bit(idx, pool->given);
	__clear_bit(idx, pool->rearm);
	zcopy_pool_account(pool, idx, was_held);
	put_page(old);
	zcopy_count(pool->area.zf, ZC_COW_COPIES, 1);
	return new;
}

/*
 * Map slot @idx's page at @vmf's address, writable when @write: a shared
 * page gets its copy first.
 */
static vm_fault_t zcopy_pool_insert(struct zcopy_pool *pool, struct vm_fault *vmf,
				    unsigned long idx, bool write)
{
	struct page *page = pool->slots[idx];

	lockdep_assert_held(&pool->lock);
	if (write && zcopy_slot_shared(pool, idx)) {
		page = zcopy_pool_cow(pool, idx);
		if (!page)
			return VM_FAULT_OOM;
	}
	return vmf_insert_pfn_prot(vmf->vma, vmf->address, page_to_pfn(page),
				   zcopy_pool_prot(vmf->vma, write));
}

static vm_fault_t zcopy_pool_fault(struct vm_fault *vmf)
{
	struct zcopy_pool *pool = zcopy_pool(vmf->vma->vm_private_data);
	unsigned long idx = vmf->pgoff - pool->area.pgoff;
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	vm_fault_t ret;

	if (idx >= pool->area.nr_pages)
		return VM_FAULT_SIGBUS;
	mutex_lock(&pool->lock);
	ret = zcopy_pool_insert(pool, vmf, idx, write);
	mutex_unlock(&pool->lock);
	if (write)
		zcopy_count(pool->area.zf, ZC_WRITE_FAULTS, 1);
	return ret;
}

/*
 * The first write through a read-only PTE: the page, or for a held one
 * its copy, is mapped writable here, under the pool lock, and never by
 * the core. The core would do it once we returned 0 if the PTE were still
 * the one it saw, but a send may zap that PTE meanwhile and a read fault
 * map the page again read-only, leaving a PTE just like it, and the write
 * would land in the page in flight.
 */
static vm_fault_t zcopy_pool_pfn_mkwrite(struct vm_fault *vmf)
{
	struct zcopy_pool *pool = zcopy_pool(vmf->vma->vm_private_data);
	unsigned long idx = vmf->pgoff - pool->area.pgoff;
	vm_fault_t ret;

	mutex_lock(&pool->lock);
	if (pte_pfn(vmf->orig_pte) != page_to_pfn(pool->slots[idx])) {
		/* Not the slot's page: a copy replaced it since the fault; retry afresh. */
		zcopy_area_zap(&pool->area, idx, 1);
		ret = VM_FAULT_NOPAGE;
	} else {
		/* An insert leaves a PTE that is there as it is. */
		zap_vma_ptes(vmf->vma, vmf->address, PAGE_SIZE);
		ret = zcopy_pool_insert(pool, vmf, idx, true);
	}
	mutex_unlock(&pool->lock);
	zcopy_count(pool->area.zf, ZC_WRITE_FAULTS, 1);
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
	struct zcopy_pool *pool = zcopy_pool(vma->vm_private_data);
	unsigned long idx = linear_page_index(vma, addr) - pool->area.pgoff;
	unsigned int off = offset_in_page(addr);
	struct page *page;
	void *kaddr;

	if (idx >= pool->area.nr_pages || (write && !(vma->vm_flags & VM_WRITE)))
		return -EFAULT;
	len = min_t(int, len, PAGE_SIZE - off);

	mutex_lock(&pool->lock);
	page = pool->slots[idx];
	if (write && zcopy_slot_shared(pool, idx)) {
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
	struct zcopy_area *area = vma->vm_private_data;

	WRITE_ONCE(area->uaddr, vma->vm_start);
	return 0;
}

static void zcopy_pool_free(struct zcopy_area *area)
{
	struct zcopy_pool *pool = zcopy_pool(area);
	unsigned long i;

	zcopy_count(area->zf, ZC_POOL_PAGES, -(s64)area->nr_pages);
	zcopy_count(area->zf, ZC_POOL_IN_FLIGHT, -(s64)pool->held);
	/* Receivers keep the pages they hold. */
	for (i = 0; i < area->nr_pages; i++)
		put_page(pool->slots[i]);
	zcopy_area_destroy(area);
	bitmap_free(pool->rearm);
	bitmap_free(pool->given);
	kvfree(pool->sending);
	kvfree(pool);
}

static struct zcopy_area *zcopy_pool_create(struct zcopy_file *zf, unsigned long nr)
{
	struct zcopy_pool *pool;
	unsigned long i;
	int ret;

	/* Past ZCOPY_MMAP_RECV, the pool's offsets would be the receive area's. */
	if (nr > READ_ONCE(max_pool_pages) || nr > (ZCOPY_MMAP_RECV >> PAGE_SHIFT))
		return ERR_PTR(-EINVAL);

	pool = kvzalloc(struct_size(pool, slots, nr), GFP_KERNEL_ACCOUNT);
	if (!pool)
		return ERR_PTR(-ENOMEM);
	ret = zcopy_area_init(&pool->area, zf, &zcopy_pool_area_ops,
			      ZCOPY_MMAP_POOL >> PAGE_SHIFT, nr);
	if (ret)
		goto err_free_pool;
	ret = -ENOMEM;
	pool->sending = kvcalloc(nr, sizeof(*pool->sending), GFP_KERNEL_ACCOUNT);
	pool->given = bitmap_zalloc(nr, GFP_KERNEL_ACCOUNT);
	pool->rearm = bitmap_zalloc(nr, GFP_KERNEL_ACCOUNT);
	if (!pool->sending || !pool->given || !pool->rearm)
		goto err_free_maps;
	for (i = 0; i < nr; i++) {
		/* Up to max_pool_pages under the caller's mmap_lock: a killed caller stops. */
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			goto err_free_pages;
		}
		pool->slots[i] = alloc_page(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT);
		if (!pool->slots[i])
			goto err_free_pages;
	}
	mutex_init(&pool->lock);
	zcopy_count(zf, ZC_POOL_PAGES, nr);
	return &pool->area;

err_free_pages:
	while (i--)
		put_page(pool->slots[i]);
err_free_maps:
	bitmap_free(pool->rearm);
	bitmap_free(pool->given);
	kvfree(pool->sending);
	zcopy_area_destroy(&pool->area);
err_free_pool:
	kvfree(pool);
	return ERR_PTR(ret);
}

/* Any number of mappings, none larger than the pool. */
static int zcopy_pool_attach(struct zcopy_area *area, struct vm_area_struct *vma)
{
	if (vma_pages(vma) > area->nr_pages)
		return -EINVAL;
	/*
	 * Special PTEs: get_user_pages() and its users stay out. VM_IO, as
	 * remap_pfn_range() sets it, so that MADV_DOFORK cannot undo
	 * VM_DONTCOPY.
	 */
	vm_flags_set(vma, VM_PFNMAP | VM_IO | VM_DONTCOPY | VM_DONTEXPAND);
	vm_flags_clear(vma, VM_MAYEXEC);
	return 0;
}

/*
 * Shared and not executable, or no pool is made. A MAP_SHARED mapping of
 * a file opened O_RDONLY is VM_MAYSHARE only: a pool that stays read-only.
 */
int zcopy_pool_mmap(struct zcopy_file *zf, struct vm_area_struct *vma)
{
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	return zcopy_area_mmap(zf, &zf->pool, vma, zcopy_pool_create, zcopy_pool_attach);
}

/* The file's pool, once mapped. */
static struct zcopy_pool *zcopy_file_pool(struct zcopy_file *zf)
{
	/* Pairs with smp_store_release() in zcopy_area_mmap(). */
	struct zcopy_area *area = smp_load_acquire(&zf->pool);

	return area ? zcopy_pool(area) : NULL;
}

/*
 * One run of slots to re-arm, from slot @first at @addr; @mapped counts
 * the PTEs made, @stale says that one was found already there.
 */
struct zcopy_rearm_run {
	struct zcopy_pool	*pool;
	struct vm_area_struct	*vma;
	unsigned long		first;
	unsigned long		addr;
	pgprot_t		prot;
	unsigned long		mapped;
	bool			stale;
};

/*
 * apply_to_page_range()'s step, under the PTE lock: map one slot's page
 * writable, as vmf_insert_pfn_prot() would (a special PTE), unless the
 * page may have other readers or a PTE is there already: one the caller
 * made since by a read (read-only) is stale; one by a write is done.
 */
static int zcopy_pool_rearm_pte(pte_t *pte, unsigned long addr, void *data)
{
	struct zcopy_rearm_run *run = data;
	unsigned long idx = run->first + ((addr - run->addr) >> PAGE_SHIFT);
	struct zcopy_pool *pool = run->pool;
	unsigned long pfn = page_to_pfn(pool->slots[idx]);
	pte_t old = ptep_get(pte);

	if (zcopy_slot_shared(pool, idx))
		return 0;
	if (!pte_none(old)) {
		if (!pte_write(old) || pte_pfn(old) != pfn)
			run->stale = true;
		return 0;
	}
	set_pte_at(run->vma->vm_mm, addr, pte, pte_mkspecial(pfn_pte(pfn, run->prot)));
	update_mmu_cache(run->vma, addr, pte);
	run->mapped++;
	return 0;
}

/*
 * Map writable at @vma, a writable mapping of @pool, the slots to re-arm:
 * each run of them filled in one walk of the page tables, and, if the
 * caller has mapped some since (a read maps one read-only), zapped and
 * filled again.
 * Not through vmf_insert_pfn_prot() page by page: on x86 each would look
 * up the page's memory type (track_pfn_insert(), a walk of the iomem
 * resources), which for the pool's pages, RAM it allocated itself and
 * never changed, is write-back, as the VMA's protection already says; the
 * same reasoning as i915's remap_io_sg(). A page table that cannot be
 * allocated leaves the rest of its run to fault.
 */
static unsigned long zcopy_pool_rearm_vma(struct zcopy_pool *pool, struct vm_area_struct *vma)
{
	unsigned long start, idx, len, mapped;
	unsigned long end = min(vma_pages(vma), pool->area.nr_pages);
	struct zcopy_rearm_run run = {
		.pool = pool,
		.vma = vma,
		.prot = zcopy_pool_prot(vma, true),
	};

	lockdep_assert_held(&pool->lock);
	mmap_assert_locked(vma->vm_mm);
	for_each_set_bitrange(start, idx, pool->rearm, end) {
		run.first = start;
		run.addr = vma->vm_start + (start << PAGE_SHIFT);
		len = (idx - start) << PAGE_SHIFT;
		mapped = run.mapped;
		apply_to_page_range(vma->vm_mm, run.addr, len, zcopy_pool_rearm_pte, &run);
		if (!run.stale)
			continue;
		zap_vma_ptes(vma, run.addr, len);
		run.mapped = mapped;
		apply_to_page_range(vma->vm_mm, run.addr, len, zcopy_pool_rearm_pte, &run);
		run.stale = false;
	}
	return run.mapped;
}

/*
 * Map writable, where the caller last mapped the pool, the slots that
 * completed sends have let go of: the caller has just read their records
 * and will write to them next. One batch under one lock, in the caller's
 * own address space (zcopy_pool_rearm_vma()). A slot held again, or whose
 * page the stack still has, is left to fault as usual; so is every slot
 * for a caller with no writable mapping of the pool, which gives up the
 * batch all the same, so as not to look for its mapping again at each
 * read.
 */
void zcopy_pool_rearm(struct zcopy_file *zf)
{
	struct zcopy_pool *pool = zcopy_file_pool(zf);
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;

	if (!pool || !mm || bitmap_empty(pool->rearm, pool->area.nr_pages))
		return;

	mmap_read_lock(mm);
	/* Before the pool lock: finding it may walk every VMA of @mm. */
	vma = zcopy_area_vma(&pool->area, mm);
	mutex_lock(&pool->lock);
	if (vma && (vma->vm_flags & VM_WRITE))
		zcopy_count(zf, ZC_PAGES_REARMED, zcopy_pool_rearm_vma(pool, vma));
	bitmap_zero(pool->rearm, pool->area.nr_pages);
	mutex_unlock(&pool->lock);
	mmap_read_unlock(mm);
}

/* Pages [from, tx->nr_pages) of a send with a record: release their slots. */
static void zcopy_pool_tx_put(struct zcopy_tx *tx, unsigned int from, bool sent)
{
	struct zcopy_pool_tx *ptx = tx->priv;
	struct zcopy_pool *pool = ptx->pool;
	unsigned long idx;
	unsigned int i;

	mutex_lock(&pool->lock);
	for (i = from; i < tx->nr_pages; i++) {
		idx = ptx->slots[i];
		/* Unless a copy has taken the slot since: the page is the send's own. */
		if (pool->slots[idx] == tx->pages[i]) {
			pool->sending[idx]--;
			zcopy_pool_account(pool, idx, true);
			if (sent && !zcopy_slot_held(pool, idx))
				__set_bit(idx, pool->rearm);
		}
		/*
		 * Under the lock: a fault or a re-arm that finds the slot let
		 * go of must not find its page still taken (zcopy_slot_shared()).
		 */
		put_page(tx->pages[i]);
	}
	mutex_unlock(&pool->lock);
	tx->nr_pages = from;
}

static void zcopy_pool_tx_trim(struct zcopy_tx *tx, unsigned int keep)
{
	zcopy_pool_tx_put(tx, keep, false);
}

static void zcopy_pool_tx_release(struct zcopy_tx *tx, bool sent)
{
	zcopy_pool_tx_put(tx, 0, sent);
}

static const struct zcopy_tx_ops zcopy_pool_tx_ops = {
	.ledger		= &zcopy_send_ledger,
	.trim		= zcopy_pool_tx_trim,
	.release	= zcopy_pool_tx_release,
};

/*
 * Point @bvec at the pages of @segs, in order, each with a reference for
 * the send. With @slots, which gets the slot of each page, the send holds
 * them too: they are zapped from every page table first, so that a write
 * from now on faults and copies. A send that copies holds nothing: its
 * references keep the pages while sock_sendmsg() reads them, should a
 * write replace them meanwhile.
 */
static void zcopy_pool_take(struct zcopy_pool *pool, const struct zcopy_pool_seg *segs,
			    unsigned int nr_segs, unsigned long *slots, struct bio_vec *bvec)
{
	unsigned int s, e, i, n = 0, off;
	unsigned long idx, end;
	size_t len, seg;
	bool was;

	mutex_lock(&pool->lock);
	/* One zap, one TLB flush, for pieces that meet, as a ring's sends do. */
	for (s = 0; slots && s < nr_segs; s = e) {
		idx = segs[s].first;
		end = idx + segs[s].nr;
		for (e = s + 1; e < nr_segs && segs[e].first >= idx && segs[e].first <= end; e++)
			end = max(end, segs[e].first + segs[e].nr);
		zcopy_area_zap(&pool->area, idx, end - idx);
	}
	for (s = 0; s < nr_segs; s++) {
		off = segs[s].off;
		len = segs[s].len;
		for (i = 0; i < segs[s].nr; i++, n++, off = 0) {
			idx = segs[s].first + i;
			if (slots) {
				was = zcopy_slot_held(pool, idx);
				pool->sending[idx]++;
				zcopy_pool_account(pool, idx, was);
				__clear_bit(idx, pool->rearm);
				slots[n] = idx;
			}
			get_page(pool->slots[idx]);
			seg = min_t(size_t, len, PAGE_SIZE - off);
			bvec_set_page(&bvec[n], pool->slots[idx], seg, off);
			len -= seg;
		}
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
	if (vma && zcopy_area_owns(&pool->area, vma) && len <= vma->vm_end - addr) {
		*off = ((u64)(linear_page_index(vma, addr) - pool->area.pgoff) << PAGE_SHIFT) +
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
static int zcopy_pool_send_by_ref(struct zcopy_pool *pool, struct zcopy_tx_args *ta,
				  const struct zcopy_pool_seg *segs, unsigned int nr_segs,
				  unsigned int nr)
{
	unsigned long fast[ZCOPY_FAST_BVEC], *slots = fast, idx;
	struct bio_vec *bvec = ta->bvec;
	unsigned int i;
	size_t sent;
	int ret;

	if (nr > ZCOPY_FAST_BVEC) {
		slots = kvmalloc_array(nr, sizeof(*slots), GFP_KERNEL_ACCOUNT);
		if (!slots)
			return -ENOMEM;
	}
	zcopy_pool_take(pool, segs, nr_segs, slots, bvec);
	ret = zcopy_sendpages(ta->sock, bvec, nr, ta->len, zcopy_msg_flags(ta->sock, ta->flags));

	mutex_lock(&pool->lock);
	for (i = 0, sent = max(ret, 0); i < nr; i++) {
		idx = slots[i];
		if (pool->slots[idx] == bvec[i].bv_page) {
			pool->sending[idx]--;
			if (sent)
				__set_bit(idx, pool->given);
			zcopy_pool_account(pool, idx, true);
		}
		/* Under the lock, as in zcopy_pool_tx_put(). */
		put_page(bvec[i].bv_page);
		sent -= min_t(size_t, sent, bvec[i].bv_len);
	}
	mutex_unlock(&pool->lock);

	if (slots != fast)
		kvfree(slots);
	if (ret <= 0)
		return ret ?: -EAGAIN;
	ta->bytes = ret;
	ta->seq = ZCOPY_NO_SEQ;
	ta->offset = ZCOPY_NO_SEQ;
	return 0;
}

/* Send with a completion record, through the send core. */
static int zcopy_pool_send_record(struct zcopy_pool *pool, struct zcopy_tx_args *ta,
				  const struct zcopy_pool_seg *segs, unsigned int nr_segs,
				  unsigned int nr)
{
	struct zcopy_pool_tx *ptx;
	struct zcopy_tx *tx;
	unsigned int i;
	int ret;

	tx = zcopy_tx_alloc(pool->area.zf, nr, &zcopy_pool_tx_ops, struct_size(ptx, slots, nr),
			    true);
	if (IS_ERR(tx))
		return PTR_ERR(tx);
	ptx = tx->priv;
	ptx->pool = pool;
	zcopy_pool_take(pool, segs, nr_segs, ptx->slots, ta->bvec);
	for (i = 0; i < nr; i++)
		tx->pages[i] = ta->bvec[i].bv_page;
	tx->nr_pages = nr;
	ret = zcopy_tx_submit(tx, ta);
	return ret < 0 ? ret : 0;
}

/*
 * A send that zcopy_send_copies() copies, for the reason @why: its bytes
 * are copied; it holds nothing.
 */
static int zcopy_pool_send_copy(struct zcopy_pool *pool, struct zcopy_tx_args *ta,
				const struct zcopy_pool_seg *segs, unsigned int nr_segs,
				unsigned int nr, u32 why, bool record)
{
	struct zcopy_file *zf = pool->area.zf;
	struct iov_iter from;
	unsigned int i;
	int ret;

	zcopy_pool_take(pool, segs, nr_segs, NULL, ta->bvec);
	iov_iter_bvec(&from, ITER_SOURCE, ta->bvec, nr, ta->len);
	ret = zcopy_tx_copy(zf, &zcopy_send_ledger, ta, &from, why, record);
	for (i = 0; i < nr; i++)
		put_page(ta->bvec[i].bv_page);
	if (ret < 0)
		return ret;
	zcopy_count(zf, ZC_POOL_SEND_COPIED_BYTES, ret);
	return 0;
}

/* A pool send read from the user and checked, not made yet. */
struct zcopy_pool_req {
	struct zcopy_pool_send	args;
	struct socket		*sock;
	struct zcopy_pool_seg	seg;	/* the bytes one send takes */
	u32			copy;	/* why copied (zcopy_send_copies()), or 0 */
	bool			record;
};

/*
 * Send @nr_pages pages of @segs (one send's, or a batch's run of them, as
 * @ta says) by copying, with a record, or by reference: 0 with the
 * results in @ta, or an error with nothing sent.
 */
static int zcopy_pool_send_segs(struct zcopy_pool *pool, struct zcopy_tx_args *ta,
				const struct zcopy_pool_seg *segs, unsigned int nr_segs,
				unsigned int nr_pages, u32 copy, bool record)
{
	struct bio_vec fast[ZCOPY_FAST_BVEC];
	int ret;

	ta->bvec = zcopy_bvec_get(fast, nr_pages);
	if (!ta->bvec)
		return -ENOMEM;
	if (copy)
		ret = zcopy_pool_send_copy(pool, ta, segs, nr_segs, nr_pages, copy, record);
	else if (record)
		ret = zcopy_pool_send_record(pool, ta, segs, nr_segs, nr_pages);
	else
		ret = zcopy_pool_send_by_ref(pool, ta, segs, nr_segs, nr_pages);
	zcopy_bvec_put(ta->bvec, fast);
	return ret;
}

/* A send's results, adjacent in struct zcopy_pool_send: bytes, seq, stream_offset. */
static int zcopy_pool_put_results(struct zcopy_pool_send __user *uarg,
				  const struct zcopy_pool_send *args)
{
	size_t len = offsetofend(struct zcopy_pool_send, stream_offset) -
		     offsetof(struct zcopy_pool_send, bytes);

	if (!user_write_access_begin(&uarg->bytes, len))
		return -EFAULT;
	unsafe_put_user(args->bytes, &uarg->bytes, efault);
	unsafe_put_user(args->seq, &uarg->seq, efault);
	unsafe_put_user(args->stream_offset, &uarg->stream_offset, efault);
	user_write_access_end();
	return 0;

efault:
	user_write_access_end();
	return -EFAULT;
}

/*
 * Read the send at @uarg into @req and check it, for @pool (NULL: none
 * mapped yet); on success the caller puts req->sock. @first: not a
 * batch's later entry (zcopy_check_socket()).
 */
static int zcopy_pool_send_read(struct zcopy_pool *pool, struct zcopy_pool_send __user *uarg,
				struct zcopy_pool_req *req, bool first)
{
	struct zcopy_pool_send *args = &req->args;
	u64 off, size;
	size_t len;
	int ret;

	if (copy_from_user(args, uarg, sizeof(*args)))
		return -EFAULT;
	if (args->flags & ~ZCOPY_POOL_SEND_FLAGS ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)) || !args->len)
		return -EINVAL;
	if (!pool)
		return -ENXIO;
	/* The results go back here: fail now rather than after sending. */
	if (zcopy_pool_put_results(uarg, args))
		return -EFAULT;

	req->sock = zcopy_send_socket(args->sockfd, first);
	if (IS_ERR(req->sock))
		return PTR_ERR(req->sock);

	off = args->offset;
	if (args->flags & ZCOPY_POOL_SEND_ADDR) {
		ret = zcopy_pool_addr(pool, args->offset, args->len, &off);
		if (ret)
			goto err_put;
	}
	size = (u64)pool->area.nr_pages << PAGE_SHIFT;
	ret = -EINVAL;
	if (off >= size || args->len > size - off)
		goto err_put;

	len = zcopy_send_limit(offset_in_page(off), args->len);
	/* A datagram is sent whole or not at all. */
	ret = -EMSGSIZE;
	if (req->sock->type == SOCK_DGRAM && len < args->len)
		goto err_put;

	req->seg.first = off >> PAGE_SHIFT;
	req->seg.off = offset_in_page(off);
	req->seg.len = len;
	req->seg.nr = DIV_ROUND_UP(req->seg.off + len, PAGE_SIZE);
	/* UDP always has a record: nothing else says when a datagram has left. */
	req->record = (args->flags & ZCOPY_POOL_SEND_NOTIFY) ||
		      req->sock->sk->sk_protocol == IPPROTO_UDP;
	req->copy = zcopy_send_copies(req->sock, len, args->flags);
	/* Pages sent by reference are given for good: a probe may keep them too. */
	if (!req->record && req->copy == ZCOPY_COPIED_MTU_PROBING)
		req->copy = 0;
	return 0;

err_put:
	sockfd_put(req->sock);
	return ret;
}

/*
 * Make the send @req describes and write its results back to @uarg;
 * *@whole says whether it took every byte named.
 */
static int zcopy_pool_send(struct zcopy_pool *pool, struct zcopy_pool_req *req,
			   struct zcopy_pool_send __user *uarg, bool *whole)
{
	struct zcopy_tx_args ta = { .sock = req->sock, .len = req->seg.len,
				    .flags = req->args.flags & ZCOPY_SEND_FLAGS,
				    .cookie = req->args.cookie };
	struct zcopy_pool_send *args = &req->args;
	int ret;

	*whole = false;
	ret = zcopy_pool_send_segs(pool, &ta, &req->seg, 1, req->seg.nr, req->copy, req->record);
	if (ret)
		return ret;
	args->bytes = ta.bytes;
	args->seq = ta.seq;
	args->stream_offset = ta.offset;
	*whole = ta.bytes == args->len;
	zcopy_count(pool->area.zf, ZC_POOL_SENDS, 1);
	zcopy_count(pool->area.zf, ZC_POOL_SEND_BYTES, ta.bytes);
	return zcopy_pool_put_results(uarg, args);
}

long zcopy_ioctl_pool_send(struct zcopy_file *zf, struct zcopy_pool_send __user *uarg)
{
	struct zcopy_pool *pool = zcopy_file_pool(zf);
	struct zcopy_pool_req req;
	bool whole;
	int ret;

	ret = zcopy_pool_send_read(pool, uarg, &req, true);
	if (ret)
		return ret;
	ret = zcopy_pool_send(pool, &req, uarg, &whole);
	sockfd_put(req.sock);
	return ret;
}

/* A run of a batch's pool sends, all copied or none: see ZCOPY_RUN_BYTES. */
struct zcopy_pool_run {
	struct socket		*sock;		/* a reference, while @nr */
	u32			flags;		/* ZCOPY_SEND_* and NOTIFY */
	u32			copy;		/* as zcopy_pool_req.copy */
	bool			record;
	u32			first;		/* the batch entry of the first send */
	unsigned int		nr;
	unsigned int		nr_pages;
	size_t			len;
	u64			cookie;		/* the first send's */
	u32			lens[ZCOPY_RUN_SENDS];
	struct zcopy_pool_seg	segs[ZCOPY_RUN_SENDS];
};

/* The flags that a run's sends share; where each names its bytes is its own. */
static u32 zcopy_pool_run_flags(const struct zcopy_pool_req *req)
{
	return req->args.flags & ~ZCOPY_POOL_SEND_ADDR;
}

/* Whether @req is a send that a run can take: whole, on a stream. */
static bool zcopy_pool_send_runs(const struct zcopy_pool_req *req)
{
	return req->sock->type == SOCK_STREAM && req->seg.len == req->args.len &&
	       req->seg.len <= ZCOPY_RUN_BYTES && req->seg.nr <= ZCOPY_RUN_VECS;
}

/* Whether @req can join @run, which has sends; a full run takes none. */
static bool zcopy_pool_run_takes(const struct zcopy_pool_run *run,
				 const struct zcopy_pool_req *req)
{
	return zcopy_pool_send_runs(req) && req->sock == run->sock &&
	       zcopy_pool_run_flags(req) == run->flags && req->copy == run->copy &&
	       req->record == run->record && run->nr < ZCOPY_RUN_SENDS &&
	       run->nr_pages + req->seg.nr <= ZCOPY_RUN_VECS &&
	       run->len + req->seg.len <= ZCOPY_RUN_BYTES;
}

/* Add the send @req, batch entry @index, to @run; it takes @req's socket. */
static void zcopy_pool_run_add(struct zcopy_pool_run *run, struct zcopy_pool_req *req,
			       u32 index)
{
	if (!run->nr) {
		run->sock = req->sock;
		run->flags = zcopy_pool_run_flags(req);
		run->copy = req->copy;
		run->record = req->record;
		run->first = index;
		run->nr_pages = 0;
		run->len = 0;
		run->cookie = req->args.cookie;
	} else {
		sockfd_put(req->sock);
	}
	req->sock = NULL;
	run->segs[run->nr] = req->seg;
	run->lens[run->nr++] = req->seg.len;
	run->nr_pages += req->seg.nr;
	run->len += req->seg.len;
}

/*
 * Send @run and write each send's results back to its entry of @sends:
 * *@done moves past the sends made, and *@whole says whether all of them
 * were made whole. The run is empty after.
 */
static int zcopy_pool_run_flush(struct zcopy_pool *pool, struct zcopy_pool_run *run,
				struct zcopy_pool_send __user *sends, u32 *done, bool *whole)
{
	struct zcopy_tx_args ta = { .sock = run->sock, .len = run->len, .lens = run->lens,
				    .nr_sends = run->nr, .flags = run->flags & ZCOPY_SEND_FLAGS,
				    .cookie = run->cookie };
	struct zcopy_file *zf = pool->area.zf;
	struct zcopy_pool_send res;
	unsigned int i;
	size_t bytes;
	int ret;

	*whole = false;
	ret = zcopy_pool_send_segs(pool, &ta, run->segs, run->nr, run->nr_pages, run->copy,
				   run->record);
	if (ret)
		goto out;
	res.seq = ta.seq;
	res.stream_offset = ta.offset;
	for (i = 0, bytes = ta.bytes; i < run->nr && bytes; i++) {
		res.bytes = min_t(size_t, bytes, run->lens[i]);
		bytes -= res.bytes;
		if (!ret) {
			ret = zcopy_pool_put_results(&sends[run->first + i], &res);
			if (!ret)
				*done = run->first + i + 1;
		}
		if (res.seq != ZCOPY_NO_SEQ) {
			res.seq++;
			res.stream_offset += res.bytes;
		}
	}
	zcopy_count(zf, ZC_POOL_SENDS, i);
	zcopy_count(zf, ZC_POOL_SEND_BYTES, ta.bytes);
	*whole = !ret && ta.bytes == run->len;
out:
	sockfd_put(run->sock);
	run->nr = 0;
	return ret;
}

/*
 * Pool sends in order until one fails or is short, as sendmmsg(2): an
 * error only when nothing was sent, else the count made (a short one
 * counts). Sends in a row to one socket go as one: see ZCOPY_RUN_BYTES.
 */
long zcopy_ioctl_pool_send_batch(struct zcopy_file *zf, struct zcopy_send_batch __user *uarg)
{
	struct zcopy_pool *pool = zcopy_file_pool(zf);
	struct zcopy_pool_send __user *sends;
	struct zcopy_pool_run *run = NULL;
	struct zcopy_send_batch args;
	struct zcopy_pool_req req;
	bool whole = true;
	u32 i, done = 0;
	int ret;

	ret = zcopy_batch_read(uarg, &args);
	if (ret)
		return ret;

	sends = u64_to_user_ptr(args.sends);
	for (i = 0; i < args.count && whole; i++) {
		ret = zcopy_pool_send_read(pool, &sends[i], &req, !i);
		if (ret)
			break;
		if (run && run->nr && !zcopy_pool_run_takes(run, &req)) {
			ret = zcopy_pool_run_flush(pool, run, sends, &done, &whole);
			if (ret || !whole) {
				sockfd_put(req.sock);
				break;
			}
		}
		/* An empty run; without memory for one, each send goes alone. */
		if (!run && args.count > 1 && zcopy_pool_send_runs(&req))
			run = kzalloc(sizeof(*run), GFP_KERNEL);
		if (run && zcopy_pool_send_runs(&req)) {
			zcopy_pool_run_add(run, &req, i);
			cond_resched();
			continue;
		}
		ret = zcopy_pool_send(pool, &req, &sends[i], &whole);
		sockfd_put(req.sock);
		if (ret)
			break;
		done = i + 1;
		cond_resched();
	}
	/* The sends before a failing one go; the batch fails as its first send. */
	if (run && run->nr) {
		int err = zcopy_pool_run_flush(pool, run, sends, &done, &whole);

		if (err)
			ret = err;
	}
	kfree(run);
	return zcopy_batch_done(uarg, done, ret);
}

static const struct vm_operations_struct zcopy_pool_vm_ops = {
	.fault		= zcopy_pool_fault,
	.pfn_mkwrite	= zcopy_pool_pfn_mkwrite,
	.access		= zcopy_pool_access,
	.mremap		= zcopy_pool_mremap,
	.may_split	= zcopy_area_may_split,
};

static const struct zcopy_area_ops zcopy_pool_area_ops = {
	.vm_ops	= &zcopy_pool_vm_ops,
	.free	= zcopy_pool_free,
};
