// SPDX-License-Identifier: GPL-2.0
/*
 * zcopy: zero-copy socket I/O through /dev/zcopy.
 *
 * The character device: open/release of per-file state and the ioctl
 * dispatcher. The data paths live in their own files.
 */

#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <linux/zcopy.h>

#include "zcopy.h"

static int zcopy_open(struct inode *inode, struct file *file)
{
	struct zcopy_file *zf;

	zf = kzalloc(sizeof(*zf), GFP_KERNEL_ACCOUNT);
	if (!zf)
		return -ENOMEM;

	file->private_data = zf;
	return 0;
}

static int zcopy_release(struct inode *inode, struct file *file)
{
	struct zcopy_file *zf = file->private_data;

	kfree(zf);
	return 0;
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

static long zcopy_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct zcopy_file *zf = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case ZCOPY_IOC_INFO:
		return zcopy_ioctl_info(zf, uarg);
	}
	return -ENOTTY;
}

static const struct file_operations zcopy_fops = {
	.owner		= THIS_MODULE,
	.open		= zcopy_open,
	.release	= zcopy_release,
	.unlocked_ioctl	= zcopy_ioctl,
	/* Every argument is a pointer to a layout-identical structure. */
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice zcopy_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "zcopy",
	.fops	= &zcopy_fops,
};

static int __init zcopy_init(void)
{
	int ret;

	ret = misc_register(&zcopy_misc);
	if (ret) {
		pr_err("cannot register /dev/zcopy: %d\n", ret);
		return ret;
	}
	pr_info("ABI %u ready on /dev/zcopy\n", ZCOPY_ABI_VERSION);
	return 0;
}

static void __exit zcopy_exit(void)
{
	misc_deregister(&zcopy_misc);
}

module_init(zcopy_init);
module_exit(zcopy_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Zero-copy socket I/O from and into user pages");
MODULE_AUTHOR("The zcopy authors");
