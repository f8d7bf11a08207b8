// SPDX-License-Identifier: GPL-2.0
/*
 * The send core: hand pages to a socket as fragments and tell the
 * application, with a completion record, when the stack has let go of
 * them. It never names where the pages come from: each source (pinned
 * user pages, pool pages, received pages sent on) gives a struct
 * zcopy_tx_ops and keeps its own state in the send's private bytes, as
 * io_uring's registered buffers keep a release callback and its data.
 *
 * sock_sendmsg() gets MSG_ZEROCOPY and a struct ubuf_info of our own in
 * msg_ubuf, as io_uring's send_zc does. Each skb that carries the pages
 * holds a reference to the ubuf; the stack calls zcopy_tx_complete() as
 * each lets go, saying whether it had to copy the pages (local delivery, a
 * tap). After the last reference, the source releases the pages, and the
 * send counts how they left and queues the record, if it has one: there
 * and then, with bottom halves off, as MSG_ZEROCOPY completes, for a
 * source whose release does not sleep (pinned pages, a registered buffer
 * but for its last reference); else from a work item, one for all the
 * sends that completed meanwhile, as an ACK frees many skbs at once.
 */

#include <linux/bottom_half.h>
#include <linux/bvec.h>
#include <linux/file.h>
#include <linux/irqflags.h>
#include <linux/llist.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/netdevice.h>
#include <linux/overflow.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/udp.h>
#include <linux/uio.h>
#include <net/sock.h>
#include <net/tcp.h>
#include <net/tcp_states.h>

#include "zcopy.h"

static unsigned int max_send_pages = 4096;
module_param(max_send_pages, uint, 0644);
MODULE_PARM_DESC(max_send_pages,
		 "Most pages one send takes; a longer send is cut short (default 4096)");

/*
 * Below this, pinning a send's pages, giving the stack a ubuf and waiting
 * for it to let go costs more than copying the bytes, as io_uring's and
 * MSG_ZEROCOPY's documentation say of theirs. Measured over e1000e
 * (results/crossover.md): the copy wins below 2 KiB on 6.12 and below 3 KiB
 * on 6.1. Per-send fixed costs do not depend on the NIC, so one
 * module-wide crossover serves every socket.
 */
static unsigned int copy_below = 2048;
module_param(copy_below, uint, 0644);
MODULE_PARM_DESC(copy_below,
		 "Sends shorter than this many bytes are copied, as write() does (default 2048; 0: never)");

static struct workqueue_struct *zcopy_tx_wq;

/* Sends whose last reference went on this CPU, and the work that takes them. */
struct zcopy_tx_done {
	struct llist_head	list;
	struct work_struct	work;
};

static DEFINE_PER_CPU(struct zcopy_tx_done, zcopy_tx_done);

const struct zcopy_tx_ledger zcopy_send_ledger = {
	.sends		= ZC_SENDS,
	.bytes		= ZC_SEND_BYTES,
	.completions	= ZC_SEND_COMPLETIONS,
	.zerocopy	= ZC_TX_ZEROCOPY_BYTES,
	.copied		= ZC_TX_COPIED_BYTES,
	.not_offloaded	= ZC_TX_COPIED_NOT_OFFLOADED,
	.loopback	= ZC_TX_COPIED_LOOPBACK,
	.stack		= ZC_TX_COPIED_STACK,
	.small		= ZC_TX_COPIED_SMALL,
};

/* Why the module itself copies a send's pages when it makes the send. */
#define ZCOPY_COPIED_AT_SEND	(ZCOPY_COPIED_FRAGS | ZCOPY_COPIED_MTU_PROBING | \
				 ZCOPY_COPIED_NOT_OFFLOADED)

/*
 * The counter of @l that bytes copied for the ZCOPY_COPIED_* reason in
 * @flags go to: the module's copies at send count as not offloaded, but
 * for short sends, which have their own.
 */
static enum zcopy_counter zcopy_tx_copied_counter(const struct zcopy_tx_ledger *l,
						  u32 flags)
{
	if (flags & ZCOPY_COPIED_SMALL)
		return l->small;
	if (flags & ZCOPY_COPIED_LOOPBACK)
		return l->loopback;
	if (flags & ZCOPY_COPIED_STACK)
		return l->stack;
	return l->not_offloaded;
}

/*
 * How @tx's bytes left: ZCOPY_COMPL_* and ZCOPY_COPIED_* flags, and in
 * *@copied how many the stack copied.
 */
static u32 zcopy_tx_outcome(struct zcopy_tx *tx, u64 *copied)
{
	u32 flags;

	*copied = 0;
	if (tx->why & ZCOPY_COPIED_AT_SEND) {
		flags = ZCOPY_COMPL_COPIED | tx->why;
		*copied = tx->bytes;
	} else if (!tx->zc_used && !tx->zc_copied) {
		/* The stack never took the pages: it copied them at send. */
		flags = ZCOPY_COMPL_COPIED | ZCOPY_COPIED_NOT_OFFLOADED;
		*copied = tx->bytes;
	} else if (tx->zc_copied) {
		flags = ZCOPY_COMPL_COPIED | tx->why;
		*copied = min_t(u64, atomic64_read(&tx->copied), tx->bytes);
		/* A copy counted short: what was not copied left as is. */
		if (*copied < tx->bytes)
			flags |= ZCOPY_COMPL_ZEROCOPY;
	} else {
		flags = ZCOPY_COMPL_ZEROCOPY;
	}
	return flags;
}

