// SPDX-License-Identifier: GPL-2.0
/*
 * Zero-copy transmit from pinned user memory.
 *
 * A send pins the user's pages read-only and long-term, charges them to
 * RLIMIT_MEMLOCK as MSG_ZEROCOPY does, and hands them to the socket as
 * fragments: sock_sendmsg() with MSG_ZEROCOPY and a struct ubuf_info of our
 * own in msg_ubuf, as io_uring's send_zc does. Each skb that carries the
 * pages holds a reference to the ubuf; the stack calls zcopy_tx_complete()
 * as each lets go, saying whether it had to copy the pages (local delivery,
 * a tap). After the last reference, a work item unpins the pages, drops the
 * charge, and queues a completion record on the zcopy file, to be read with
 * read(2).
 *
 * Records are never lost: every send reserves its record before anything
 * is pinned, and a file that owes max_records records refuses more sends.
 */

#include <linux/file.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/netdevice.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/sched/user.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/workqueue.h>
#include <net/sock.h>
#include <net/tcp_states.h>

#include "zcopy.h"

static unsigned int max_send_pages = 4096;
module_param(max_send_pages, uint, 0644);
MODULE_PARM_DESC(max_send_pages,
		 "Most pages one send pins; a longer send is cut short (default 4096)");

static unsigned int max_fd_pages = 65536;
module_param(max_fd_pages, uint, 0644);
MODULE_PARM_DESC(max_fd_pages,
		 "Most pages pinned at once for one open zcopy file (default 65536)");

static unsigned int max_records = 4096;
module_param(max_records, uint, 0644);
MODULE_PARM_DESC(max_records,
		 "Most sends in flight plus unread records per open file (default 4096)");

static struct workqueue_struct *zcopy_tx_wq;

/* Merge @next into @prev when it is the next send and left the same way. */
static bool zcopy_record_merge(struct zcopy_completion *prev,
			       const struct zcopy_completion *next)
{
	if (prev->seq + prev->sends != next->seq ||
	    prev->offset + prev->bytes != next->offset ||
	    prev->flags != next->flags || prev->status != next->status)
		return false;
	prev->sends += next->sends;
	prev->bytes += next->bytes;
	prev->copied += next->copied;
	return true;
}

/*
 * Queue @rec among @zf's records in order of sequence, merged with the
 * records of the sends just before and after it where they left the same
 * way: sends complete in any order (those that share an skb, last first),
 * and their byte ranges tile. Returns how many records merging freed.
 */
static int zcopy_record_insert(struct zcopy_file *zf, struct zcopy_record *rec)
{
	struct zcopy_record *prev, *next;
	int freed = 0;

	lockdep_assert_held(&zf->lock);
	/* Completions come nearly in order: look from the newest. */
	list_for_each_entry_reverse(prev, &zf->records, node)
		if (prev->c.seq < rec->c.seq)
			break;
	if (!list_entry_is_head(prev, &zf->records, node) &&
	    zcopy_record_merge(&prev->c, &rec->c)) {
		kfree(rec);
		rec = prev;
		freed++;
	} else {
		list_add(&rec->node, &prev->node);
	}
	next = list_next_entry(rec, node);
	if (!list_entry_is_head(next, &zf->records, node) &&
	    zcopy_record_merge(&rec->c, &next->c)) {
		list_del(&next->node);
		kfree(next);
		freed++;
	}
	return freed;
}

