// SPDX-License-Identifier: GPL-2.0
/*
 * The state of one open /dev/zcopy, which lives as long as the open file
 * and every send in flight from it.
 *
 * Each open file gets an anonymous inode of its own, on a pseudo
 * filesystem of the module's (as DRM gives each device one), and its
 * f_mapping is that inode's address_space: the file's mappings are the
 * only ones in it, so zapping a pool page walks the file's own mappings
 * and no one else's.
 */

#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "zcopy.h"

static unsigned int max_fd_pages = 65536;
module_param(max_fd_pages, uint, 0644);
MODULE_PARM_DESC(max_fd_pages,
		 "Most pages pinned at once for one open zcopy file (default 65536)");

#define ZCOPY_FS_MAGIC	0x7a636f70	/* "zcop" */

static struct vfsmount *zcopy_mnt;

static int zcopy_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, ZCOPY_FS_MAGIC) ? 0 : -ENOMEM;
}

/*
 * Mounted by the module itself, from init to exit, and never registered:
 * with an owner, the mount would hold the module for good. Its inodes
 * live no longer than the files and sends that hold the module.
 */
static struct file_system_type zcopy_fs_type = {
	.name			= "zcopy",
	.init_fs_context	= zcopy_init_fs_context,
	.kill_sb		= kill_anon_super,
};

static void zcopy_file_put_work(struct work_struct *work)
{
	zcopy_file_put(container_of(work, struct zcopy_file, put_work));
}

struct zcopy_file *zcopy_file_alloc(void)
{
	struct zcopy_file *zf;
	int ret;

	zf = kzalloc(sizeof(*zf), GFP_KERNEL_ACCOUNT);
	if (!zf)
		return ERR_PTR(-ENOMEM);
	ret = zcopy_ledger_init(&zf->ledger, GFP_KERNEL_ACCOUNT);
	if (ret)
		goto err_free_zf;
	zf->inode = alloc_anon_inode(zcopy_mnt->mnt_sb);
	if (IS_ERR(zf->inode)) {
		ret = PTR_ERR(zf->inode);
		goto err_destroy_ledger;
	}
	kref_init(&zf->ref);
	INIT_WORK(&zf->put_work, zcopy_file_put_work);
	zcopy_records_init(&zf->records);
	mutex_init(&zf->areas_lock);
	xa_init_flags(&zf->fixed, XA_FLAGS_ALLOC);
	return zf;

err_destroy_ledger:
	zcopy_ledger_destroy(&zf->ledger);
err_free_zf:
	kfree(zf);
	return ERR_PTR(ret);
}

/* Pin @nr_pages more for @zf, within max_fd_pages, or ENOBUFS. */
int zcopy_file_charge(struct zcopy_file *zf, unsigned long nr_pages)
{
	if (atomic_long_add_return(nr_pages, &zf->pinned) > READ_ONCE(max_fd_pages)) {
		atomic_long_sub(nr_pages, &zf->pinned);
		return -ENOBUFS;
	}
	return 0;
}

void zcopy_file_uncharge(struct zcopy_file *zf, unsigned long nr_pages)
{
	atomic_long_sub(nr_pages, &zf->pinned);
}

static void zcopy_file_free(struct kref *ref)
{
	struct zcopy_file *zf = container_of(ref, struct zcopy_file, ref);

	WARN_ON_ONCE(!list_empty(&zf->records.list));
	WARN_ON_ONCE(!xa_empty(&zf->fixed));
	if (zf->pool)
		zf->pool->ops->free(zf->pool);
	if (zf->rx)
		zf->rx->ops->free(zf->rx);
	iput(zf->inode);
	zcopy_ledger_destroy(&zf->ledger);
	kfree(zf);
}

void zcopy_file_put(struct zcopy_file *zf)
{
	kref_put(&zf->ref, zcopy_file_free);
}

/*
 * Drop a reference to @zf with bottom halves off, where the file cannot be
 * freed: the last is dropped from @wq, which the caller drains before the
 * module goes. No one takes a reference once the count is down to ours, so
 * only we can queue the work.
 */
void zcopy_file_put_atomic(struct zcopy_file *zf, struct workqueue_struct *wq)
{
	if (refcount_dec_not_one(&zf->ref.refcount))
		return;
	queue_work(wq, &zf->put_work);
}

int zcopy_file_init(void)
{
	zcopy_mnt = kern_mount(&zcopy_fs_type);
	return PTR_ERR_OR_ZERO(zcopy_mnt);
}

void zcopy_file_exit(void)
{
	kern_unmount(zcopy_mnt);
}
