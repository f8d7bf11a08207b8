// SPDX-License-Identifier: GPL-2.0
/*
 * zcopy_testmod: for the selftests only, as bpf_testmod is for BPF's.
 *
 * Holds up returns from one function of zcopy.ko or the kernel with a
 * kretprobe, busy waiting, so that a race whose window is a few
 * instructions wide opens for long enough that a test of it fails every
 * time on code that has the race, not once in many runs; or makes them
 * fail, so that a test reaches an error path that the VM cannot make
 * happen otherwise. The test arms it for as many returns as it wants, in
 * one process or any, and reads how many were caught, to know that its
 * thread got there.
 */

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/sysfs.h>

static char *symbol = "zcopy_pool_pfn_mkwrite";
module_param(symbol, charp, 0444);
MODULE_PARM_DESC(symbol, "The function whose returns are caught");

static char *caller;
module_param(caller, charp, 0444);
MODULE_PARM_DESC(caller, "If set, only returns into this function are caught");

static unsigned int delay_ms = 500;
module_param(delay_ms, uint, 0644);
MODULE_PARM_DESC(delay_ms, "How long each return is held up, in ms");

static int retval;
module_param(retval, int, 0644);
MODULE_PARM_DESC(retval, "If not 0, what each return caught returns instead (an -errno)");

static int tgid;
module_param(tgid, int, 0644);
MODULE_PARM_DESC(tgid, "If not 0, only returns in this process are caught");

static atomic_t zcopy_testmod_armed = ATOMIC_INIT(0);
static atomic_t zcopy_testmod_held = ATOMIC_INIT(0);

static int zcopy_testmod_armed_set(const char *val, const struct kernel_param *kp)
{
	int n, ret;

	ret = kstrtoint(val, 0, &n);
	if (ret)
		return ret;
	if (n < 0)
		return -EINVAL;
	atomic_set(&zcopy_testmod_armed, n);
	return 0;
}

static int zcopy_testmod_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(kp->arg));
}

static const struct kernel_param_ops zcopy_testmod_armed_ops = {
	.set = zcopy_testmod_armed_set,
	.get = zcopy_testmod_get,
};

static const struct kernel_param_ops zcopy_testmod_held_ops = {
	.get = zcopy_testmod_get,
};

module_param_cb(armed, &zcopy_testmod_armed_ops, &zcopy_testmod_armed, 0644);
MODULE_PARM_DESC(armed, "Returns still to catch");
module_param_cb(held, &zcopy_testmod_held_ops, &zcopy_testmod_held, 0444);
MODULE_PARM_DESC(held, "Returns caught so far");

/* Whether @ri returns into @caller, by the name of the code it returns to. */
static bool zcopy_testmod_from_caller(struct kretprobe_instance *ri)
{
	char name[KSYM_SYMBOL_LEN];
	size_t len;

	if (!caller)
		return true;
	sprint_symbol_no_offset(name, get_kretprobe_retaddr(ri));
	len = strlen(caller);
	/* A module's symbol is followed by " [module]". */
	return !strncmp(name, caller, len) && (!name[len] || name[len] == ' ');
}

/* In the returning task, preemption off: the wait keeps its CPU. */
static int zcopy_testmod_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	int only = READ_ONCE(tgid), ret = READ_ONCE(retval);

	if (only && task_tgid_nr(current) != only)
		return 0;
	if (atomic_read(&zcopy_testmod_armed) <= 0 || !zcopy_testmod_from_caller(ri))
		return 0;
	if (atomic_dec_if_positive(&zcopy_testmod_armed) < 0)
		return 0;
	atomic_inc(&zcopy_testmod_held);
	mdelay(READ_ONCE(delay_ms));
	if (ret)
		regs_set_return_value(regs, ret);
	return 0;
}

static struct kretprobe zcopy_testmod_krp = {
	.handler	= zcopy_testmod_ret,
	/* Enough for a function that every task calls (@caller). */
	.maxactive	= 64,
};

static int __init zcopy_testmod_init(void)
{
	zcopy_testmod_krp.kp.symbol_name = symbol;
	return register_kretprobe(&zcopy_testmod_krp);
}

static void __exit zcopy_testmod_exit(void)
{
	unregister_kretprobe(&zcopy_testmod_krp);
}

module_init(zcopy_testmod_init);
module_exit(zcopy_testmod_exit);
MODULE_DESCRIPTION("zcopy selftests: hold up or fail returns of a function");
MODULE_LICENSE("GPL");
