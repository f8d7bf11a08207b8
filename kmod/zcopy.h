/* SPDX-License-Identifier: GPL-2.0 */
/*
 * zcopy internals shared between the module's files, by file, from the
 * bottom up: each file uses only what is declared above its own section.
 */
#ifndef _ZCOPY_H
#define _ZCOPY_H

#include <linux/atomic.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/sizes.h>
#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <linux/zcopy.h>

struct bio_vec;
struct file;
struct inode;
struct mm_struct;
struct poll_table_struct;
struct socket;
struct vm_area_struct;

#define ZCOPY_FEATURES	(ZCOPY_FEAT_SEND | ZCOPY_FEAT_STATS | ZCOPY_FEAT_POOL | \
			 ZCOPY_FEAT_RECV | ZCOPY_FEAT_RX_CAUSES | ZCOPY_FEAT_FORWARD | \
			 ZCOPY_FEAT_COPY_SMALL | ZCOPY_FEAT_REGISTER | \
			 ZCOPY_FEAT_SEND_BATCH | ZCOPY_FEAT_POOL_BATCH | \
			 ZCOPY_FEAT_COPY_PROBING)

/* ---- ledger.c: what zcopy did with every byte ---- */

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
	ZC_RX_COPIED_LINEAR,
	ZC_RX_COPIED_PARTIAL,
	ZC_RX_COPIED_UNALIGNED,
	ZC_RX_COPIED_FOREIGN,
	ZC_RX_COPIED_CUT,
	ZC_RX_COPIED_DATAGRAM,
	ZC_FWD_SENDS,
	ZC_FWD_BYTES,
	ZC_FWD_COMPLETIONS,
	ZC_FWD_ZEROCOPY_BYTES,
	ZC_FWD_COPIED_BYTES,
	ZC_FWD_COPIED_NOT_OFFLOADED,
	ZC_FWD_COPIED_LOOPBACK,
	ZC_FWD_COPIED_STACK,
	ZC_FWD_SLOTS_HELD,
	ZC_TX_COPIED_SMALL,
	ZC_NR_COUNTERS
};

/*
 * Per CPU, as the stack's SNMP counters: every send on every CPU counts in
 * its file's ledger and in the module's, where shared atomics would bounce
 * between CPUs. Pages pinned stay one atomic, for their high-water mark.
 */
struct zcopy_ledger_cpu {
	u64	c[ZC_NR_COUNTERS];
};

struct zcopy_ledger {
	struct zcopy_ledger_cpu __percpu	*cpu;
	atomic64_t				pinned;
	atomic64_t				pinned_peak;
};

extern struct zcopy_ledger zcopy_totals;

int zcopy_ledger_init(struct zcopy_ledger *l, gfp_t gfp);
void zcopy_ledger_destroy(struct zcopy_ledger *l);

/* Any context: this_cpu_add() is safe against interrupts. */
static inline void zcopy_ledger_add(struct zcopy_ledger *l, enum zcopy_counter id, s64 n)
{
	this_cpu_add(l->cpu->c[id], n);
}

void zcopy_ledger_pinned(struct zcopy_ledger *l, long nr_pages);
void zcopy_ledger_read(const struct zcopy_ledger *l, struct zcopy_stats *st);
void zcopy_debugfs_init(void);
void zcopy_debugfs_exit(void);

/* ---- records.c: the completion records behind read(2) ---- */

struct zcopy_record {
	struct list_head	node;
	struct zcopy_completion	c;
};

/**
 * struct zcopy_records - a file's completion records and its send stream
 * @lock:	protects everything below but @reserved; taken with bottom
 *		halves off, as a send's release posts from softirq
 * @list:	records waiting to be read, in order of sequence
 * @wait:	readers and pollers of @list
 * @next_seq:	sequence number of the next send
 * @next_offset: stream offset of the next send's first byte
 * @closed:	the file is gone; completions queue no more records
 * @spare:	a record merged away, kept for the next send
 * @reserved:	records owed: sends in flight plus records queued
 */