/* Count how @tx's bytes left, and queue its record if it has one. */
static void zcopy_tx_post(struct zcopy_tx *tx)
{
	const struct zcopy_tx_ledger *l = tx->ops->ledger;
	struct zcopy_file *zf = tx->zf;
	u64 copied;
	u32 flags = zcopy_tx_outcome(tx, &copied);

	zcopy_count(zf, l->completions, tx->sends);
	zcopy_count(zf, l->zerocopy, tx->bytes - copied);
	zcopy_count(zf, l->copied, copied);
	if (copied)
		zcopy_count(zf, zcopy_tx_copied_counter(l, flags), copied);

	if (!tx->rec)
		return;
	tx->rec->c.flags = flags;
	tx->rec->c.bytes = tx->bytes;
	tx->rec->c.copied = copied;
	tx->rec->c.sends = tx->sends;
	zcopy_count(zf, ZC_RECORDS_QUEUED, zcopy_records_post(&zf->records, tx->rec));
}

/*
 * The sends of a chain shared their skbs, so what the stack said of those
 * skbs it said to whichever send's ubuf each held: share it out. Every
 * send left as the chain did; the bytes copied, which the stack counts
 * exactly, go to the sends in order, as a send of its own counts a copy
 * counted short as its first bytes copied and the rest not.
 */
static void zcopy_tx_share_outcome(struct zcopy_tx *head)
{
	bool used = false, copied_any = false;
	struct zcopy_tx *tx;
	u64 copied = 0, mine;

	for (tx = head; tx; tx = tx->next) {
		used |= READ_ONCE(tx->zc_used);
		copied_any |= READ_ONCE(tx->zc_copied);
		copied += atomic64_read(&tx->copied);
	}
	for (tx = head; tx; tx = tx->next) {
		mine = tx->failed ? 0 : min(copied, tx->bytes);
		copied -= mine;
		atomic64_set(&tx->copied, mine);
		tx->zc_copied = mine != 0;
		tx->zc_used = used || copied_any;
	}
}

/* Let go of @tx's pages, then post its record, or drop it if @tx failed. */
static void zcopy_tx_let_go(struct zcopy_tx *tx)
{
	/* The pages are free before the record says so. */
	tx->ops->release(tx, !tx->failed);
	if (tx->failed) {
		if (tx->rec)
			zcopy_record_put(&tx->zf->records, tx->rec);
	} else {
		zcopy_tx_post(tx);
	}
}

/*
 * After the last reference: in process context, or with bottom halves off
 * (@atomic) if the source's release may run there.
 */
static void zcopy_tx_release_one(struct zcopy_tx *tx, bool atomic)
{
	struct zcopy_file *zf = tx->zf;

	if (!tx->dropped)
		zcopy_tx_let_go(tx);
	/* A failed send was never counted in: it made no sends. */
	zcopy_count(zf, ZC_SENDS_IN_FLIGHT, -(s64)tx->sends);
	if (atomic)
		zcopy_file_put_atomic(zf, zcopy_tx_wq);
	else
		zcopy_file_put(zf);
	kvfree(tx);
	module_put(THIS_MODULE);
}

/* @head's chain let go of its pages: release its sends in the order made. */
static void zcopy_tx_release(struct zcopy_tx *head, bool atomic)
{
	struct zcopy_tx *tx, *next;

	if (head->next)
		zcopy_tx_share_outcome(head);
	for (tx = head; tx; tx = next) {
		next = tx->next;
		zcopy_tx_release_one(tx, atomic);
	}
}

/*
 * Whether sends can be released where their last reference went, with
 * bottom halves off: not in a hard interrupt or with interrupts off
 * (netpoll), where they cannot be turned off. On PREEMPT_RT,
 * local_bh_disable() takes a per-CPU lock that the softirq threads hold
 * while they run: a caller in task context holding a spinlock_t that they
 * also take (a driver's, "irqsave" but with interrupts on) would deadlock
 * against them, and one with preemption off would sleep. There, only a
 * caller that already has bottom halves off (a softirq, spin_lock_bh())
 * and may sleep on the records' lock releases in place.
 */
static bool zcopy_tx_can_disable_bh(void)
{
	if (in_hardirq() || in_nmi() || irqs_disabled())
		return false;
	if (IS_ENABLED(CONFIG_PREEMPT_RT))
		return softirq_count() && preemptible();
	return true;
}

/*
 * Whether releasing @head's chain, with bottom halves off, must wait for
 * the worker: a source's release may sleep, or would do too much there.
 * Asking may let go of part of a send (->release_atomic()): the caller
 * releases the chain or defers it at once.
 */
static bool zcopy_tx_release_sleeps(struct zcopy_tx *head)
{
	struct zcopy_tx *tx;

	for (tx = head; tx; tx = tx->next) {
		if (tx->dropped)
			continue;
		if (tx->ops->release_atomic ? !tx->ops->release_atomic(tx) : !tx->ops->atomic)
			return true;
	}
	return false;
}

/* Hand @head's chain to the worker, on this CPU. */
static void zcopy_tx_defer(struct zcopy_tx *head)
{
	struct zcopy_tx_done *d = get_cpu_ptr(&zcopy_tx_done);

	/* The first on an empty list queues the work; it takes the rest. */
	if (llist_add(&head->done, &d->list))
		queue_work_on(smp_processor_id(), zcopy_tx_wq, &d->work);
	put_cpu_ptr(&zcopy_tx_done);
}

/*
 * The skbs that @tx's successors were linked into held only @tx's ubuf,
 * so what the stack said of those skbs it said to @tx: hand on, in link
 * order, the bytes it copied beyond @tx's own (a send counts a copy counted
 * short as its first bytes copied), and that the stack took the pages, for
 * a successor whose bytes all went into such an skb.
 */
