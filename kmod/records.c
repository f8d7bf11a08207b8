// SPDX-License-Identifier: GPL-2.0
/*
 * Completion records, read with read(2) from the zcopy file.
 *
 * Every send that will have a record reserves it before anything is
 * pinned or taken, so records are never lost: a file that owes
 * max_records records refuses more sends (ENOSPC). The queue is kept in
 * order of sequence, and a record merges with those of the sends just
 * before and after it where they left the same way: sends complete in any
 * order (those that share an skb, last first), and their byte ranges tile.
 */

#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "zcopy.h"

static unsigned int max_records = 4096;
module_param(max_records, uint, 0644);
MODULE_PARM_DESC(max_records,
		 "Most sends in flight plus unread records per open file (default 4096)");

void zcopy_records_init(struct zcopy_records *r)
{
	spin_lock_init(&r->lock);
	INIT_LIST_HEAD(&r->list);
	init_waitqueue_head(&r->wait);
}

static void zcopy_records_unreserve(struct zcopy_records *r, int n)
{
	atomic_sub(n, &r->reserved);
}

/*
 * A record for a send, owed until read or merged away: one of max_records
 * (ENOSPC past them). Merged records are kept for the next send, so that a
 * stream of sends whose records merge allocates none.
 */
struct zcopy_record *zcopy_record_get(struct zcopy_records *r)
{
	struct zcopy_record *rec;

	if (atomic_inc_return(&r->reserved) > READ_ONCE(max_records)) {
		atomic_dec(&r->reserved);
		return ERR_PTR(-ENOSPC);
	}
	spin_lock_bh(&r->lock);
	rec = r->spare;
	r->spare = NULL;
	spin_unlock_bh(&r->lock);
	if (rec) {
		memset(&rec->c, 0, sizeof(rec->c));
		return rec;
	}
	rec = kzalloc(sizeof(*rec), GFP_KERNEL_ACCOUNT);
	if (!rec) {
		zcopy_records_unreserve(r, 1);
		return ERR_PTR(-ENOMEM);
	}
	return rec;
}

/*
 * Keep @rec as the spare, unless there is one or the file is gone; returns
 * what the caller frees once it has dropped the lock.
 */
static struct zcopy_record *zcopy_record_recycle(struct zcopy_records *r,
						 struct zcopy_record *rec)
{
	lockdep_assert_held(&r->lock);
	if (r->closed || r->spare)
		return rec;
	r->spare = rec;
	return NULL;
}

/* A record got for a send that never happened. */
void zcopy_record_put(struct zcopy_records *r, struct zcopy_record *rec)
{
	spin_lock_bh(&r->lock);
	rec = zcopy_record_recycle(r, rec);
	spin_unlock_bh(&r->lock);
	kfree(rec);
	zcopy_records_unreserve(r, 1);
}

/*
 * The sequence number and stream offset of the first of @sends sends of
 * @bytes in all, in order; the others follow it.
 */
void zcopy_records_number(struct zcopy_records *r, unsigned int sends, u64 bytes,
			  u64 *seq, u64 *offset)
{
	spin_lock_bh(&r->lock);
	*seq = r->next_seq;
	r->next_seq += sends;
	*offset = r->next_offset;
	r->next_offset += bytes;
	spin_unlock_bh(&r->lock);
}

/*
 * Merge @next into @prev when it is the next send and left the same way,
 * and their sends still fit the record's count.
 */
static bool zcopy_record_merge(struct zcopy_completion *prev,
			       const struct zcopy_completion *next)
{
	u32 sends;

	if (prev->seq + prev->sends != next->seq ||
	    prev->offset + prev->bytes != next->offset ||
	    prev->flags != next->flags || prev->status != next->status ||
	    check_add_overflow(prev->sends, next->sends, &sends))
		return false;
	prev->sends = sends;
	prev->bytes += next->bytes;
	prev->copied += next->copied;
	return true;
}

/*
 * Where a record of sequence @seq goes: after the record returned, or
 * first when that is the list's head.
 */
static struct zcopy_record *zcopy_records_pos(struct zcopy_records *r, u64 seq)
{
	struct zcopy_record *prev;

	lockdep_assert_held(&r->lock);
	/* Completions come nearly in order: look from the newest. */
	list_for_each_entry_reverse(prev, &r->list, node)
		if (prev->c.seq < seq)
			break;
	return prev;
}

/*
 * Queue @rec in order of sequence, merged with its neighbours where it
 * can be; it is freed if merged or if the file is gone. Returns how many
 * more records wait now (1, 0 or -1) and gives back the reservations of
 * those merged away.
 */
