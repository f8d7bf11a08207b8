/* SPDX-License-Identifier: GPL-2.0 */
/*
 * zcopy internals shared between the module's files.
 */
#ifndef _ZCOPY_H
#define _ZCOPY_H

#include <linux/atomic.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>

#include <linux/zcopy.h>

#define ZCOPY_FEATURES	(ZCOPY_FEAT_SEND | ZCOPY_FEAT_STATS)

/* The ledger's counters, in the order of struct zcopy_stats. */
enum zcopy_counter {
	ZC_SENDS,
	ZC_SEND_BYTES,
	ZC_SEND_COMPLETIONS,
	ZC_TX_ZEROCOPY_BYTES,
	ZC_TX_COPIED_BYTES,
	ZC_TX_COPIED_NOT_OFFLOADED,
	ZC_TX_COPIED_LOOPBACK,
	ZC_TX_COPIED_STACK,
	ZC_SENDS_IN_FLIGHT,
	ZC_PAGES_PINNED,
	ZC_PAGES_PINNED_PEAK,
	ZC_PAGES_PINNED_TOTAL,
	ZC_RECORDS_QUEUED,
	ZC_NR_COUNTERS
};

struct zcopy_ledger {
	atomic64_t	c[ZC_NR_COUNTERS];
};

/**
 * struct zcopy_file - the state of one open /dev/zcopy
 * @ref:	one for the open file, one for each send in flight
 * @lock:	protects @records, @next_seq, @next_offset and @closed
 * @records:	completion records waiting to be read, oldest first
 * @wait:	readers and pollers of @records
 * @next_seq:	sequence number of the next send
 * @next_offset: stream offset of the next send's first byte
 * @reserved:	records owed: sends in flight plus records queued
 * @pinned:	pages pinned for sends in flight, within max_fd_pages
 * @closed:	the file is gone; completions queue no more records
 * @ledger:	this file's counters
 */
struct zcopy_file {
	struct kref		ref;
	spinlock_t		lock;		/* see above */
	struct list_head	records;
	wait_queue_head_t	wait;
	u64			next_seq;
	u64			next_offset;
	atomic_t		reserved;
	atomic_long_t		pinned;
	bool			closed;
	struct zcopy_ledger	ledger;
};

void zcopy_file_put(struct zcopy_file *zf);

/* ledger.c */
extern struct zcopy_ledger zcopy_totals;

void zcopy_count(struct zcopy_file *zf, enum zcopy_counter id, s64 n);
void zcopy_count_pinned(struct zcopy_file *zf, long nr_pages);
void zcopy_ledger_read(const struct zcopy_ledger *l, struct zcopy_stats *st);
void zcopy_debugfs_init(void);
void zcopy_debugfs_exit(void);

/* tx.c */
int zcopy_tx_init(void);
void zcopy_tx_exit(void);
long zcopy_ioctl_send(struct zcopy_file *zf, struct zcopy_send __user *uarg);
ssize_t zcopy_read_records(struct zcopy_file *zf, char __user *buf,
			   size_t count, bool nonblock);
void zcopy_free_records(struct zcopy_file *zf);

#endif /* _ZCOPY_H */