static void zcopy_tx_hand_on(struct zcopy_tx *tx)
{
	bool taken = READ_ONCE(tx->zc_used) || READ_ONCE(tx->zc_copied);
	u64 copied = atomic64_read(&tx->copied), extra, mine;
	struct zcopy_tx *succ;

	extra = copied > tx->bytes ? copied - tx->bytes : 0;
	for (succ = tx->succ; succ; succ = succ->sibling) {
		mine = min(extra, READ_ONCE(succ->bytes));
		if (mine) {
			atomic64_add(mine, &succ->copied);
			WRITE_ONCE(succ->zc_copied, true);
			extra -= mine;
		}
		if (taken && !READ_ONCE(succ->zc_used))
			WRITE_ONCE(succ->zc_used, true);
	}
}

/*
 * Drop a reference to *@txp: true at the last of its chain's, with the
 * chain's head in *@txp. A send linked into a chain holds a reference to
 * its head, which it drops at its own last.
 */
static bool zcopy_tx_unref(struct zcopy_tx **txp)
{
	struct zcopy_tx *tx = *txp;

	if (!refcount_dec_and_test(&tx->ubuf.refcnt))
		return false;
	if (tx->head != tx) {
		tx = tx->head;
		if (!refcount_dec_and_test(&tx->ubuf.refcnt))
			return false;
	}
	*txp = tx;
	return true;
}

/*
 * With bottom halves off, at most this many sends, and this many of their
 * pages, are released in one go, so that the softirq (on PREEMPT_RT, the
 * CPU's softirq lock) is not held for long; the rest go to the worker.
 */
#define ZCOPY_TX_RELEASE_SENDS	64
#define ZCOPY_TX_RELEASE_PAGES	1024

/* The pages that releasing @head's chain lets go of. */
static unsigned int zcopy_tx_chain_pages(const struct zcopy_tx *head)
{
	const struct zcopy_tx *tx;
	unsigned int pages = 0;

	for (tx = head; tx; tx = tx->next)
		pages += tx->nr_pages;
	return pages;
}

/*
 * @head's last reference went: release its chain, and each successor that
 * its predecessor held the last reference to, and theirs in turn, in the
 * order they were linked. With bottom halves off (@atomic), a chain whose
 * release sleeps, and any past the budget above, go to the worker, which
 * comes back here. Chains (TCP before 6.10) and successors (6.10 on) never
 * meet: only a chain's head, a send of its own, has successors.
 */
static void zcopy_tx_finish(struct zcopy_tx *head, bool atomic)
{
	unsigned int sends = ZCOPY_TX_RELEASE_SENDS, pages = ZCOPY_TX_RELEASE_PAGES, n = 0;
	struct llist_node *todo, **pos;
	struct zcopy_tx *tx, *succ, *next;

	head->done.next = NULL;
	todo = &head->done;
	while (todo) {
		tx = llist_entry(todo, struct zcopy_tx, done);
		todo = todo->next;
		if (atomic)
			n = zcopy_tx_chain_pages(tx);
		/* Asked last: asking may let go of part of the chain. */
		if (atomic && (!sends || n > pages || zcopy_tx_release_sleeps(tx))) {
			zcopy_tx_defer(tx);
			continue;
		}
		zcopy_tx_hand_on(tx);
		/*
		 * Their pages left with @tx's skbs: they need not wait for its
		 * release. Those let go of come next, before the rest.
		 */
		pos = &todo;
		for (succ = tx->succ; succ; succ = next) {
			next = succ->sibling;
			if (zcopy_tx_unref(&succ)) {
				succ->done.next = *pos;
				*pos = &succ->done;
				pos = &succ->done.next;
			}
		}
		zcopy_tx_release(tx, atomic);
		if (atomic) {
			sends--;
			pages -= n;
		} else {
			cond_resched();
		}
	}
}

/* The sends that completed since the last run, in the order they did. */
static void zcopy_tx_done_work(struct work_struct *work)
{
	struct zcopy_tx_done *d = container_of(work, struct zcopy_tx_done, work);
	struct llist_node *done = llist_reverse_order(llist_del_all(&d->list));
	struct zcopy_tx *tx, *next;

	/* zcopy_tx_finish() yields after each send it releases. */
	llist_for_each_entry_safe(tx, next, done, done)
		zcopy_tx_finish(tx, false);
}

/*
 * Called by the stack as each holder of the ubuf lets go, maybe in softirq:
 * with the skb that held it (NULL for a reference the stack took for
 * itself), and whether the pages left that skb uncopied.
 */
static void zcopy_tx_complete(struct sk_buff *skb, struct ubuf_info *uarg,
			      bool zerocopy_success)
{
	struct zcopy_tx *tx = container_of(uarg, struct zcopy_tx, ubuf);

	if (skb) {
		if (!zerocopy_success) {
			atomic64_add(skb->data_len, &tx->copied);
			if (!READ_ONCE(tx->zc_copied))
				WRITE_ONCE(tx->zc_copied, true);
		} else if (!READ_ONCE(tx->zc_used)) {
			WRITE_ONCE(tx->zc_used, true);
		}
	}
	if (!zcopy_tx_unref(&tx))
		return;
	if (!zcopy_tx_can_disable_bh()) {
		zcopy_tx_defer(tx);
		return;
	}
	/*
	 * Off for a caller in process context too (TCP's backlog, but for
	 * PREEMPT_RT): as in softirq, kvfree() then defers, and module exit's
	 * synchronize_rcu() waits for us to return.
	 */
	local_bh_disable();
	zcopy_tx_finish(tx, true);
	local_bh_enable();
}

static const struct ubuf_info_ops zcopy_ubuf_ops;

/* A chain takes sends of up to this many bytes: a GSO skb's worth. */
#define ZCOPY_CHAIN_BYTES	SZ_64K

