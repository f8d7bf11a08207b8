// SPDX-License-Identifier: GPL-2.0
/*
 * zcopy: zero-copy socket I/O through /dev/zcopy.
 *
 * The character device's file operations and ioctl dispatch, and the
 * order in which the module comes up and goes down. The work is done in
 * send.c (with its page sources pin.c and pool.c), receive.c, records.c
 * and ledger.c.
 */

#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/uaccess.h>

#include "zcopy.h"

static int zcopy_open(struct inode *inode, struct file *file)
{
	struct zcopy_file *zf = zcopy_file_alloc();

	if (IS_ERR(zf))
		return PTR_ERR(zf);
	/* The file's mappings go in an address_space of its own. */
	file->f_mapping = zf->inode->i_mapping;
	file->private_data = zf;
	return 0;
}

/* Sends still in flight keep the file's state until they complete. */
static int zcopy_release(struct inode *inode, struct file *file)
{
	struct zcopy_file *zf = file->private_data;

	zcopy_count(zf, ZC_RECORDS_QUEUED, -zcopy_records_close(&zf->records));
	zcopy_fixed_close(zf);
	zcopy_file_put(zf);
	return 0;
}

static ssize_t zcopy_read(struct file *file, char __user *buf, size_t count,
			  loff_t *ppos)
{
	struct zcopy_file *zf = file->private_data;
	ssize_t ret;

	ret = zcopy_records_read(&zf->records, buf, count, file->f_flags & O_NONBLOCK);
	if (ret <= 0)
		return ret;
	zcopy_count(zf, ZC_RECORDS_QUEUED, -(ret / (ssize_t)sizeof(struct zcopy_completion)));
	/* The reader writes next to the pool buffers the records gave back. */
	zcopy_pool_rearm(zf);
	return ret;
}

static __poll_t zcopy_poll(struct file *file, poll_table *wait)
{
	struct zcopy_file *zf = file->private_data;

	return zcopy_records_poll(&zf->records, file, wait);
}

static int zcopy_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct zcopy_file *zf = file->private_data;

	switch ((u64)vma->vm_pgoff << PAGE_SHIFT) {
	case ZCOPY_MMAP_POOL:
		return zcopy_pool_mmap(zf, vma);
	case ZCOPY_MMAP_RECV:
		return zcopy_rx_mmap(zf, vma);
	}
	return -EINVAL;
}

static long zcopy_ioctl_info(struct zcopy_file *zf, struct zcopy_info __user *uarg)
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

/*
 * ZCOPY_IOC_STATS of ABI 1's first headers: the same structure up to
 * rx_slots_used, then 7 reserved words, which are counters now.
 */
#define ZCOPY_STATS_V1_END	offsetofend(struct zcopy_stats, rx_slots_used)
#define ZCOPY_STATS_V1_SIZE	(ZCOPY_STATS_V1_END + 7 * sizeof(__u64))
#define ZCOPY_IOC_STATS_V1	_IOC(_IOC_READ | _IOC_WRITE, ZCOPY_IOC_MAGIC, \
				     _IOC_NR(ZCOPY_IOC_STATS), ZCOPY_STATS_V1_SIZE)

/* The ledger into the first @size bytes of a struct zcopy_stats at @uarg. */
static long zcopy_ioctl_stats(struct zcopy_file *zf, void __user *uarg, size_t size)
{
	struct zcopy_stats st;
	bool v1 = size == ZCOPY_STATS_V1_SIZE;
	/* The words that are reserved for this caller. */
	u8 *rsv = v1 ? (u8 *)&st + ZCOPY_STATS_V1_END : (u8 *)st.reserved;
	size_t rsv_len = v1 ? size - ZCOPY_STATS_V1_END : sizeof(st.reserved);
	u32 flags;

	BUILD_BUG_ON(ZCOPY_STATS_V1_SIZE != 264);
	if (copy_from_user(&st, uarg, size))
		return -EFAULT;
	if (st.flags & ~ZCOPY_STATS_MODULE || st.__pad || memchr_inv(rsv, 0, rsv_len))
		return -EINVAL;

	flags = st.flags;
	memset(&st, 0, sizeof(st));
	st.flags = flags;
	zcopy_ledger_read(flags & ZCOPY_STATS_MODULE ? &zcopy_totals : &zf->ledger, &st);
	memset(rsv, 0, rsv_len);

	if (copy_to_user(uarg, &st, size))
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
	case ZCOPY_IOC_STATS_V1:
		return zcopy_ioctl_stats(zf, uarg, _IOC_SIZE(cmd));
	case ZCOPY_IOC_POOL_SEND:
		return zcopy_ioctl_pool_send(zf, uarg);
	case ZCOPY_IOC_RECV:
		return zcopy_ioctl_recv(zf, uarg);
	case ZCOPY_IOC_RELEASE:
		return zcopy_ioctl_release(zf, uarg);
	case ZCOPY_IOC_FORWARD:
		return zcopy_ioctl_forward(zf, uarg);
	case ZCOPY_IOC_REGISTER:
		return zcopy_ioctl_register(zf, uarg);
	case ZCOPY_IOC_UNREGISTER:
		return zcopy_ioctl_unregister(zf, uarg);
	case ZCOPY_IOC_SEND_BATCH:
		return zcopy_ioctl_send_batch(zf, uarg);
	case ZCOPY_IOC_POOL_SEND_BATCH:
		return zcopy_ioctl_pool_send_batch(zf, uarg);
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
 * Who may open the device is the administrator's choice, made by a udev rule
 * (the package's gives 0666, as anyone may use MSG_ZEROCOPY). Any caller is
 * safe: it sends only on sockets it holds and pins only its own memory.
 * Every page pinned for it, and every page of its pool and receive area,
 * is charged to its user's RLIMIT_MEMLOCK (CAP_IPC_LOCK exempt); those and
 * the rest it makes the module allocate (records, a pool page's copy
 * made by a write while the page is held) to its memory cgroup.
 */
static struct miscdevice zcopy_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "zcopy",
	.fops	= &zcopy_fops,
};

static int __init zcopy_init(void)
{
	int ret;

	ret = zcopy_ledger_init(&zcopy_totals, GFP_KERNEL);
	if (ret)
		return ret;
	ret = zcopy_file_init();
	if (ret)
		goto err_ledger;
	ret = zcopy_send_init();
	if (ret)
		goto err_file;
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
	zcopy_send_exit();
err_file:
	zcopy_file_exit();
err_ledger:
	zcopy_ledger_destroy(&zcopy_totals);
	return ret;
}

/*
 * Every open file and every send in flight holds a module reference, so
 * nothing is in flight here; zcopy_send_exit() waits for the stack's last
 * completion callbacks to return.
 */
static void __exit zcopy_exit(void)
{
	misc_deregister(&zcopy_misc);
	zcopy_debugfs_exit();
	zcopy_send_exit();
	zcopy_file_exit();
	zcopy_ledger_destroy(&zcopy_totals);
}

module_init(zcopy_init);
module_exit(zcopy_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Zero-copy socket I/O from and into user pages");
MODULE_AUTHOR("The zcopy authors");