struct zcopy_records {
	spinlock_t		lock;		/* see above */
	struct list_head	list;
	wait_queue_head_t	wait;
	u64			next_seq;
	u64			next_offset;
	bool			closed;
	struct zcopy_record	*spare;
	atomic_t		reserved;
};

void zcopy_records_init(struct zcopy_records *r);
struct zcopy_record *zcopy_record_get(struct zcopy_records *r);
void zcopy_record_put(struct zcopy_records *r, struct zcopy_record *rec);
void zcopy_records_number(struct zcopy_records *r, unsigned int sends, u64 bytes,
			  u64 *seq, u64 *offset);
int zcopy_records_post(struct zcopy_records *r, struct zcopy_record *rec);
ssize_t zcopy_records_read(struct zcopy_records *r, char __user *buf, size_t count,
			   bool nonblock);
__poll_t zcopy_records_poll(struct zcopy_records *r, struct file *file,
			    struct poll_table_struct *wait);
int zcopy_records_close(struct zcopy_records *r);

/* ---- file.c: the state of one open /dev/zcopy ---- */

struct zcopy_area;

/**
 * struct zcopy_file - the state of one open /dev/zcopy
 * @ref:	one for the open file, one for each send in flight
 * @inode:	an anonymous inode of the file's own, whose address_space
 *		holds the file's mappings and no one else's
 * @records:	completion records and the send stream
 * @pinned:	pages pinned for sends in flight and registered buffers,
 *		within max_fd_pages
 * @fixed:	the registered buffers, by index (struct zcopy_fixed)
 * @areas_lock:	serialises creating @pool and @rx
 * @pool:	the send pool, once mapped; lives as long as the file
 * @rx:		the receive area, once mapped; lives as long as the file
 * @ledger:	this file's counters
 * @put_work:	drops the last reference when one dropped with bottom
 *		halves off held it: freeing the file sleeps
 */
struct zcopy_file {
	struct kref		ref;
	struct inode		*inode;
	struct zcopy_records	records;
	atomic_long_t		pinned;
	struct xarray		fixed;
	struct mutex		areas_lock;	/* see above */
	struct zcopy_area	*pool;
	struct zcopy_area	*rx;
	struct zcopy_ledger	ledger;
	struct work_struct	put_work;
};

int zcopy_file_init(void);
void zcopy_file_exit(void);
struct zcopy_file *zcopy_file_alloc(void);
void zcopy_file_put(struct zcopy_file *zf);
void zcopy_file_put_atomic(struct zcopy_file *zf, struct workqueue_struct *wq);
int zcopy_file_charge(struct zcopy_file *zf, unsigned long nr_pages);
void zcopy_file_uncharge(struct zcopy_file *zf, unsigned long nr_pages);

/* Add @n to counter @id of @zf and of the module's totals. */
static inline void zcopy_count(struct zcopy_file *zf, enum zcopy_counter id, s64 n)
{
	zcopy_ledger_add(&zf->ledger, id, n);
	zcopy_ledger_add(&zcopy_totals, id, n);
}

/* Pages pinned (@nr_pages > 0) or unpinned (< 0) for sends by @zf. */
static inline void zcopy_count_pinned(struct zcopy_file *zf, long nr_pages)
{
	zcopy_ledger_pinned(&zf->ledger, nr_pages);
	zcopy_ledger_pinned(&zcopy_totals, nr_pages);
}

/* ---- area.c: pages of ours mapped into user space ---- */

/**
 * struct zcopy_area_ops - what sets a kind of area apart
 * @vm_ops:	its mappings' operations, by which its VMAs are known
 * @free:	free the area, with the file: no mapping is left
 */
struct zcopy_area_ops {
	const struct vm_operations_struct	*vm_ops;
	void					(*free)(struct zcopy_area *area);
};

/**
 * struct zcopy_area - the part a send pool and a receive area share
 * @ops:	what kind of area it is
 * @zf:		the file that owns it (and frees it: no reference)
 * @mapping:	the file's address_space, which only its mappings are in
 * @pgoff:	the area's mmap offset, in pages
 * @nr_pages:	pages in the area
 * @uaddr:	where the area was last mapped (or moved to), as far as we
 *		know: checked against the VMA each time (zcopy_area_vma())
 * @mmp:	the RLIMIT_MEMLOCK charge of its pages
 */
