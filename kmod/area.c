// SPDX-License-Identifier: GPL-2.0
/*
 * Pages of ours mapped into user space: what a send pool and a receive
 * area share. An area is created by the first mmap() at its offset, lives
 * as long as its file, is charged to RLIMIT_MEMLOCK like locked memory,
 * and is known in its file's address_space by its mmap offset.
 */

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>

#include "zcopy.h"

/*
 * Charge @nr pages to the caller's RLIMIT_MEMLOCK, exactly: as
 * mm_account_pinned_pages() does for MSG_ZEROCOPY, skipped likewise with
 * CAP_IPC_LOCK, but without its slack of two pages for unaligned buffers:
 * an area is whole pages, and a registered buffer or a send is charged the
 * pages it pins. EAGAIN over the limit; mm_unaccount_pinned_pages() takes
 * it back.
 */
int zcopy_account_pages(struct mmpin *mmp, unsigned long nr)
{
	unsigned long limit, old, new;
	struct user_struct *user;

	if (!nr || capable(CAP_IPC_LOCK))
		return 0;
	limit = rlimit(RLIMIT_MEMLOCK);
	if (limit == RLIM_INFINITY)
		return 0;
	limit >>= PAGE_SHIFT;

	user = current_user();
	old = atomic_long_read(&user->locked_vm);
	do {
		new = old + nr;
		if (new > limit)
			return -EAGAIN;
	} while (!atomic_long_try_cmpxchg(&user->locked_vm, &old, new));

	mmp->user = get_uid(user);
	mmp->num_pg = nr;
	return 0;
}

/* Set up @area, of @nr pages at mmap offset @pgoff; EAGAIN over RLIMIT_MEMLOCK, as mmap(2). */
int zcopy_area_init(struct zcopy_area *area, struct zcopy_file *zf,
		    const struct zcopy_area_ops *ops, pgoff_t pgoff, unsigned long nr)
{
	area->ops = ops;
	area->zf = zf;
	area->mapping = zf->inode->i_mapping;
	area->pgoff = pgoff;
	area->nr_pages = nr;
	return zcopy_account_pages(&area->mmp, nr);
}

void zcopy_area_destroy(struct zcopy_area *area)
{
	mm_unaccount_pinned_pages(&area->mmp);
}

/*
 * Map @vma, an mmap() at @area_pgoff of @zf, to the file's area of that
 * kind in *@slot: created by @create on the first mmap, then checked and
 * set up by @attach, both under the file's areas_lock.
 */
int zcopy_area_mmap(struct zcopy_file *zf, struct zcopy_area **slot,
		    struct vm_area_struct *vma,
		    struct zcopy_area *(*create)(struct zcopy_file *zf, unsigned long nr),
		    int (*attach)(struct zcopy_area *area, struct vm_area_struct *vma))
{
	struct zcopy_area *area;
	int ret;

	mutex_lock(&zf->areas_lock);
	area = *slot;
	if (!area) {
		area = create(zf, vma_pages(vma));
		if (IS_ERR(area)) {
			ret = PTR_ERR(area);
			goto out_unlock;
		}
		/* Pairs with smp_load_acquire() where the ioctls look it up. */
		smp_store_release(slot, area);
	}
	ret = attach(area, vma);
	if (ret)
		goto out_unlock;
	vma->vm_private_data = area;
	vma->vm_ops = area->ops->vm_ops;
	WRITE_ONCE(area->uaddr, vma->vm_start);
out_unlock:
	mutex_unlock(&zf->areas_lock);
	return ret;
}

/*
 * An area's mapping is used whole: a piece would be one that the lookups
 * below, which look for the whole, do not find (a send by address, the
 * pool's re-arming, a receive).
 */
int zcopy_area_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	return -EINVAL;
}

/* Does @vma map @area, whole, from its first page? */
bool zcopy_area_owns(struct zcopy_area *area, struct vm_area_struct *vma)
{
	return vma->vm_ops == area->ops->vm_ops && vma->vm_private_data == area &&
	       vma->vm_pgoff == area->pgoff;
}

/*
 * The mapping of @area in @mm: where it was last mapped, or else the first
 * in @mm (the last mapping may be another process's, one that shares the
 * area since fork() and moved its copy); NULL if none. The caller holds
 * @mm's mmap_lock.
 */
struct vm_area_struct *zcopy_area_vma(struct zcopy_area *area, struct mm_struct *mm)
{
	unsigned long uaddr = READ_ONCE(area->uaddr);
	struct vm_area_struct *vma = vma_lookup(mm, uaddr);

	if (vma && vma->vm_start == uaddr && zcopy_area_owns(area, vma))
		return vma;
	for (vma = find_vma(mm, 0); vma; vma = find_vma(mm, vma->vm_end)) {
		if (zcopy_area_owns(area, vma)) {
			WRITE_ONCE(area->uaddr, vma->vm_start);
			return vma;
		}
	}
	return NULL;
}

/* Remove pages [idx, idx + nr) of @area from every page table that maps them. */
void zcopy_area_zap(struct zcopy_area *area, unsigned long idx, unsigned long nr)
{
	unmap_mapping_range(area->mapping, (loff_t)(area->pgoff + idx) << PAGE_SHIFT,
			    (loff_t)nr << PAGE_SHIFT, 1);
}