/*
 * TCP appends a send to the skb at the tail of its queue only if the skb
 * may hold the send's ubuf, and an skb holds one. Without this, each send
 * of a few KiB makes an skb of its own, which goes through the stack and
 * the NIC on its own: what write() does in one 64 KiB skb, such sends do
 * in sixteen. Before 6.10, where the send is made with the skb's ubuf
 * (zcopy_tx_join_tail()), it joins the chain of the send whose ubuf that
 * is, as io_uring links its notifications: the chain's first send (its
 * head) is let go of when every skb and every send of the chain has, and
 * the chain's sends are then released and recorded together, in order. A
 * send joins only when it is in no chain yet, and a chain takes at most
 * ZCOPY_CHAIN_BYTES, so that records keep coming back as data is
 * acknowledged. Called with the socket locked, which orders the linking.
 */
static int zcopy_tx_link(struct zcopy_tx *tx, struct ubuf_info *held)
{
	struct zcopy_tx *head;

	if (tx->head != tx || tx->next || !zcopy_ubuf_has_ops(held, &zcopy_ubuf_ops))
		return -EEXIST;
	/* The skb holds a reference to @held, and @held one to its head. */
	head = container_of(held, struct zcopy_tx, ubuf)->head;
	if (head->chain_bytes + tx->bytes > ZCOPY_CHAIN_BYTES)
		return -EEXIST;
	net_zcopy_get(&head->ubuf);
	head->chain_bytes += tx->bytes;
	head->last->next = tx;
	head->last = tx;
	tx->head = head;
	return 0;
}

/* A send's ubuf holds at most this many successors. */
#define ZCOPY_FOLLOW_MAX	32

/*
 * From 6.10, TCP asks link_skb() whether the skb at the tail, holding
 * @held, may take @tx's pages too (see zcopy_tx_link() for why it must).
 * @tx then follows the send whose ubuf that is, its predecessor: the
 * predecessor holds a reference to @tx, which keeps @tx's pages pinned
 * while that skb carries them, and @tx never holds one to it. So a send
 * waits for the send before it, never for those after, and records come
 * back as their bytes are acknowledged, however many sends share skbs in a
 * row: a chain would need ZCOPY_CHAIN_BYTES, whose short last skb splits
 * the receiver's GRO after every 64 KiB. A send follows one send at most,
 * and a send takes ZCOPY_FOLLOW_MAX successors. Called with the socket
 * locked: the skb, which holds the predecessor, stays in the queue.
 */
static int zcopy_tx_follow(struct zcopy_tx *tx, struct ubuf_info *held)
{
	struct zcopy_tx *pred, **pos;

	/*
	 * A send with successors could be following one of them: a send
	 * waiting for room lets others append to its skbs, and then finds one
	 * of theirs at the tail. Two sends holding each other never go.
	 */
	if (tx->linked || tx->nr_succ || !zcopy_ubuf_has_ops(held, &zcopy_ubuf_ops))
		return -EEXIST;
	pred = container_of(held, struct zcopy_tx, ubuf);
	if (pred->nr_succ >= ZCOPY_FOLLOW_MAX)
		return -EEXIST;
	net_zcopy_get(&tx->ubuf);
	for (pos = &pred->succ; *pos; pos = &(*pos)->sibling)
		;
	*pos = tx;
	pred->nr_succ++;
	tx->linked = true;
	return 0;
}

static int zcopy_tx_link_skb(struct sk_buff *skb, struct ubuf_info *uarg)
{
	struct ubuf_info *held = skb_zcopy(skb);

	if (!held) {
		net_zcopy_get(uarg);
		skb_zcopy_init(skb, uarg);
		return 0;
	}
	if (held == uarg)
		return 0;
	return zcopy_tx_follow(container_of(uarg, struct zcopy_tx, ubuf), held);
}

static const struct ubuf_info_ops zcopy_ubuf_ops = {
	.complete = zcopy_tx_complete,
	.link_skb = zcopy_tx_link_skb,
};

/*
 * TCP before 6.10 never calls link_skb(): there, @tx joins the chain of
 * the skb at the tail of the write queue before it is sent, and is sent
 * with that skb's ubuf, which TCP then appends to as to its own (and gives
 * to the skbs it adds after it). Its pages are let go of with the chain's,
 * as a send linked by TCP. Returns that ubuf, with a reference for the
 * sendmsg, or NULL: send with @tx's own.
 */
static struct ubuf_info *zcopy_tx_join_tail(struct zcopy_tx *tx, struct sock *sk)
{
	struct ubuf_info *held = NULL;
	struct sk_buff *skb;

	if (zcopy_tcp_links_ubufs() || !sk_is_tcp(sk))
		return NULL;
	/* The lock keeps the skb, and so @held, until the reference is taken. */
	lock_sock(sk);
	skb = tcp_write_queue_tail(sk);
	/* A route that cannot take pages has TCP copy: nothing to share. */
	if (skb && (sk->sk_route_caps & NETIF_F_SG))
		held = skb_zcopy(skb);
	if (held && !zcopy_tx_link(tx, held))
		net_zcopy_get(held);
	else
		held = NULL;
	release_sock(sk);
	return held;
}

/*
 * @tx joined a chain (zcopy_tx_join_tail()) and then sent nothing: TCP
 * queued none of its pages, so it leaves the chain, to be let go of at
 * once rather than with the chain's skbs. Its reference to the chain's
 * head, dropped last, keeps the chain until then.
 */
static void zcopy_tx_unjoin(struct zcopy_tx *tx, struct sock *sk)
{
	struct zcopy_tx *head = tx->head, *prev;

	lock_sock(sk);
	for (prev = head; prev->next != tx; prev = prev->next)
		;
	prev->next = tx->next;
	if (head->last == tx)
		head->last = prev;
	head->chain_bytes -= tx->bytes;
	tx->head = tx;
	tx->next = NULL;
	release_sock(sk);
	net_zcopy_put(&head->ubuf);
}

/*
 * @tx followed a send (TCP's link_skb(), which links before it finds the
 * skb full) and then sent nothing: no skb holds its pages, but its
 * predecessor holds it. Let go of the pages and the record now, not when
 * the predecessor goes; that last reference only frees @tx.
 */