/* Fill in @tx's record, count it in the ledger, and queue it. */
static void zcopy_tx_post(struct zcopy_tx *tx)
{
	struct zcopy_completion *c = &tx->rec->c;
	struct zcopy_file *zf = tx->zf;
	int freed = 1;
	u64 copied = 0;

	if (tx->why == ZCOPY_COPIED_FRAGS) {
		c->flags = ZCOPY_COMPL_COPIED | ZCOPY_COPIED_FRAGS;
		copied = tx->bytes;
	} else if (!tx->zc_used && !tx->zc_copied) {
		/* The stack never took the pages: it copied them at send. */
		c->flags = ZCOPY_COMPL_COPIED | ZCOPY_COPIED_NOT_OFFLOADED;
		copied = tx->bytes;
	} else if (tx->zc_copied) {
		c->flags = ZCOPY_COMPL_COPIED | tx->why;
		copied = min_t(u64, atomic64_read(&tx->copied), tx->bytes);
		/* A copy counted short: what was not copied left as is. */
		if (copied < tx->bytes)
			c->flags |= ZCOPY_COMPL_ZEROCOPY;
	} else {
		c->flags = ZCOPY_COMPL_ZEROCOPY;
	}
	c->bytes = tx->bytes;
	c->copied = copied;
	c->sends = 1;

	zcopy_count(zf, ZC_SEND_COMPLETIONS, 1);
	zcopy_count(zf, ZC_TX_ZEROCOPY_BYTES, tx->bytes - copied);
	zcopy_count(zf, ZC_TX_COPIED_BYTES, copied);
	if (c->flags & (ZCOPY_COPIED_NOT_OFFLOADED | ZCOPY_COPIED_FRAGS))
		zcopy_count(zf, ZC_TX_COPIED_NOT_OFFLOADED, copied);
	else if (c->flags & ZCOPY_COPIED_LOOPBACK)
		zcopy_count(zf, ZC_TX_COPIED_LOOPBACK, copied);
	else
		zcopy_count(zf, ZC_TX_COPIED_STACK, copied);

	spin_lock(&zf->lock);
	if (!zf->closed)
		freed = zcopy_record_insert(zf, tx->rec);
	else
		kfree(tx->rec);
	spin_unlock(&zf->lock);

	/* One record more, less those merged away (or this one, unqueued). */
	zcopy_count(zf, ZC_RECORDS_QUEUED, 1 - freed);
	atomic_sub(freed, &zf->reserved);
	wake_up_interruptible_poll(&zf->wait, EPOLLIN | EPOLLRDNORM);
}

static void zcopy_unpin(struct zcopy_file *zf, struct page **pages,
			unsigned int nr_pages)
{
	unpin_user_pages(pages, nr_pages);
	atomic_long_sub(nr_pages, &zf->pinned);
	zcopy_count_pinned(zf, -(long)nr_pages);
}

/* Let go of pages [from, nr_pages) of @tx, which the stack did not take. */
static void zcopy_tx_drop_pages(struct zcopy_tx *tx, unsigned int from)
{
	if (tx->pool)
		zcopy_pool_tx_put(tx, from, false);
	else
		zcopy_unpin(tx->zf, tx->pages + from, tx->nr_pages - from);
	tx->nr_pages = from;
}

/* After the last reference: process context, never softirq. */
static void zcopy_tx_release(struct zcopy_tx *tx)
{
	struct zcopy_file *zf = tx->zf;

	if (tx->pool) {
		/* The slots are free before the record says so. */
		zcopy_pool_tx_put(tx, 0, !tx->failed);
	} else {
		zcopy_tx_drop_pages(tx, 0);
		mm_unaccount_pinned_pages(&tx->mmp);
	}
	if (tx->failed) {
		kfree(tx->rec);
		zcopy_unreserve_record(zf);
	} else {
		zcopy_tx_post(tx);
	}
	zcopy_count(zf, ZC_SENDS_IN_FLIGHT, -1);
	zcopy_file_put(zf);
	kvfree(tx);
	module_put(THIS_MODULE);
}

static void zcopy_tx_work(struct work_struct *work)
{
	zcopy_tx_release(container_of(work, struct zcopy_tx, work));
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
	if (refcount_dec_and_test(&uarg->refcnt))
		queue_work(zcopy_tx_wq, &tx->work);
}

static const struct ubuf_info_ops zcopy_ubuf_ops = {
	.complete = zcopy_tx_complete,
};