struct zcopy_area {
	const struct zcopy_area_ops	*ops;
	struct zcopy_file		*zf;
	struct address_space		*mapping;
	pgoff_t				pgoff;
	unsigned long			nr_pages;
	unsigned long			uaddr;
	struct mmpin			mmp;
};

int zcopy_account_pages(struct mmpin *mmp, unsigned long nr);
int zcopy_area_mmap(struct zcopy_file *zf, struct zcopy_area **slot,
		    struct vm_area_struct *vma,
		    struct zcopy_area *(*create)(struct zcopy_file *zf, unsigned long nr),
		    int (*attach)(struct zcopy_area *area, struct vm_area_struct *vma));
int zcopy_area_init(struct zcopy_area *area, struct zcopy_file *zf,
		    const struct zcopy_area_ops *ops, pgoff_t pgoff, unsigned long nr);
void zcopy_area_destroy(struct zcopy_area *area);
void zcopy_area_zap(struct zcopy_area *area, unsigned long idx, unsigned long nr);
struct vm_area_struct *zcopy_area_vma(struct zcopy_area *area, struct mm_struct *mm);
bool zcopy_area_owns(struct zcopy_area *area, struct vm_area_struct *vma);
int zcopy_area_may_split(struct vm_area_struct *vma, unsigned long addr);

/* ---- send.c: the send core, whatever the pages' source ---- */

struct zcopy_tx;

/**
 * struct zcopy_tx_ledger - the counters a source's sends go to
 * @sends:	sends that moved at least one byte
 * @bytes:	bytes the sockets accepted
 * @completions: sends whose pages the stack let go of
 * @zerocopy:	completed bytes that left without a copy
 * @copied:	completed bytes the stack copied, and of those, copied
 * @not_offloaded: ... at send time, or by the module: a datagram of too many
 *		pieces, a socket that may send MTU probes, a corked datagram
 * @loopback:	... on loopback
 * @stack:	... elsewhere in the stack
 * @small:	... by the module, the send being short
 */
struct zcopy_tx_ledger {
	enum zcopy_counter	sends;
	enum zcopy_counter	bytes;
	enum zcopy_counter	completions;
	enum zcopy_counter	zerocopy;
	enum zcopy_counter	copied;
	enum zcopy_counter	not_offloaded;
	enum zcopy_counter	loopback;
	enum zcopy_counter	stack;
	enum zcopy_counter	small;
};

/* Where ZCOPY_IOC_SEND and ZCOPY_IOC_POOL_SEND count. */
extern const struct zcopy_tx_ledger zcopy_send_ledger;

/**
 * struct zcopy_tx_ops - a source of pages to send
 * @ledger:	where its sends are counted
 * @trim:	the socket took only the first @keep pages: let go of the rest
 * @release:	the stack has let go of every page, or never took them
 *		(@sent false: the send failed); in process context, or with
 *		bottom halves off if @atomic
 * @atomic:	@release neither sleeps nor takes a lock that a softirq may
 *		not: it runs where the stack lets go, without the worker
 * @release_atomic: for a source whose release is light but for a last
 *		reference, asked instead of @atomic, at most once, with bottom
 *		halves off: let go of what may be let go of there, and say
 *		whether @release may run there too (else it runs from the
 *		worker). @release runs either way, asked or not.
 */
struct zcopy_tx_ops {
	const struct zcopy_tx_ledger	*ledger;
	void	(*trim)(struct zcopy_tx *tx, unsigned int keep);
	void	(*release)(struct zcopy_tx *tx, bool sent);
	bool	(*release_atomic)(struct zcopy_tx *tx);
	bool	atomic;
};