int zcopy_records_post(struct zcopy_records *r, struct zcopy_record *rec)
{
	struct zcopy_record *prev, *next, *dead[2] = { NULL, NULL };
	int freed = 0;

	spin_lock_bh(&r->lock);
	if (r->closed) {
		dead[0] = rec;
		freed = 1;
		goto out_unlock;
	}
	prev = zcopy_records_pos(r, rec->c.seq);
	if (!list_entry_is_head(prev, &r->list, node) &&
	    zcopy_record_merge(&prev->c, &rec->c)) {
		dead[0] = zcopy_record_recycle(r, rec);
		rec = prev;
		freed++;
	} else {
		list_add(&rec->node, &prev->node);
	}
	next = list_next_entry(rec, node);
	if (!list_entry_is_head(next, &r->list, node) &&
	    zcopy_record_merge(&rec->c, &next->c)) {
		list_del(&next->node);
		dead[1] = zcopy_record_recycle(r, next);
		freed++;
	}
out_unlock:
	spin_unlock_bh(&r->lock);
	kfree(dead[0]);
	kfree(dead[1]);

	zcopy_records_unreserve(r, freed);
	/* Pairs with the barrier of the waiter's prepare_to_wait(). */
	if (wq_has_sleeper(&r->wait))
		wake_up_interruptible_poll(&r->wait, EPOLLIN | EPOLLRDNORM);
	return 1 - freed;
}

/*
 * Queue again the records of @batch that a read could not copy, in order
 * of sequence among those posted meanwhile (unmerged: the file's count of
 * queued records stays right).
 */
static void zcopy_records_unread(struct zcopy_records *r, struct list_head *batch)
{
	struct zcopy_record *rec, *tmp;

	spin_lock_bh(&r->lock);
	list_for_each_entry_safe(rec, tmp, batch, node)
		list_move(&rec->node, &zcopy_records_pos(r, rec->c.seq)->node);
	spin_unlock_bh(&r->lock);
	/* Another reader may have found the queue empty meanwhile. */
	if (wq_has_sleeper(&r->wait))
		wake_up_interruptible_poll(&r->wait, EPOLLIN | EPOLLRDNORM);
}

/* Read whole records, oldest first; what cannot be copied stays queued. */
ssize_t zcopy_records_read(struct zcopy_records *r, char __user *buf, size_t count,
			   bool nonblock)
{
	size_t want = count / sizeof(struct zcopy_completion), done = 0;
	struct zcopy_record *rec, *tmp;
	LIST_HEAD(batch);
	int ret;

	if (!want)
		return -EINVAL;

	spin_lock_bh(&r->lock);
	while (list_empty(&r->list)) {
		spin_unlock_bh(&r->lock);
		if (nonblock)
			return -EAGAIN;
		ret = wait_event_interruptible(r->wait, !list_empty_careful(&r->list));
		if (ret)
			return ret;
		spin_lock_bh(&r->lock);
	}
	list_for_each_entry_safe(rec, tmp, &r->list, node) {
		if (done == want)
			break;
		list_move_tail(&rec->node, &batch);
		done++;
	}
	spin_unlock_bh(&r->lock);

	done = 0;
	list_for_each_entry_safe(rec, tmp, &batch, node) {
		if (copy_to_user(buf + done * sizeof(rec->c), &rec->c, sizeof(rec->c)))
			break;
		list_del(&rec->node);
		kfree(rec);
		done++;
	}
	if (!list_empty(&batch))
		zcopy_records_unread(r, &batch);
	zcopy_records_unreserve(r, done);
	return done ? done * sizeof(struct zcopy_completion) : -EFAULT;
}

__poll_t zcopy_records_poll(struct zcopy_records *r, struct file *file, poll_table *wait)
{
	poll_wait(file, &r->wait, wait);
	/* Pairs with wq_has_sleeper() in zcopy_records_post(), as sock_poll_wait(). */
	smp_mb();
	return list_empty_careful(&r->list) ? 0 : EPOLLIN | EPOLLRDNORM;
}

/* The file is closing: no more records; frees those queued, returns how many. */
int zcopy_records_close(struct zcopy_records *r)
{
	struct zcopy_record *rec, *tmp;
	LIST_HEAD(dead);
	int n = 0;

	spin_lock_bh(&r->lock);
	r->closed = true;
	list_splice_init(&r->list, &dead);
	kfree(r->spare);
	r->spare = NULL;
	spin_unlock_bh(&r->lock);

	list_for_each_entry_safe(rec, tmp, &dead, node) {
		kfree(rec);
		n++;
	}
	zcopy_records_unreserve(r, n);
	return n;
}