static void zcopy_tx_drop(struct zcopy_tx *tx)
{
	zcopy_tx_let_go(tx);
	tx->dropped = true;
}

/* Drop the sender's own reference, in process context. */
static void zcopy_tx_put(struct zcopy_tx *tx)
{
	if (zcopy_tx_unref(&tx))
		zcopy_tx_finish(tx, false);
}

/* Where the bytes would be copied on the way, should the stack copy them. */
static u32 zcopy_tx_route(struct sock *sk)
{
	struct dst_entry *dst;
	u32 why = ZCOPY_COPIED_STACK;

	rcu_read_lock();
	dst = __sk_dst_get(sk);
	if (dst && dst->dev && (dst->dev->flags & IFF_LOOPBACK))
		why = ZCOPY_COPIED_LOOPBACK;
	rcu_read_unlock();
	return why;
}

/* The MSG_* flags of a send with ZCOPY_SEND_* @flags on @sock. */
int zcopy_msg_flags(struct socket *sock, u32 flags)
{
	int msg_flags = MSG_NOSIGNAL;

	if ((flags & ZCOPY_SEND_DONTWAIT) || (sock->file->f_flags & O_NONBLOCK))
		msg_flags |= MSG_DONTWAIT;
	if (flags & ZCOPY_SEND_MORE)
		msg_flags |= MSG_MORE;
	return msg_flags;
}

/*
 * TCP or UDP over IPv4 or IPv6, able to send zero-copy, and connected.
 * With @take_error a pending socket error is reported and cleared, as
 * send(2) reports it; without, only reported: a batch's later entry,
 * whose error the application learns by sending that entry again.
 */
static int zcopy_check_socket(struct socket *sock, bool take_error)
{
	struct sock *sk = sock->sk;
	int state = READ_ONCE(sk->sk_state), err;

	if (sk->sk_family != AF_INET && sk->sk_family != AF_INET6)
		return -EOPNOTSUPP;

	if (sock->type == SOCK_STREAM && sk->sk_protocol == IPPROTO_TCP) {
		/* A pending error first, as send(2) reports it: ECONNRESET... */
		err = take_error ? sock_error(sk) : -READ_ONCE(sk->sk_err);
		if (err)
			return err;
		/*
		 * As TCP would say it, before pinning anything for nothing:
		 * shut down for sending (even once closed since) is EPIPE...
		 */
		if (READ_ONCE(sk->sk_shutdown) & SEND_SHUTDOWN)
			return -EPIPE;
		/* ...no connection at all is ENOTCONN; the rest is TCP's. */
		if ((1 << state) & (TCPF_LISTEN | TCPF_CLOSE))
			return -ENOTCONN;
	} else if (sock->type == SOCK_DGRAM && sk->sk_protocol == IPPROTO_UDP) {
		if (state != TCP_ESTABLISHED)
			return -ENOTCONN;
	} else {
		return -EOPNOTSUPP;
	}

	/* Cleared by ULPs that would copy anyway, such as kTLS. */
	if (!test_bit(SOCK_SUPPORT_ZC, &sock->flags))
		return -EOPNOTSUPP;
	return 0;
}

/*
 * The socket behind @fd, if zcopy can send on it; sockfd_put() it after.
 * @take_error: see zcopy_check_socket().
 */
struct socket *zcopy_send_socket(int fd, bool take_error)
{
	struct socket *sock;
	int ret;

	sock = sockfd_lookup(fd, &ret);
	if (!sock)
		return ERR_PTR(ret);
	ret = zcopy_check_socket(sock, take_error);
	if (ret) {
		sockfd_put(sock);
		return ERR_PTR(ret);
	}
	return sock;
}