/**
 * struct zcopy_tx - one send (or a run), and the completion record it queues
 * @ubuf:	given to the stack; its count is the skbs holding it, plus one
 *		of ours while the send is being made, plus one for each send
 *		linked into its chain (@head's) until that send's count is
 *		spent, plus one its predecessor holds (@linked)
 * @ops:	the pages' source
 * @zf:		the file the record goes to (holds a reference)
 * @rec:	the completion record, allocated up front; NULL for a send
 *		without one
 * @done:	on the per-CPU list of chains whose last reference went, or
 *		on the stack of sends being released (zcopy_tx_finish())
 * @head:	the first send of the chain this one is linked into (see
 *		zcopy_tx_link()), or itself
 * @next:	the next send linked into its chain, in the order they were made
 * @last:	the head's: the last send linked into its chain
 * @chain_bytes: the head's: bytes asked of the sends of its chain
 * @succ:	the first of the sends that TCP linked into an skb holding this
 *		one's ubuf (its successors, see zcopy_tx_follow())
 * @sibling:	the next successor of this one's predecessor, in link order
 * @nr_succ:	successors in @succ
 * @linked:	a successor: its predecessor holds a reference to it
 * @dropped:	a successor that sent nothing, released at once: its last
 *		reference only frees it
 * @bytes:	bytes the socket accepted (until it returns, bytes asked)
 * @sends:	the sends @bytes reached: 1, or more for a batch's run of
 *		them made as one (zcopy_tx_args.lens)
 * @copied:	bytes the stack reported copying
 * @nr_pages:	pages held
 * @why:	ZCOPY_COPIED_* to report if the stack copies on the way
 * @zc_used:	an skb let go of the pages without copying them
 * @zc_copied:	the stack copied some of the pages
 * @failed:	the send failed: release the pages, queue no record
 * @priv:	the source's own, zcopy_tx_priv() bytes of it
 * @pages:	the pages, in the order of the bytes sent
 */
struct zcopy_tx {
	struct ubuf_info		ubuf;
	const struct zcopy_tx_ops	*ops;
	struct zcopy_file		*zf;
	struct zcopy_record		*rec;
	struct llist_node		done;
	struct zcopy_tx			*head;
	struct zcopy_tx			*next;
	struct zcopy_tx			*last;
	u64				chain_bytes;
	struct zcopy_tx			*succ;
	struct zcopy_tx			*sibling;
	unsigned int			nr_succ;
	u64				bytes;
	unsigned int			sends;
	atomic64_t			copied;
	unsigned int			nr_pages;
	u32				why;
	bool				zc_used;
	bool				zc_copied;
	bool				failed;
	bool				linked;
	bool				dropped;
	void				*priv;
	struct page			*pages[];
};

/**
 * struct zcopy_tx_args - what a send takes and gives back
 * @sock:	the socket
 * @bvec:	the pages and where in them the bytes are, one per page
 * @len:	bytes to send
 * @lens:	a run of sends made as one (a batch's, to one socket): each
 *		one's bytes, @len in all; NULL for one send
 * @nr_sends:	entries in @lens
 * @flags:	ZCOPY_SEND_*
 * @cookie:	for the record
 * @bytes:	out: bytes the socket accepted
 * @seq:	out: the (first) send's sequence number
 * @offset:	out: where its bytes start in the file's stream
 */
struct zcopy_tx_args {
	struct socket	*sock;
	struct bio_vec	*bvec;
	size_t		len;
	const u32	*lens;
	unsigned int	nr_sends;
	u32		flags;
	u64		cookie;
	u64		bytes;
	u64		seq;
	u64		offset;
};

int zcopy_send_init(void);
void zcopy_send_exit(void);
struct socket *zcopy_send_socket(int fd, bool take_error);
int zcopy_msg_flags(struct socket *sock, u32 flags);
unsigned int zcopy_send_max_pages(void);
u32 zcopy_send_copies(struct socket *sock, size_t len, u32 flags);
int zcopy_tx_copy(struct zcopy_file *zf, const struct zcopy_tx_ledger *l,
		  struct zcopy_tx_args *args, struct iov_iter *from, u32 why, bool record);
size_t zcopy_send_limit(unsigned long first_offset, size_t len);