/* Drop the sender's own reference, in process context. */
static void zcopy_tx_put(struct zcopy_tx *tx)
{
	if (refcount_dec_and_test(&tx->ubuf.refcnt))
		zcopy_tx_release(tx);
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

/* TCP or UDP over IPv4 or IPv6, able to send zero-copy, and connected. */
static int zcopy_check_socket(struct socket *sock)
{
	struct sock *sk = sock->sk;
	int state = READ_ONCE(sk->sk_state);

	if (sk->sk_family != AF_INET && sk->sk_family != AF_INET6)
		return -EOPNOTSUPP;

	if (sock->type == SOCK_STREAM && sk->sk_protocol == IPPROTO_TCP) {
		/* A pending error first, as send(2) reports it: ECONNRESET... */
		if (READ_ONCE(sk->sk_err))
			return sock_error(sk);
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

/* The socket behind @fd, if zcopy can send on it; sockfd_put() it after. */
struct socket *zcopy_get_send_socket(int fd)
{
	struct socket *sock;
	int ret;

	sock = sockfd_lookup(fd, &ret);
	if (!sock)
		return ERR_PTR(ret);
	ret = zcopy_check_socket(sock);
	if (ret) {
		sockfd_put(sock);
		return ERR_PTR(ret);
	}
	return sock;
}

/*
 * How much of @len bytes starting @first_offset into a page one send may
 * take: a send longer than max_send_pages pages or MAX_RW_COUNT bytes is
 * cut short there, as write(2) cuts at MAX_RW_COUNT; the caller sees a
 * short count.
 */
size_t zcopy_send_limit(unsigned long first_offset, size_t len)
{
	u64 room = (u64)max(READ_ONCE(max_send_pages), 1U) * PAGE_SIZE - first_offset;

	return min_t(u64, min_t(u64, len, room), MAX_RW_COUNT);
}

/* Check the user's vector, cut it to the limits, and count its pages. */
static int zcopy_check_iov(struct zcopy_iovec *iov, unsigned int *nr_iov,
			   bool dgram, size_t *total, unsigned int *nr_pages)
{
	size_t want;
	unsigned int limit = max(READ_ONCE(max_send_pages), 1U);
	size_t sum = 0, len;
	unsigned int i, pages = 0, n;
	u64 room;

	/* The lengths first, whatever the addresses, as one total. */
	for (i = 0; i < *nr_iov; i++) {
		if (iov[i].len > SSIZE_MAX - sum)
			return -EINVAL;
		sum += iov[i].len;
	}
	if (!sum)
		return -EINVAL;
	for (i = 0; i < *nr_iov; i++)
		if (iov[i].len && !access_ok(u64_to_user_ptr(iov[i].base), iov[i].len))
			return -EFAULT;
	want = sum;

	sum = 0;
	for (i = 0; i < *nr_iov && pages < limit && sum < MAX_RW_COUNT; i++) {
		len = iov[i].len;
		if (!len)
			continue;
		/* What fits in the pages and bytes left. */
		room = (u64)(limit - pages) * PAGE_SIZE - offset_in_page(iov[i].base);
		len = min_t(u64, min_t(u64, len, room), MAX_RW_COUNT - sum);
		iov[i].len = len;
		n = DIV_ROUND_UP(offset_in_page(iov[i].base) + len, PAGE_SIZE);
		pages += n;
		sum += len;
	}
	/* A datagram is sent whole or not at all. */
	if (dgram && sum < want)
		return -EMSGSIZE;
	*nr_iov = i;
	*total = sum;
	*nr_pages = pages;
	return 0;
}

/* Pin the pages of @iov, read-only; all or none. */
static int zcopy_pin_iov(struct zcopy_tx *tx, const struct zcopy_iovec *iov,
			 unsigned int nr_iov, struct bio_vec *bvec)
{
	unsigned int i, done = 0, nr, off, seg;
	unsigned long start;
	size_t len;
	int ret;

	for (i = 0; i < nr_iov; i++) {
		len = iov[i].len;
		if (!len)
			continue;
		start = iov[i].base & PAGE_MASK;
		off = offset_in_page(iov[i].base);
		nr = DIV_ROUND_UP(off + len, PAGE_SIZE);

		ret = pin_user_pages_fast(start, nr, FOLL_LONGTERM, tx->pages + done);
		if (ret != nr) {
			if (ret > 0)
				unpin_user_pages(tx->pages + done, ret);
			ret = ret < 0 ? ret : -EFAULT;
			goto err_unpin;
		}
		for (; nr; nr--, done++, off = 0) {
			seg = min_t(size_t, len, PAGE_SIZE - off);
			bvec_set_page(&bvec[done], tx->pages[done], seg, off);
			len -= seg;
		}
	}
	return 0;

err_unpin:
	unpin_user_pages(tx->pages, done);
	return ret;
}

/*
 * The socket took only @sent bytes: unpin the pages it did not reach, and
 * keep the memlock charge of the bytes sent only, as MSG_ZEROCOPY charges.
 */
static void zcopy_tx_trim(struct zcopy_tx *tx, const struct bio_vec *bvec,
			  size_t sent)
{
	unsigned int keep = 0;
	unsigned long charge;

	while (keep < tx->nr_pages && sent > 0) {
		sent -= min_t(size_t, sent, bvec[keep].bv_len);
		keep++;
	}
	if (keep < tx->nr_pages)
		zcopy_tx_drop_pages(tx, keep);

	charge = (tx->bytes >> PAGE_SHIFT) + 2;
	if (tx->mmp.user && tx->mmp.num_pg > charge) {
		atomic_long_sub(tx->mmp.num_pg - charge, &tx->mmp.user->locked_vm);
		tx->mmp.num_pg = charge;
	}
}

struct zcopy_tx *zcopy_tx_alloc(struct zcopy_file *zf, unsigned int nr_pages)
{
	struct zcopy_tx *tx;

	tx = kvzalloc(struct_size(tx, pages, nr_pages), GFP_KERNEL_ACCOUNT);
	if (!tx)
		return NULL;
	tx->rec = kzalloc(sizeof(*tx->rec), GFP_KERNEL_ACCOUNT);
	if (!tx->rec) {
		kvfree(tx);
		return NULL;
	}
	zcopy_ubuf_set_ops(&tx->ubuf, &zcopy_ubuf_ops);
	tx->ubuf.flags = SKBFL_ZEROCOPY_FRAG | SKBFL_DONT_ORPHAN;
	refcount_set(&tx->ubuf.refcnt, 1);
	INIT_WORK(&tx->work, zcopy_tx_work);
	tx->zf = zf;
	return tx;
}

/* Free a send that was never submitted. */
void zcopy_tx_free(struct zcopy_tx *tx)
{
	kfree(tx->rec);
	kvfree(tx);
}

/* Pinned pages for @zf, within max_fd_pages. */
static int zcopy_charge_file(struct zcopy_file *zf, unsigned int nr_pages)
{
	if (atomic_long_add_return(nr_pages, &zf->pinned) > READ_ONCE(max_fd_pages)) {
		atomic_long_sub(nr_pages, &zf->pinned);
		return -ENOBUFS;
	}
	return 0;
}

/* A record owed to @zf: one of max_records, until read or merged. */
int zcopy_reserve_record(struct zcopy_file *zf)
{
	if (atomic_inc_return(&zf->reserved) > READ_ONCE(max_records)) {
		atomic_dec(&zf->reserved);
		return -ENOSPC;
	}
	return 0;
}

void zcopy_unreserve_record(struct zcopy_file *zf)
{
	atomic_dec(&zf->reserved);
}

/*
 * Hand the pages to the socket; returns bytes sent or an error. A datagram
 * is one skb, which holds at most MAX_SKB_FRAGS pieces of pages: one made
 * of more is sent by copying, and its record says so.
 */
static int zcopy_tx_sendmsg(struct socket *sock, struct zcopy_tx *tx,
			    struct bio_vec *bvec, size_t total, u32 flags)
{
	struct msghdr msg = {
		.msg_flags = MSG_ZEROCOPY | zcopy_msg_flags(sock, flags),
		.msg_ubuf = &tx->ubuf,
	};

	if (sock->type == SOCK_DGRAM && tx->nr_pages > MAX_SKB_FRAGS) {
		msg.msg_flags &= ~MSG_ZEROCOPY;
		msg.msg_ubuf = NULL;
		tx->why = ZCOPY_COPIED_FRAGS;
	}

	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, bvec, tx->nr_pages, total);
	return sock_sendmsg(sock, &msg);
}

/*
 * Send the pages of @tx, described by @bvec, and hand @tx to the stack: it
 * completes when the last skb lets go. Returns the bytes sent, with their
 * sequence number and stream offset, or an error with no record to come.
 */
int zcopy_tx_submit(struct zcopy_tx *tx, struct socket *sock,
		    struct bio_vec *bvec, size_t total, u32 flags, u64 cookie,
		    u64 *seq, u64 *offset)
{
	struct zcopy_file *zf = tx->zf;
	int ret;

	tx->why = zcopy_tx_route(sock->sk);
	zcopy_count(zf, ZC_SENDS_IN_FLIGHT, 1);
	kref_get(&zf->ref);
	__module_get(THIS_MODULE);

	ret = zcopy_tx_sendmsg(sock, tx, bvec, total, flags);
	if (ret <= 0) {
		tx->failed = true;
		ret = ret ?: -EAGAIN;
	} else {
		tx->bytes = ret;
		zcopy_tx_trim(tx, bvec, ret);

		spin_lock(&zf->lock);
		*seq = zf->next_seq++;
		*offset = zf->next_offset;
		zf->next_offset += ret;
		spin_unlock(&zf->lock);
		tx->rec->c.cookie = cookie;
		tx->rec->c.seq = *seq;
		tx->rec->c.offset = *offset;

		zcopy_count(zf, ZC_SENDS, 1);
		zcopy_count(zf, ZC_SEND_BYTES, ret);
	}
	zcopy_tx_put(tx);
	return ret;
}

static int zcopy_send(struct zcopy_file *zf, struct socket *sock,
		      struct zcopy_send *args, struct zcopy_iovec *iov)
{
	unsigned int nr_iov = args->iov_count, nr_pages;
	struct bio_vec *bvec;
	struct zcopy_tx *tx;
	size_t total;
	int ret;

	ret = zcopy_check_iov(iov, &nr_iov, sock->type == SOCK_DGRAM, &total, &nr_pages);
	if (ret)
		return ret;

	ret = zcopy_reserve_record(zf);
	if (ret)
		return ret;
	ret = zcopy_charge_file(zf, nr_pages);
	if (ret)
		goto err_unreserve;
	ret = -ENOMEM;
	tx = zcopy_tx_alloc(zf, nr_pages);
	if (!tx)
		goto err_uncharge_file;
	bvec = kvmalloc_array(nr_pages, sizeof(*bvec), GFP_KERNEL_ACCOUNT);
	if (!bvec)
		goto err_free_tx;
	ret = mm_account_pinned_pages(&tx->mmp, total);
	if (ret)
		goto err_free_bvec;
	ret = zcopy_pin_iov(tx, iov, nr_iov, bvec);
	if (ret)
		goto err_unaccount;
	tx->nr_pages = nr_pages;
	zcopy_count_pinned(zf, nr_pages);

	ret = zcopy_tx_submit(tx, sock, bvec, total, args->flags, args->cookie,
			      &args->seq, &args->offset);
	kvfree(bvec);
	if (ret < 0)
		return ret;
	args->bytes = ret;
	return 0;

err_unaccount:
	mm_unaccount_pinned_pages(&tx->mmp);
err_free_bvec:
	kvfree(bvec);
err_free_tx:
	zcopy_tx_free(tx);
err_uncharge_file:
	atomic_long_sub(nr_pages, &zf->pinned);
err_unreserve:
	zcopy_unreserve_record(zf);
	return ret;
}

long zcopy_ioctl_send(struct zcopy_file *zf, struct zcopy_send __user *uarg)
{
	struct zcopy_iovec *iov;
	struct zcopy_send args;
	struct socket *sock;
	int ret;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~ZCOPY_SEND_FLAGS || args.__pad ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!args.iov_count || args.iov_count > ZCOPY_MAX_IOV)
		return -EINVAL;
	/* The results go back here: fail now rather than after sending. */
	if (copy_to_user(uarg, &args, sizeof(args)))
		return -EFAULT;

	sock = zcopy_get_send_socket(args.sockfd);
	if (IS_ERR(sock))
		return PTR_ERR(sock);

	iov = memdup_user(u64_to_user_ptr(args.iov),
			  array_size(args.iov_count, sizeof(*iov)));
	if (IS_ERR(iov)) {
		ret = PTR_ERR(iov);
		goto out_put_sock;
	}

	ret = zcopy_send(zf, sock, &args, iov);
	if (!ret && copy_to_user(uarg, &args, sizeof(args)))
		ret = -EFAULT;

	kfree(iov);
out_put_sock:
	sockfd_put(sock);
	return ret;
}

/* Read whole records, oldest first; what cannot be copied stays queued. */
ssize_t zcopy_read_records(struct zcopy_file *zf, char __user *buf,
			   size_t count, bool nonblock)
{
	size_t want = count / sizeof(struct zcopy_completion), done = 0;
	struct zcopy_record *rec, *tmp;
	LIST_HEAD(batch);
	int ret;

	if (!want)
		return -EINVAL;

	spin_lock(&zf->lock);
	while (list_empty(&zf->records)) {
		spin_unlock(&zf->lock);
		if (nonblock)
			return -EAGAIN;
		ret = wait_event_interruptible(zf->wait, !list_empty_careful(&zf->records));
		if (ret)
			return ret;
		spin_lock(&zf->lock);
	}
	list_for_each_entry_safe(rec, tmp, &zf->records, node) {
		if (done == want)
			break;
		list_move_tail(&rec->node, &batch);
		done++;
	}
	spin_unlock(&zf->lock);

	done = 0;
	list_for_each_entry_safe(rec, tmp, &batch, node) {
		if (copy_to_user(buf + done * sizeof(rec->c), &rec->c, sizeof(rec->c)))
			break;
		list_del(&rec->node);
		kfree(rec);
		done++;
	}
	if (!list_empty(&batch)) {
		spin_lock(&zf->lock);
		list_splice(&batch, &zf->records);
		spin_unlock(&zf->lock);
	}
	if (done) {
		atomic_sub(done, &zf->reserved);
		zcopy_count(zf, ZC_RECORDS_QUEUED, -(s64)done);
	}
	return done ? done * sizeof(struct zcopy_completion) : -EFAULT;
}

/* The file is closing: no more records; free those still queued. */
void zcopy_free_records(struct zcopy_file *zf)
{
	struct zcopy_record *rec, *tmp;
	LIST_HEAD(dead);
	size_t n = 0;

	spin_lock(&zf->lock);
	zf->closed = true;
	list_splice_init(&zf->records, &dead);
	spin_unlock(&zf->lock);

	list_for_each_entry_safe(rec, tmp, &dead, node) {
		kfree(rec);
		n++;
	}
	atomic_sub(n, &zf->reserved);
	zcopy_count(zf, ZC_RECORDS_QUEUED, -(s64)n);
}

int zcopy_tx_init(void)
{
	zcopy_tx_wq = alloc_workqueue("zcopy_tx", WQ_UNBOUND, 0);
	return zcopy_tx_wq ? 0 : -ENOMEM;
}

/*
 * Every send in flight holds a module reference until its release work
 * has run, and destroy_workqueue() waits for the last of those. The
 * stack's calls of zcopy_tx_complete() may still be returning, though:
 * from softirq or with preemption off, synchronize_rcu() waits for them;
 * a caller in process context preempted right after queue_work() is one
 * that RCU Tasks waits for, as for a trampoline about to be freed.
 */
void zcopy_tx_exit(void)
{
	destroy_workqueue(zcopy_tx_wq);
	synchronize_rcu();
	synchronize_rcu_tasks();
}
