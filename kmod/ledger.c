// SPDX-License-Identifier: GPL-2.0
/*
 * The ledger: what zcopy did with every byte, per open file and in total.
 * Per-file counters are read with ZCOPY_IOC_STATS; the totals with the same
 * ioctl (ZCOPY_STATS_MODULE) or in debugfs, zcopy/ledger.
 */

#include <linux/debugfs.h>
#include <linux/percpu.h>
#include <linux/seq_file.h>
#include <linux/stddef.h>

#include "zcopy.h"

struct zcopy_ledger zcopy_totals;

static struct dentry *zcopy_debugfs;

/*
 * Each counter's name and its place in struct zcopy_stats; a level (now)
 * is summed over CPUs while it moves and may add up below zero for a
 * moment, so it reads as zero then.
 */
static const struct {
	const char	*name;
	size_t		offset;
	bool		level;
} zcopy_counters[ZC_NR_COUNTERS] = {
	[ZC_SENDS]		= { "sends", offsetof(struct zcopy_stats, sends) },
	[ZC_SEND_BYTES]		= { "send_bytes", offsetof(struct zcopy_stats, send_bytes) },
	[ZC_SEND_COMPLETIONS]	= { "send_completions",
				    offsetof(struct zcopy_stats, send_completions) },
	[ZC_TX_ZEROCOPY_BYTES]	= { "tx_zerocopy_bytes",
				    offsetof(struct zcopy_stats, tx_zerocopy_bytes) },
	[ZC_TX_COPIED_BYTES]	= { "tx_copied_bytes",
				    offsetof(struct zcopy_stats, tx_copied_bytes) },
	[ZC_TX_COPIED_NOT_OFFLOADED] = { "tx_copied_not_offloaded",
				    offsetof(struct zcopy_stats, tx_copied_not_offloaded) },
	[ZC_TX_COPIED_LOOPBACK]	= { "tx_copied_loopback",
				    offsetof(struct zcopy_stats, tx_copied_loopback) },
	[ZC_TX_COPIED_STACK]	= { "tx_copied_stack",
				    offsetof(struct zcopy_stats, tx_copied_stack) },
	[ZC_SENDS_IN_FLIGHT]	= { "sends_in_flight",
				    offsetof(struct zcopy_stats, sends_in_flight), true },
	[ZC_PAGES_PINNED]	= { "pages_pinned", offsetof(struct zcopy_stats, pages_pinned) },
	[ZC_PAGES_PINNED_PEAK]	= { "pages_pinned_peak",
				    offsetof(struct zcopy_stats, pages_pinned_peak) },
	[ZC_PAGES_PINNED_TOTAL]	= { "pages_pinned_total",
				    offsetof(struct zcopy_stats, pages_pinned_total) },
	[ZC_RECORDS_QUEUED]	= { "records_queued",
				    offsetof(struct zcopy_stats, records_queued), true },
	[ZC_POOL_PAGES]		= { "pool_pages",
				    offsetof(struct zcopy_stats, pool_pages), true },
	[ZC_POOL_SENDS]		= { "pool_sends", offsetof(struct zcopy_stats, pool_sends) },
	[ZC_POOL_SEND_BYTES]	= { "pool_send_bytes",
				    offsetof(struct zcopy_stats, pool_send_bytes) },
	[ZC_POOL_SEND_COPIED_BYTES] = { "pool_send_copied_bytes",
				    offsetof(struct zcopy_stats, pool_send_copied_bytes) },
	[ZC_COW_COPIES]		= { "cow_copies", offsetof(struct zcopy_stats, cow_copies) },
	[ZC_WRITE_FAULTS]	= { "write_faults", offsetof(struct zcopy_stats, write_faults) },
	[ZC_PAGES_REARMED]	= { "pages_rearmed",
				    offsetof(struct zcopy_stats, pages_rearmed) },
	[ZC_POOL_IN_FLIGHT]	= { "pool_pages_in_flight",
				    offsetof(struct zcopy_stats, pool_pages_in_flight), true },
	[ZC_RECEIVES]		= { "receives", offsetof(struct zcopy_stats, receives) },
	[ZC_RX_BYTES_MAPPED]	= { "rx_bytes_mapped",
				    offsetof(struct zcopy_stats, rx_bytes_mapped) },
	[ZC_RX_BYTES_COPIED]	= { "rx_bytes_copied",
				    offsetof(struct zcopy_stats, rx_bytes_copied) },
	[ZC_RX_SLOTS_USED]	= { "rx_slots_used",
				    offsetof(struct zcopy_stats, rx_slots_used), true },
	[ZC_RX_COPIED_LINEAR]	= { "rx_copied_linear",
				    offsetof(struct zcopy_stats, rx_copied_linear) },
	[ZC_RX_COPIED_PARTIAL]	= { "rx_copied_partial",
				    offsetof(struct zcopy_stats, rx_copied_partial) },
	[ZC_RX_COPIED_UNALIGNED] = { "rx_copied_unaligned",
				    offsetof(struct zcopy_stats, rx_copied_unaligned) },
	[ZC_RX_COPIED_FOREIGN]	= { "rx_copied_foreign",
				    offsetof(struct zcopy_stats, rx_copied_foreign) },
	[ZC_RX_COPIED_CUT]	= { "rx_copied_cut", offsetof(struct zcopy_stats, rx_copied_cut) },
	[ZC_RX_COPIED_DATAGRAM]	= { "rx_copied_datagram",
				    offsetof(struct zcopy_stats, rx_copied_datagram) },
	[ZC_FWD_SENDS]		= { "fwd_sends", offsetof(struct zcopy_stats, fwd_sends) },
	[ZC_FWD_BYTES]		= { "fwd_bytes", offsetof(struct zcopy_stats, fwd_bytes) },
	[ZC_FWD_COMPLETIONS]	= { "fwd_completions",
				    offsetof(struct zcopy_stats, fwd_completions) },
	[ZC_FWD_ZEROCOPY_BYTES]	= { "fwd_zerocopy_bytes",
				    offsetof(struct zcopy_stats, fwd_zerocopy_bytes) },
	[ZC_FWD_COPIED_BYTES]	= { "fwd_copied_bytes",
				    offsetof(struct zcopy_stats, fwd_copied_bytes) },
	[ZC_FWD_COPIED_NOT_OFFLOADED] = { "fwd_copied_not_offloaded",
				    offsetof(struct zcopy_stats, fwd_copied_not_offloaded) },
	[ZC_FWD_COPIED_LOOPBACK] = { "fwd_copied_loopback",
				    offsetof(struct zcopy_stats, fwd_copied_loopback) },
	[ZC_FWD_COPIED_STACK]	= { "fwd_copied_stack",
				    offsetof(struct zcopy_stats, fwd_copied_stack) },
	[ZC_FWD_SLOTS_HELD]	= { "fwd_slots_held",
				    offsetof(struct zcopy_stats, fwd_slots_held), true },
	[ZC_TX_COPIED_SMALL]	= { "tx_copied_small",
				    offsetof(struct zcopy_stats, tx_copied_small) },
};