/*
 * A batch's sends in a row to one stream socket with the same flags, all
 * copied or none, go down in one sendmsg, as writev(2) sends its vectors:
 * one lock_sock() and push for the run, and for sends of pages one
 * ubuf_info and one record. A run takes up to 64 KiB (a GSO skb), as a chain
 * of linked sends does, so that records keep coming back, and at most
 * ZCOPY_RUN_VECS vectors: the user's for pinned sends, pieces of pages for
 * pool sends. (Pool pages sent by reference before 6.5 go by
 * kernel_sendpage(), a page at a time: the locked variant would bypass a
 * ULP such as kTLS, which replaces sk_prot only.)
 */
#define ZCOPY_RUN_SENDS	32
#define ZCOPY_RUN_VECS	64
#define ZCOPY_RUN_BYTES	SZ_64K

int zcopy_batch_read(struct zcopy_send_batch __user *uarg, struct zcopy_send_batch *args);
long zcopy_batch_done(struct zcopy_send_batch __user *uarg, u32 done, int ret);
unsigned int zcopy_bvec_pages(struct bio_vec *bvec, struct page **pages,
			      unsigned long off, size_t len);

/* Sends of up to this many pages (64 KiB) keep their bio_vecs on the stack. */
#define ZCOPY_FAST_BVEC	16

struct bio_vec *zcopy_bvec_get(struct bio_vec *fast, unsigned int nr_pages);
void zcopy_bvec_put(struct bio_vec *bvec, const struct bio_vec *fast);
struct zcopy_tx *zcopy_tx_alloc(struct zcopy_file *zf, unsigned int nr_pages,
				const struct zcopy_tx_ops *ops, size_t priv_size, bool record);
void zcopy_tx_free(struct zcopy_tx *tx);
int zcopy_tx_submit(struct zcopy_tx *tx, struct zcopy_tx_args *args);

/* ---- fixed.c: registered buffers, pinned once and sent from many times ---- */

long zcopy_ioctl_register(struct zcopy_file *zf, struct zcopy_register __user *uarg);
long zcopy_ioctl_unregister(struct zcopy_file *zf, struct zcopy_unregister __user *uarg);
void zcopy_fixed_close(struct zcopy_file *zf);
int zcopy_send_fixed(struct zcopy_file *zf, struct zcopy_tx_args *ta, u32 index,
		     const struct zcopy_iovec *iov, unsigned int nr_iov,
		     unsigned int nr_pages, u32 copy);

/* ---- pin.c, pool.c: the page sources of sends; receive.c ---- */

long zcopy_ioctl_send(struct zcopy_file *zf, struct zcopy_send __user *uarg);
long zcopy_ioctl_send_batch(struct zcopy_file *zf, struct zcopy_send_batch __user *uarg);

int zcopy_pool_mmap(struct zcopy_file *zf, struct vm_area_struct *vma);
void zcopy_pool_rearm(struct zcopy_file *zf);
long zcopy_ioctl_pool_send(struct zcopy_file *zf, struct zcopy_pool_send __user *uarg);
long zcopy_ioctl_pool_send_batch(struct zcopy_file *zf, struct zcopy_send_batch __user *uarg);

int zcopy_rx_mmap(struct zcopy_file *zf, struct vm_area_struct *vma);
long zcopy_ioctl_recv(struct zcopy_file *zf, struct zcopy_recv __user *uarg);
long zcopy_ioctl_release(struct zcopy_file *zf, struct zcopy_release __user *uarg);

/* ---- receive.c, forward.c: received pages, sent on ---- */

struct zcopy_rx_area;

struct zcopy_rx_area *zcopy_file_rx(struct zcopy_file *zf);
int zcopy_rx_hold(struct zcopy_rx_area *area, const struct zcopy_fwd_piece *p,
		  unsigned int n, struct bio_vec *bvec, u32 *idx);
void zcopy_rx_unhold(struct zcopy_rx_area *area, const u32 *idx, unsigned int n);
long zcopy_ioctl_forward(struct zcopy_file *zf, struct zcopy_forward __user *uarg);

#endif /* _ZCOPY_H */
