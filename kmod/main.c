// SPDX-License-Identifier: GPL-2.0
/*
 * zcopy: zero-copy socket I/O through /dev/zcopy.
 *
 * The character device: per-file state, the ioctl dispatcher, and read(2)
 * and poll(2) of completion records. The data paths live in their own files.
 */

#include <linux/capability.h>
#include <linux/compat.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/kernel.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "zcopy.h"

/*
 * Every opener of /dev/zcopy shares the device inode's address_space, so
 * each pool and receive area gets a range of file offsets of its own, and
 * zapping one never touches another: 1 << 24 pages each, ids kept small
 * enough for every byte offset to fit in loff_t. Range 0 stays unused: it
 * holds the offsets that user space passes to mmap().
 */
#define ZCOPY_RANGE_SHIFT	24
#define ZCOPY_RANGE_MAX		((1U << 26) - 1)

static DEFINE_IDA(zcopy_ranges);

int zcopy_offsets_get(pgoff_t *pgoff)
{
	int id = ida_alloc_range(&zcopy_ranges, 1, ZCOPY_RANGE_MAX, GFP_KERNEL);

	if (id < 0)
		return id;
	*pgoff = (pgoff_t)id << ZCOPY_RANGE_SHIFT;
	return 0;
}

void zcopy_offsets_put(pgoff_t pgoff)
{
	ida_free(&zcopy_ranges, pgoff >> ZCOPY_RANGE_SHIFT);
}

/*
 * Charge @nr pages to the caller's RLIMIT_MEMLOCK, exactly: as
 * mm_account_pinned_pages() does for MSG_ZEROCOPY, skipped likewise with
 * CAP_IPC_LOCK, but without its slack of two pages for unaligned buffers,
 * which a pool or a receive area never is. mm_unaccount_pinned_pages()
 * takes the charge back.
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
			return -ENOBUFS;
	} while (!atomic_long_try_cmpxchg(&user->locked_vm, &old, new));

	mmp->user = get_uid(user);
	mmp->num_pg = nr;
	return 0;
}

static void zcopy_file_free(struct kref *ref)
{
	struct zcopy_file *zf = container_of(ref, struct zcopy_file, ref);

	WARN_ON_ONCE(!list_empty(&zf->records));
	if (zf->pool)
		zcopy_pool_free(zf->pool);
	if (zf->rx)
		zcopy_rx_free(zf->rx);
	kfree(zf);
}

void zcopy_file_put(struct zcopy_file *zf)
{
	kref_put(&zf->ref, zcopy_file_free);
}

static int zcopy_open(struct inode *inode, struct file *file)
{
	struct zcopy_file *zf;

	zf = kzalloc(sizeof(*zf), GFP_KERNEL_ACCOUNT);
	if (!zf)
		return -ENOMEM;

	kref_init(&zf->ref);
	spin_lock_init(&zf->lock);
	INIT_LIST_HEAD(&zf->records);
	init_waitqueue_head(&zf->wait);
	mutex_init(&zf->pool_lock);
	file->private_data = zf;
	return 0;
}

/* Sends still in flight keep @zf until they complete. */
static int zcopy_release(struct inode *inode, struct file *file)
{
	struct zcopy_file *zf = file->private_data;

	zcopy_free_records(zf);
	zcopy_file_put(zf);
	return 0;
}

static ssize_t zcopy_read(struct file *file, char __user *buf, size_t count,
			  loff_t *ppos)
{
	struct zcopy_file *zf = file->private_data;
	/* Pairs with smp_store_release() in zcopy_pool_mmap(). */
	struct zcopy_pool *pool = smp_load_acquire(&zf->pool);
	ssize_t ret;

	ret = zcopy_read_records(zf, buf, count, file->f_flags & O_NONBLOCK);
	/* The reader writes next to the buffers the records gave back. */
	if (ret > 0 && pool)
		zcopy_pool_rearm(pool);
	return ret;
}

static __poll_t zcopy_poll(struct file *file, poll_table *wait)
{
	struct zcopy_file *zf = file->private_data;

	poll_wait(file, &zf->wait, wait);
	return list_empty_careful(&zf->records) ? 0 : EPOLLIN | EPOLLRDNORM;
}