int zcopy_ledger_init(struct zcopy_ledger *l, gfp_t gfp)
{
	l->cpu = alloc_percpu_gfp(struct zcopy_ledger_cpu, gfp);
	return l->cpu ? 0 : -ENOMEM;
}

void zcopy_ledger_destroy(struct zcopy_ledger *l)
{
	free_percpu(l->cpu);
}

/* Raise a high-water mark to @now, without a lock. */
static void zcopy_raise(atomic64_t *peak, s64 now)
{
	s64 old = atomic64_read(peak);

	while (now > old && !atomic64_try_cmpxchg(peak, &old, now))
		;
}

/* Pages pinned (@nr_pages > 0) or unpinned (< 0), with their high-water mark. */
void zcopy_ledger_pinned(struct zcopy_ledger *l, long nr_pages)
{
	zcopy_raise(&l->pinned_peak, atomic64_add_return(nr_pages, &l->pinned));
	if (nr_pages > 0)
		this_cpu_add(l->cpu->c[ZC_PAGES_PINNED_TOTAL], nr_pages);
}

static u64 zcopy_ledger_get(const struct zcopy_ledger *l, enum zcopy_counter id)
{
	s64 sum = 0;
	int cpu;

	switch (id) {
	case ZC_PAGES_PINNED:
		return atomic64_read(&l->pinned);
	case ZC_PAGES_PINNED_PEAK:
		return atomic64_read(&l->pinned_peak);
	default:
		break;
	}
	for_each_possible_cpu(cpu)
		sum += READ_ONCE(per_cpu_ptr(l->cpu, cpu)->c[id]);
	if (zcopy_counters[id].level && sum < 0)
		return 0;
	return sum;
}

void zcopy_ledger_read(const struct zcopy_ledger *l, struct zcopy_stats *st)
{
	int i;

	for (i = 0; i < ZC_NR_COUNTERS; i++)
		*(__u64 *)((char *)st + zcopy_counters[i].offset) = zcopy_ledger_get(l, i);
}

static int zcopy_ledger_show(struct seq_file *m, void *v)
{
	int i;

	for (i = 0; i < ZC_NR_COUNTERS; i++)
		seq_printf(m, "%-24s %llu\n", zcopy_counters[i].name,
			   zcopy_ledger_get(&zcopy_totals, i));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(zcopy_ledger);

void zcopy_debugfs_init(void)
{
	zcopy_debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("ledger", 0444, zcopy_debugfs, NULL, &zcopy_ledger_fops);
}

void zcopy_debugfs_exit(void)
{
	debugfs_remove_recursive(zcopy_debugfs);
}
