/* SPDX-License-Identifier: GPL-2.0 */
/*
 * zcopy internals shared between the module's files.
 */
#ifndef _ZCOPY_H
#define _ZCOPY_H

#include <linux/atomic.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <linux/zcopy.h>

struct bio_vec;
struct file;
struct socket;
struct vm_area_struct;
struct zcopy_pool;
struct zcopy_rx_area;

#define ZCOPY_FEATURES	(ZCOPY_FEAT_SEND | ZCOPY_FEAT_STATS | ZCOPY_FEAT_POOL | \
			 ZCOPY_FEAT_RECV)

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
	ZC_POOL_PAGES,
	ZC_POOL_SENDS,
	ZC_POOL_SEND_BYTES,
	ZC_POOL_SEND_COPIED_BYTES,
	ZC_COW_COPIES,
	ZC_WRITE_FAULTS,
	ZC_PAGES_REARMED,
	ZC_POOL_IN_FLIGHT,
	ZC_RECEIVES,
	ZC_RX_BYTES_MAPPED,
	ZC_RX_BYTES_COPIED,
	ZC_RX_SLOTS_USED,
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
 * @pool_lock:	serialises creating @pool and @rx
 * @pool:	the send pool, once mapped; lives as long as the file
 * @rx:		the receive area, once mapped; lives as long as the file
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
	struct mutex		pool_lock;	/* see above */
	struct zcopy_pool	*pool;
	struct zcopy_rx_area	*rx;
	struct zcopy_ledger	ledger;
};

struct zcopy_record {
	struct list_head	node;
	struct zcopy_completion	c;
};

/**
 * struct zcopy_tx - one send in flight that queues a completion record
 * @ubuf:	given to the stack; its count is the skbs holding the pages,
 *		plus one of ours while the send is being made
 * @zf:		the file the record goes to (holds a reference)
 * @rec:	the completion record, allocated up front
 * @pool:	the pool the pages are from, or NULL for pinned user pages
 * @first:	with @pool: the slot of the first page
 * @mmp:	without @pool: the RLIMIT_MEMLOCK charge of the pins
 * @work:	releases the pages in process context after the last reference
 * @bytes:	bytes the socket accepted
 * @copied:	bytes the stack reported copying
 * @nr_pages:	pages held: pinned, or referenced from @pool
 * @why:	ZCOPY_COPIED_* to report if the stack copies on the way
 * @zc_used:	an skb let go of the pages without copying them
 * @zc_copied:	the stack copied some of the pages
 * @failed:	the send failed: release the pages, queue no record
 * @pages:	the pages, in the order of the bytes sent
 */
struct zcopy_tx {
	struct ubuf_info	ubuf;
	struct zcopy_file	*zf;
	struct zcopy_record	*rec;
	struct zcopy_pool	*pool;
	unsigned long		first;
	struct mmpin		mmp;
	struct work_struct	work;
	u64			bytes;
	atomic64_t		copied;
	unsigned int		nr_pages;
	u32			why;
	bool			zc_used;
	bool			zc_copied;
	bool			failed;
	struct page		*pages[];
};

void zcopy_file_put(struct zcopy_file *zf);
int zcopy_account_pages(struct mmpin *mmp, unsigned long nr);
int zcopy_offsets_get(pgoff_t *pgoff);
void zcopy_offsets_put(pgoff_t pgoff);

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
int zcopy_msg_flags(struct socket *sock, u32 flags);
struct socket *zcopy_get_send_socket(int fd);
size_t zcopy_send_limit(unsigned long first_offset, size_t len);
int zcopy_reserve_record(struct zcopy_file *zf);
void zcopy_unreserve_record(struct zcopy_file *zf);
struct zcopy_tx *zcopy_tx_alloc(struct zcopy_file *zf, unsigned int nr_pages);
void zcopy_tx_free(struct zcopy_tx *tx);
int zcopy_tx_submit(struct zcopy_tx *tx, struct socket *sock,
		    struct bio_vec *bvec, size_t total, u32 flags, u64 cookie,
		    u64 *seq, u64 *offset);
long zcopy_ioctl_send(struct zcopy_file *zf, struct zcopy_send __user *uarg);
ssize_t zcopy_read_records(struct zcopy_file *zf, char __user *buf,
			   size_t count, bool nonblock);
void zcopy_free_records(struct zcopy_file *zf);

/* pool.c */
int zcopy_pool_mmap(struct zcopy_file *zf, struct file *file,
		    struct vm_area_struct *vma);
void zcopy_pool_free(struct zcopy_pool *pool);
void zcopy_pool_tx_put(struct zcopy_tx *tx, unsigned int from, bool sent);
void zcopy_pool_rearm(struct zcopy_pool *pool);
long zcopy_ioctl_pool_send(struct zcopy_file *zf,
			   struct zcopy_pool_send __user *uarg);

/* recv.c */
int zcopy_rx_mmap(struct zcopy_file *zf, struct file *file,
		  struct vm_area_struct *vma);
void zcopy_rx_free(struct zcopy_rx_area *area);
long zcopy_ioctl_recv(struct zcopy_file *zf, struct zcopy_recv __user *uarg);
long zcopy_ioctl_release(struct zcopy_file *zf, struct zcopy_release __user *uarg);

#endif /* _ZCOPY_H */