static int zcopy_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct zcopy_file *zf = file->private_data;

	switch ((u64)vma->vm_pgoff << PAGE_SHIFT) {
	case ZCOPY_MMAP_POOL:
		return zcopy_pool_mmap(zf, file, vma);
	case ZCOPY_MMAP_RECV:
		return zcopy_rx_mmap(zf, file, vma);
	}
	return -EINVAL;
}

static long zcopy_ioctl_info(struct zcopy_file *zf, void __user *uarg)
{
	struct zcopy_info info;

	if (copy_from_user(&info, uarg, sizeof(info)))
		return -EFAULT;
	if (info.flags || info.__pad ||
	    memchr_inv(info.reserved, 0, sizeof(info.reserved)))
		return -EINVAL;

	info.abi_version = ZCOPY_ABI_VERSION;
	info.page_size = PAGE_SIZE;
	info.features = ZCOPY_FEATURES;

	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long zcopy_ioctl_stats(struct zcopy_file *zf, void __user *uarg)
{
	struct zcopy_stats st;
	u32 flags;

	if (copy_from_user(&st, uarg, sizeof(st)))
		return -EFAULT;
	if (st.flags & ~ZCOPY_STATS_MODULE || st.__pad ||
	    memchr_inv(st.reserved, 0, sizeof(st.reserved)))
		return -EINVAL;

	flags = st.flags;
	memset(&st, 0, sizeof(st));
	st.flags = flags;
	zcopy_ledger_read(flags & ZCOPY_STATS_MODULE ? &zcopy_totals : &zf->ledger, &st);

	if (copy_to_user(uarg, &st, sizeof(st)))
		return -EFAULT;
	return 0;
}

static long zcopy_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct zcopy_file *zf = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case ZCOPY_IOC_INFO:
		return zcopy_ioctl_info(zf, uarg);
	case ZCOPY_IOC_SEND:
		return zcopy_ioctl_send(zf, uarg);
	case ZCOPY_IOC_STATS:
		return zcopy_ioctl_stats(zf, uarg);
	case ZCOPY_IOC_POOL_SEND:
		return zcopy_ioctl_pool_send(zf, uarg);
	case ZCOPY_IOC_RECV:
		return zcopy_ioctl_recv(zf, uarg);
	case ZCOPY_IOC_RELEASE:
		return zcopy_ioctl_release(zf, uarg);
	}
	return -ENOTTY;
}

static const struct file_operations zcopy_fops = {
	.owner		= THIS_MODULE,
	.open		= zcopy_open,
	.release	= zcopy_release,
	.read		= zcopy_read,
	.poll		= zcopy_poll,
	.mmap		= zcopy_mmap,
	.unlocked_ioctl	= zcopy_ioctl,
	/* Every argument is a pointer to a layout-identical structure. */
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

/*
 * Anyone may open the device, as anyone may use MSG_ZEROCOPY: a caller sends
 * only on sockets it holds and pins only its own memory, and every page held
 * for it is charged to its user's RLIMIT_MEMLOCK (CAP_IPC_LOCK exempt).
 */
static struct miscdevice zcopy_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "zcopy",
	.fops	= &zcopy_fops,
	.mode	= 0666,
};

static int __init zcopy_init(void)
{
	int ret;

	ret = zcopy_tx_init();
	if (ret)
		return ret;
	zcopy_debugfs_init();

	ret = misc_register(&zcopy_misc);
	if (ret) {
		pr_err("cannot register /dev/zcopy: %d\n", ret);
		goto err_debugfs;
	}
	pr_info("ABI %u ready on /dev/zcopy\n", ZCOPY_ABI_VERSION);
	return 0;

err_debugfs:
	zcopy_debugfs_exit();
	zcopy_tx_exit();
	return ret;
}

/*
 * Every open file and every send in flight holds a module reference, so
 * nothing is in flight here; zcopy_tx_exit() waits for the stack's last
 * completion callbacks to return.
 */
static void __exit zcopy_exit(void)
{
	misc_deregister(&zcopy_misc);
	zcopy_debugfs_exit();
	zcopy_tx_exit();
}

module_init(zcopy_init);
module_exit(zcopy_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Zero-copy socket I/O from and into user pages");
MODULE_AUTHOR("The zcopy authors");