/* Read and check a batch's arguments (ZCOPY_IOC_SEND_BATCH, POOL_SEND_BATCH). */
int zcopy_batch_read(struct zcopy_send_batch __user *uarg, struct zcopy_send_batch *args)
{
	if (copy_from_user(args, uarg, sizeof(*args)))
		return -EFAULT;
	if (args->flags || args->__pad || memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	if (!args->count || args->count > ZCOPY_MAX_BATCH)
		return -EINVAL;
	/* The count goes back here: fail now rather than after sending. */
	if (put_user(0, &uarg->done))
		return -EFAULT;
	return 0;
}

/*
 * A batch's outcome, as sendmmsg(2)'s: the error @ret only when no send
 * was made, else the count (@done) written back.
 */
long zcopy_batch_done(struct zcopy_send_batch __user *uarg, u32 done, int ret)
{
	if (!done)
		return ret;
	return put_user(done, &uarg->done) ? -EFAULT : 0;
}

/* The most pages one send takes. */
unsigned int zcopy_send_max_pages(void)
{
	return max(READ_ONCE(max_send_pages), 1U);
}

/*
 * How much of @len bytes starting @first_offset into a page one send may
 * take: a send longer than max_send_pages pages or MAX_RW_COUNT bytes is
 * cut short there, as write(2) cuts at MAX_RW_COUNT; the caller sees a
 * short count.
 */
size_t zcopy_send_limit(unsigned long first_offset, size_t len)
{
	u64 room = (u64)zcopy_send_max_pages() * PAGE_SIZE - first_offset;

	return min_t(u64, min_t(u64, len, room), MAX_RW_COUNT);
}

/*
 * @len bytes from @off into @pages[0], on through the pages after it, as
 * one bio_vec per page: the number filled.
 */
unsigned int zcopy_bvec_pages(struct bio_vec *bvec, struct page **pages,
			      unsigned long off, size_t len)
{
	unsigned int n;
	size_t seg;

	for (n = 0; len; n++, off = 0) {
		seg = min_t(size_t, len, PAGE_SIZE - off);
		bvec_set_page(&bvec[n], pages[n], seg, off);
		len -= seg;
	}
	return n;
}

/*
 * Room for @nr_pages bio_vecs: @fast, an array of ZCOPY_FAST_BVEC, if they
 * fit, else allocated (NULL if not). Given back with zcopy_bvec_put().
 */
struct bio_vec *zcopy_bvec_get(struct bio_vec *fast, unsigned int nr_pages)
{
	if (nr_pages <= ZCOPY_FAST_BVEC)
		return fast;
	return kvmalloc_array(nr_pages, sizeof(*fast), GFP_KERNEL_ACCOUNT);
}

void zcopy_bvec_put(struct bio_vec *bvec, const struct bio_vec *fast)
{
	if (bvec != fast)
		kvfree(bvec);
}

/*
 * Whether TCP may build an MTU probe from this socket's queued skbs, which
 * takes their pages but not their ubuf_info, and frees them (see compat.h):
 * their sends would complete, and the pages go back to their owner, while
 * the probe still carries them, to a receiver on this machine that keeps
 * them, or on the wire again. A socket probes from connect() with
 * net.ipv4.tcp_mtu_probing 2, and after a black hole with 1; with 0 it
 * cannot start until the sysctl is set. Sends made before then are not
 * copied: a pool page the stack keeps past its record is copied on write
 * (zcopy_slot_shared()), but the application's own memory is its own.
 */
static bool zcopy_tcp_may_probe(const struct sock *sk)
{
	if (!ZCOPY_TCP_PROBE_TAKES_PAGES || sk->sk_protocol != IPPROTO_TCP)
		return false;
	if (READ_ONCE(sock_net(sk)->ipv4.sysctl_tcp_mtu_probing))
		return true;
	/*
	 * Set under the socket lock, at connect() or when a black hole is
	 * found, and only while the sysctl is set; kept if it is cleared.
	 */
	return data_race(inet_csk(sk)->icsk_mtup.enabled != 0);
}

/*
 * Whether a send on @sk goes into a UDP datagram built over several sends:
 * one is pending, or this send starts one (@more for MSG_MORE, or UDP_CORK).
 * The datagram's skb would hold its first send's ubuf, and a later send
 * with another ubuf is refused (-EINVAL from __ip_append_data()), which
 * also drops the datagram built so far. Without UDP_SEGMENT the stack
 * copies such sends anyway: their checksum is not offloaded.
 */
static bool zcopy_udp_corks(const struct sock *sk, bool more)
{
	if (sk->sk_protocol != IPPROTO_UDP)
		return false;
	/* Read as udp_sendmsg() reads them, before it takes the socket lock. */
	return more || udp_test_bit(CORK, sk) || READ_ONCE(udp_sk(sk)->pending);
}

/*
 * Whether a send on @sk is the first of a TCP socket connected with
 * TCP_FASTOPEN_CONNECT, which goes in the SYN: tcp_send_syn_data() copies
 * the bytes into the SYN's skb and still gives it the send's ubuf_info,
 * whose completion would then say zero-copy.
 */
static bool zcopy_tcp_fastopens(const struct sock *sk)
{
	if (sk->sk_protocol != IPPROTO_TCP)
		return false;
	/* Cleared under the socket lock by that send: one send too many copied at worst. */
	return data_race(inet_test_bit(DEFER_CONNECT, sk));
}

/*
 * Why a send on @sk, with MSG_MORE if @more, must be copied whatever its
 * length: ZCOPY_COPIED_MTU_PROBING or, for a corked datagram or data in a
 * SYN, ZCOPY_COPIED_NOT_OFFLOADED; or 0.
 */
static u32 zcopy_sock_copies(const struct sock *sk, bool more)
{
	if (zcopy_tcp_may_probe(sk))
		return ZCOPY_COPIED_MTU_PROBING;
	if (zcopy_udp_corks(sk, more) || zcopy_tcp_fastopens(sk))
		return ZCOPY_COPIED_NOT_OFFLOADED;
	return 0;
}

/*
 * Why a send of @len bytes with ZCOPY_SEND_* @flags on @sock is copied
 * rather than sent as pages that come back when the stack lets go of them:
 * ZCOPY_COPIED_SMALL, or zcopy_sock_copies()'s reason; 0 if it is not.
 */
u32 zcopy_send_copies(struct socket *sock, size_t len, u32 flags)
{
	if (len < READ_ONCE(copy_below))
		return ZCOPY_COPIED_SMALL;
	return zcopy_sock_copies(sock->sk, flags & ZCOPY_SEND_MORE);
}

/* How many of a run's sends @bytes reach, the last maybe in part. */
static unsigned int zcopy_run_reached(const struct zcopy_tx_args *args, size_t bytes)
{
	unsigned int i;

	if (!args->lens)
		return 1;
	for (i = 0; i < args->nr_sends && bytes; i++)
		bytes -= min_t(size_t, bytes, args->lens[i]);
	return i;
}

/*
 * Send @args->len bytes from @from by copying them, as write(2) does: the
 * socket has its own copy when sock_sendmsg() returns, so the send is
 * complete at once, and its record (with @record) says why (@why, from
 * zcopy_send_copies()).
 * A run of sends (@args->lens) goes down in one sendmsg, as writev(2)
 * would, and has one record for the sends the bytes reached: theirs would
 * merge anyway (zcopy_tx_submit() takes runs of pinned sends alike). A
 * send with a record is counted in @l as one completed by copying; one
 * without, by its caller. Returns the bytes sent or an error with no
 * record to come.
 */
int zcopy_tx_copy(struct zcopy_file *zf, const struct zcopy_tx_ledger *l,
		  struct zcopy_tx_args *args, struct iov_iter *from, u32 why, bool record)
{
	struct msghdr msg = { .msg_flags = zcopy_msg_flags(args->sock, args->flags) };
	struct zcopy_record *rec = NULL;
	unsigned int sends;
	int ret;

	if (record) {
		rec = zcopy_record_get(&zf->records);
		if (IS_ERR(rec))
			return PTR_ERR(rec);
	}

	msg.msg_iter = *from;
	ret = sock_sendmsg(args->sock, &msg);
	if (ret <= 0) {
		ret = ret ?: -EAGAIN;
		goto err_put_rec;
	}

	args->bytes = ret;
	args->seq = ZCOPY_NO_SEQ;
	args->offset = ZCOPY_NO_SEQ;
	if (!rec)
		return ret;
	sends = zcopy_run_reached(args, ret);
	zcopy_count(zf, l->sends, sends);
	zcopy_count(zf, l->bytes, ret);
	zcopy_count(zf, l->completions, sends);
	zcopy_count(zf, l->copied, ret);
	zcopy_count(zf, zcopy_tx_copied_counter(l, why), ret);
	zcopy_records_number(&zf->records, sends, ret, &args->seq, &args->offset);
	rec->c.cookie = args->cookie;
	rec->c.seq = args->seq;
	rec->c.offset = args->offset;
	rec->c.bytes = ret;
	rec->c.copied = ret;
	rec->c.sends = sends;
	rec->c.flags = ZCOPY_COMPL_COPIED | why;
	zcopy_count(zf, ZC_RECORDS_QUEUED, zcopy_records_post(&zf->records, rec));
	return ret;

err_put_rec:
	if (rec)
		zcopy_record_put(&zf->records, rec);
	return ret;
}

/*
 * A send of @nr_pages from a source with @ops, whose own state takes
 * @priv_size bytes at tx->priv; with a @record, reserved (ENOSPC when @zf
 * owes too many). Freed by zcopy_tx_free() unless submitted.
 */
struct zcopy_tx *zcopy_tx_alloc(struct zcopy_file *zf, unsigned int nr_pages,
				const struct zcopy_tx_ops *ops, size_t priv_size, bool record)
{
	struct zcopy_tx *tx;
	size_t size = ALIGN(struct_size(tx, pages, nr_pages), sizeof(u64));
	struct zcopy_record *rec = NULL;

	if (record) {
		rec = zcopy_record_get(&zf->records);
		if (IS_ERR(rec))
			return ERR_CAST(rec);
	}
	tx = kvzalloc(size_add(size, priv_size), GFP_KERNEL_ACCOUNT);
	if (!tx) {
		if (rec)
			zcopy_record_put(&zf->records, rec);
		return ERR_PTR(-ENOMEM);
	}
	tx->rec = rec;
	zcopy_ubuf_set_ops(&tx->ubuf, &zcopy_ubuf_ops);
	tx->ubuf.flags = SKBFL_ZEROCOPY_FRAG | SKBFL_DONT_ORPHAN;
	refcount_set(&tx->ubuf.refcnt, 1);
	tx->ops = ops;
	tx->zf = zf;
	tx->head = tx;
	tx->last = tx;
	tx->priv = (char *)tx + size;
	return tx;
}

/* Free a send that was never submitted; its source has its pages. */
void zcopy_tx_free(struct zcopy_tx *tx)
{
	if (tx->rec)
		zcopy_record_put(&tx->zf->records, tx->rec);
	kvfree(tx);
}

/*
 * The socket took only @sent bytes: the source lets go of the pages it
 * did not reach.
 */
static void zcopy_tx_trim(struct zcopy_tx *tx, const struct bio_vec *bvec, size_t sent)
{
	unsigned int keep = 0;

	while (keep < tx->nr_pages && sent > 0) {
		sent -= min_t(size_t, sent, bvec[keep].bv_len);
		keep++;
	}
	if (keep < tx->nr_pages)
		tx->ops->trim(tx, keep);
}

/*
 * Fill @skb's frags from @from, as msghdr.sg_from_iter
 * (zcopy_sg_from_iter(), around this) for every send with a ubuf: @from is
 * a bvec of pages that the send holds until the stack lets go of the ubuf.
 * As for io_uring's registered buffers, an skb that starts empty takes
 * them without a reference each (SKBFL_MANAGED_FRAG_REFS), which spares
 * iov_iter_get_pages() and a get_page() and put_page() per page. Whatever
 * copies such a frag into another skb takes a reference of its own
 * (skb_segment(), a copy, an MTU probe from 6.5), and whatever splits the
 * skb, reallocates its head or adds a page by reference gives its frags
 * references first (skb_zcopy_downgrade_managed()). Every skb that takes
 * the ubuf gets its flags, which never include SKBFL_MANAGED_FRAG_REFS. An
 * skb that already holds pages by reference (bytes of a write() that TCP
 * appends to), and every skb before 6.5 (ZCOPY_MANAGED_FRAGS), takes one
 * for each page too. Bytes that follow on from the last frag's, as short
 * sends from one page do, extend it.
 */
static int zcopy_fill_skb(struct sk_buff *skb, struct iov_iter *from, size_t length)
{
	struct skb_shared_info *shinfo = skb_shinfo(skb);
	int frag = shinfo->nr_frags;
	unsigned long truesize = 0;
	struct bvec_iter bi;
	size_t copied = 0;
	bool refs;

	if (!frag && ZCOPY_MANAGED_FRAGS)
		shinfo->flags |= SKBFL_MANAGED_FRAG_REFS;
	refs = !skb_zcopy_managed(skb);

	bi.bi_size = min(iov_iter_count(from), length);
	bi.bi_bvec_done = from->iov_offset;
	bi.bi_idx = 0;
	while (bi.bi_size) {
		struct bio_vec v = mp_bvec_iter_bvec(from->bvec, bi);
		skb_frag_t *last = frag ? &shinfo->frags[frag - 1] : NULL;

		if (last && skb_frag_page(last) == v.bv_page &&
		    skb_frag_off(last) + skb_frag_size(last) == v.bv_offset) {
			skb_frag_size_add(last, v.bv_len);
		} else if (frag < MAX_SKB_FRAGS) {
			if (refs)
				get_page(v.bv_page);
			__skb_fill_page_desc_noacc(shinfo, frag++, v.bv_page, v.bv_offset,
						   v.bv_len);
		} else {
			break;
		}
		copied += v.bv_len;
		truesize += PAGE_ALIGN(v.bv_len + v.bv_offset);
		bvec_iter_advance_single(from->bvec, &bi, v.bv_len);
	}
	shinfo->nr_frags = frag;
	from->bvec += bi.bi_idx;
	from->nr_segs -= bi.bi_idx;
	from->count -= copied;
	from->iov_offset = bi.bi_bvec_done;

	skb->data_len += copied;
	skb->len += copied;
	skb->truesize += truesize;
	return bi.bi_size ? -EMSGSIZE : 0;
}

ZCOPY_SG_FROM_ITER(zcopy_sg_from_iter, zcopy_fill_skb)

/*
 * Hand the pages to the socket; returns bytes sent or an error. A datagram
 * of more pieces of pages than an skb holds (MAX_SKB_FRAGS) is sent by
 * copying them, and so is a send that zcopy_sock_copies() copies (a
 * forward's; other sources copy before they take their pages, but the
 * socket may have changed since). The record says why.
 */
static int zcopy_tx_sendmsg(struct zcopy_tx *tx, struct zcopy_tx_args *args)
{
	struct socket *sock = args->sock;
	struct msghdr msg = {
		.msg_flags = MSG_ZEROCOPY | zcopy_msg_flags(sock, args->flags),
		.msg_ubuf = &tx->ubuf,
		.sg_from_iter = zcopy_sg_from_iter,
	};
	struct ubuf_info *joined = NULL;
	u32 copy;
	int ret;

	if (sock->type == SOCK_DGRAM && tx->nr_pages > MAX_SKB_FRAGS)
		copy = ZCOPY_COPIED_FRAGS;
	else
		copy = zcopy_sock_copies(sock->sk, msg.msg_flags & MSG_MORE);

	/* Without a ubuf the stack copies the pages; the record says why. */
	if (copy) {
		tx->why = copy;
		msg.msg_flags &= ~MSG_ZEROCOPY;
		msg.msg_ubuf = NULL;
	} else {
		joined = zcopy_tx_join_tail(tx, sock->sk);
		if (joined)
			msg.msg_ubuf = joined;
	}

	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, args->bvec, tx->nr_pages, args->len);
	ret = sock_sendmsg(sock, &msg);
	if (ret <= 0 && tx->head != tx)
		zcopy_tx_unjoin(tx, sock->sk);
	if (joined)
		net_zcopy_put(joined);
	return ret;
}

/*
 * Send the pages of @tx, described by @args, and hand @tx to the stack:
 * it completes when the last skb lets go. Returns the bytes sent (also in
 * @args, with their sequence number and stream offset), or an error with
 * no record to come.
 */
int zcopy_tx_submit(struct zcopy_tx *tx, struct zcopy_tx_args *args)
{
	struct zcopy_file *zf = tx->zf;
	int ret;

	tx->why = zcopy_tx_route(args->sock->sk);
	tx->bytes = args->len;
	tx->chain_bytes = args->len;
	kref_get(&zf->ref);
	__module_get(THIS_MODULE);

	ret = zcopy_tx_sendmsg(tx, args);
	/* A predecessor's release may read @tx->bytes meanwhile. */
	if (ret <= 0) {
		tx->failed = true;
		WRITE_ONCE(tx->bytes, 0);
		if (tx->linked)
			zcopy_tx_drop(tx);
		ret = ret ?: -EAGAIN;
	} else {
		WRITE_ONCE(tx->bytes, ret);
		tx->sends = zcopy_run_reached(args, ret);
		zcopy_tx_trim(tx, args->bvec, ret);
		args->bytes = ret;
		args->seq = ZCOPY_NO_SEQ;
		args->offset = ZCOPY_NO_SEQ;
		if (tx->rec) {
			zcopy_records_number(&zf->records, tx->sends, ret, &args->seq,
					     &args->offset);
			tx->rec->c.cookie = args->cookie;
			tx->rec->c.seq = args->seq;
			tx->rec->c.offset = args->offset;
		}
		zcopy_count(zf, tx->ops->ledger->sends, tx->sends);
		zcopy_count(zf, tx->ops->ledger->bytes, ret);
		/* Before our reference goes: the release counts them out. */
		zcopy_count(zf, ZC_SENDS_IN_FLIGHT, tx->sends);
	}
	zcopy_tx_put(tx);
	return ret;
}

int zcopy_send_init(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct zcopy_tx_done *d = per_cpu_ptr(&zcopy_tx_done, cpu);

		init_llist_head(&d->list);
		INIT_WORK(&d->work, zcopy_tx_done_work);
	}
	zcopy_tx_wq = alloc_workqueue("zcopy_tx", 0, 0);
	return zcopy_tx_wq ? 0 : -ENOMEM;
}

/*
 * Every send in flight holds a module reference until it is released, and
 * destroy_workqueue() waits for the release work and the files' last puts.
 * The stack's calls of zcopy_tx_complete() may still be returning, though:
 * those that released, with bottom halves off, and those from softirq or
 * with preemption off are RCU readers, which synchronize_rcu() waits for;
 * a caller in process context preempted right after queue_work() is one
 * that RCU Tasks waits for, as for a trampoline about to be freed.
 */
void zcopy_send_exit(void)
{
	destroy_workqueue(zcopy_tx_wq);
	synchronize_rcu();
	synchronize_rcu_tasks();
}
