// SPDX-License-Identifier: GPL-2.0
/*
 * Pinned user pages, a source of pages for the send core (ZCOPY_IOC_SEND).
 *
 * A send pins the user's pages read-only and long-term, charges each page
 * it pins to RLIMIT_MEMLOCK, as io_uring charges its registered buffers,
 * and unpins them when the stack has let go of them. A file holds at most
 * max_fd_pages pinned at once (zcopy_file_charge()).
 */

#include <linux/file.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/sizes.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "zcopy.h"

/* A pinned send's own state, at tx->priv. */
struct zcopy_pin {
	struct mmpin	mmp;	/* the RLIMIT_MEMLOCK charge of the pins */
};

static void zcopy_unpin(struct zcopy_tx *tx, unsigned int from)
{
	unsigned int nr = tx->nr_pages - from;

	unpin_user_pages(tx->pages + from, nr);
	zcopy_file_uncharge(tx->zf, nr);
	zcopy_count_pinned(tx->zf, -(long)nr);
	tx->nr_pages = from;
}

/*
 * The socket took only the first @keep pages: unpin the others, and give
 * back their memlock charge.
 */
static void zcopy_pin_trim(struct zcopy_tx *tx, unsigned int keep)
{
	struct zcopy_pin *pin = tx->priv;

	zcopy_unpin(tx, keep);
	if (pin->mmp.user && pin->mmp.num_pg > keep) {
		atomic_long_sub(pin->mmp.num_pg - keep, &pin->mmp.user->locked_vm);
		pin->mmp.num_pg = keep;
	}
}

static void zcopy_pin_release(struct zcopy_tx *tx, bool sent)
{
	struct zcopy_pin *pin = tx->priv;

	zcopy_unpin(tx, 0);
	mm_unaccount_pinned_pages(&pin->mmp);
}

static const struct zcopy_tx_ops zcopy_pin_ops = {
	.ledger		= &zcopy_send_ledger,
	.trim		= zcopy_pin_trim,
	.release	= zcopy_pin_release,
	.atomic		= true,
};

/*
 * Check the user's vector, cut it to the limits, and count its pages:
 * *@asked gets the bytes it names, *@total those one send takes.
 */
static int zcopy_check_iov(struct zcopy_iovec *iov, unsigned int *nr_iov,
			   bool dgram, size_t *asked, size_t *total, unsigned int *nr_pages)
{
	unsigned int limit = zcopy_send_max_pages(), i, pages = 0, n;
	size_t want, sum = 0, len;
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
	*asked = want;
	*total = sum;
	*nr_pages = pages;
	return 0;
}

/* Pin the pages of @iov, read-only; all or none. */
static int zcopy_pin_iov(struct zcopy_tx *tx, const struct zcopy_iovec *iov,
			 unsigned int nr_iov, struct bio_vec *bvec)
{
	unsigned int i, done = 0, nr, off;
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
		done += zcopy_bvec_pages(bvec + done, tx->pages + done, off, len);
	}
	return 0;

err_unpin:
	unpin_user_pages(tx->pages, done);
	return ret;
}

/* A send copied for the reason @why, from the user's memory as write(2) does; nothing pinned. */
static int zcopy_send_copy(struct zcopy_file *zf, struct zcopy_tx_args *ta,
			   const struct zcopy_iovec *iov, unsigned int nr_iov, u32 why)
{
	struct iovec fast[UIO_FASTIOV], *vec = fast;
	struct iov_iter from;
	unsigned int i;
	int ret;

	if (nr_iov > UIO_FASTIOV) {
		vec = kmalloc_array(nr_iov, sizeof(*vec), GFP_KERNEL);
		if (!vec)
			return -ENOMEM;
	}
	for (i = 0; i < nr_iov; i++) {
		vec[i].iov_base = u64_to_user_ptr(iov[i].base);
		vec[i].iov_len = iov[i].len;
	}
	iov_iter_init(&from, ITER_SOURCE, vec, nr_iov, ta->len);
	ret = zcopy_tx_copy(zf, &zcopy_send_ledger, ta, &from, why, true);
	if (vec != fast)
		kfree(vec);
	return ret;
}

static int zcopy_send_pinned(struct zcopy_file *zf, struct zcopy_tx_args *ta,
			     const struct zcopy_iovec *iov, unsigned int nr_iov,
			     unsigned int nr_pages)
{
	struct bio_vec fast[ZCOPY_FAST_BVEC];
	struct zcopy_pin *pin;
	struct zcopy_tx *tx;
	int ret;

	ret = zcopy_file_charge(zf, nr_pages);
	if (ret)
		return ret;
	tx = zcopy_tx_alloc(zf, nr_pages, &zcopy_pin_ops, sizeof(*pin), true);
	if (IS_ERR(tx)) {
		ret = PTR_ERR(tx);
		goto err_uncharge_file;
	}
	pin = tx->priv;
	ret = -ENOMEM;
	ta->bvec = zcopy_bvec_get(fast, nr_pages);
	if (!ta->bvec)
		goto err_free_tx;
	/*
	 * The pages pinned, not the bytes sent as MSG_ZEROCOPY charges: a
	 * few bytes from each of many pages pin every one of them, long-term.
	 */
	ret = zcopy_account_pages(&pin->mmp, nr_pages);
	if (ret) {
		ret = -ENOBUFS;
		goto err_free_bvec;
	}
	ret = zcopy_pin_iov(tx, iov, nr_iov, ta->bvec);
	if (ret)
		goto err_unaccount;
	tx->nr_pages = nr_pages;
	zcopy_count_pinned(zf, nr_pages);

	ret = zcopy_tx_submit(tx, ta);
	zcopy_bvec_put(ta->bvec, fast);
	return ret;

err_unaccount:
	mm_unaccount_pinned_pages(&pin->mmp);
err_free_bvec:
	zcopy_bvec_put(ta->bvec, fast);
err_free_tx:
	zcopy_tx_free(tx);
err_uncharge_file:
	zcopy_file_uncharge(zf, nr_pages);
	return ret;
}

/* Vectors this short are copied to the stack, as UIO_FASTIOV iovecs are. */
#define ZCOPY_FAST_IOV	8

/* A send read from the user and checked, not made yet. */
struct zcopy_send_req {
	struct zcopy_send	args;
	struct socket		*sock;
	struct zcopy_iovec	*iov;
	struct zcopy_iovec	fast[ZCOPY_FAST_IOV];
	unsigned int		nr_iov;		/* of @iov, cut to one send's limits */
	unsigned int		nr_pages;
	size_t			asked;		/* bytes @iov names */
	size_t			len;		/* bytes one send takes of them */
	u32			copy;		/* zcopy_send_copies() of them */
};

/* A send's results, adjacent in struct zcopy_send: bytes, seq and offset. */
static int zcopy_send_put_results(struct zcopy_send __user *uarg, const struct zcopy_send *args)
{
	size_t len = offsetofend(struct zcopy_send, offset) - offsetof(struct zcopy_send, bytes);

	/* Three words, twice a send: no call into copy_to_user() for them. */
	if (!user_write_access_begin(&uarg->bytes, len))
		return -EFAULT;
	unsafe_put_user(args->bytes, &uarg->bytes, efault);
	unsafe_put_user(args->seq, &uarg->seq, efault);
	unsafe_put_user(args->offset, &uarg->offset, efault);
	user_write_access_end();
	return 0;

efault:
	user_write_access_end();
	return -EFAULT;
}

static void zcopy_send_req_put(struct zcopy_send_req *req)
{
	if (req->iov != req->fast)
		kfree(req->iov);
	if (req->sock)
		sockfd_put(req->sock);
}

/*
 * Read the send at @uarg into @req and check it; on success the caller
 * puts @req. @first: not a batch's later entry (zcopy_check_socket()).
 */
static int zcopy_send_read(struct zcopy_send __user *uarg, struct zcopy_send_req *req,
			   bool first)
{
	struct zcopy_send *args = &req->args;
	int ret;

	if (copy_from_user(args, uarg, sizeof(*args)))
		return -EFAULT;
	if (args->flags & ~(ZCOPY_SEND_FLAGS | ZCOPY_SEND_FIXED) ||
	    (args->buf_index && !(args->flags & ZCOPY_SEND_FIXED)) ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	if (!args->iov_count || args->iov_count > ZCOPY_MAX_IOV)
		return -EINVAL;
	/* The results go back here: fail now rather than after sending. */
	if (zcopy_send_put_results(uarg, args))
		return -EFAULT;

	req->sock = zcopy_send_socket(args->sockfd, first);
	if (IS_ERR(req->sock))
		return PTR_ERR(req->sock);

	req->iov = req->fast;
	if (args->iov_count <= ZCOPY_FAST_IOV) {
		ret = -EFAULT;
		if (copy_from_user(req->fast, u64_to_user_ptr(args->iov),
				   args->iov_count * sizeof(*req->iov)))
			goto err_put;
	} else {
		req->iov = memdup_user(u64_to_user_ptr(args->iov),
				       array_size(args->iov_count, sizeof(*req->iov)));
		if (IS_ERR(req->iov)) {
			ret = PTR_ERR(req->iov);
			req->iov = req->fast;
			goto err_put;
		}
	}

	req->nr_iov = args->iov_count;
	ret = zcopy_check_iov(req->iov, &req->nr_iov, req->sock->type == SOCK_DGRAM,
			      &req->asked, &req->len, &req->nr_pages);
	if (ret)
		goto err_put;
	req->copy = zcopy_send_copies(req->sock, req->len, args->flags);
	return 0;

err_put:
	zcopy_send_req_put(req);
	return ret;
}

/*
 * Make @iov a send of @ta->flags: copied if @copy says why
 * (zcopy_send_copies()), else of its pages, pinned now or, with
 * ZCOPY_SEND_FIXED, the registered buffer @buf_index's.
 */
static int zcopy_send_make(struct zcopy_file *zf, struct zcopy_tx_args *ta, u32 buf_index,
			   u32 copy, const struct zcopy_iovec *iov, unsigned int nr_iov,
			   unsigned int nr_pages)
{
	if (ta->flags & ZCOPY_SEND_FIXED)
		return zcopy_send_fixed(zf, ta, buf_index, iov, nr_iov, nr_pages, copy);
	if (copy)
		return zcopy_send_copy(zf, ta, iov, nr_iov, copy);
	return zcopy_send_pinned(zf, ta, iov, nr_iov, nr_pages);
}

/*
 * Make the send @req describes and write its results back to @uarg;
 * *@whole says whether it took every byte named.
 */
static int zcopy_send(struct zcopy_file *zf, struct zcopy_send_req *req,
		      struct zcopy_send __user *uarg, bool *whole)
{
	struct zcopy_tx_args ta = { .sock = req->sock, .len = req->len,
				    .flags = req->args.flags, .cookie = req->args.cookie };
	struct zcopy_send *args = &req->args;
	int ret;

	*whole = false;
	ret = zcopy_send_make(zf, &ta, args->buf_index, req->copy, req->iov, req->nr_iov,
			      req->nr_pages);
	if (ret < 0)
		return ret;
	args->bytes = ta.bytes;
	args->seq = ta.seq;
	args->offset = ta.offset;
	*whole = ta.bytes == req->asked;
	return zcopy_send_put_results(uarg, args);
}

long zcopy_ioctl_send(struct zcopy_file *zf, struct zcopy_send __user *uarg)
{
	struct zcopy_send_req req;
	bool whole;
	int ret;

	ret = zcopy_send_read(uarg, &req, true);
	if (ret)
		return ret;
	ret = zcopy_send(zf, &req, uarg, &whole);
	zcopy_send_req_put(&req);
	return ret;
}

/*
 * A run of a batch's sends, all copied or none, all from plain memory or
 * all from one registered buffer: see ZCOPY_RUN_BYTES.
 */
struct zcopy_send_run {
	struct socket		*sock;		/* a reference, while @nr */
	u32			flags;
	u32			buf_index;	/* with ZCOPY_SEND_FIXED */
	u32			copy;		/* why copied, 0: sent as pages */
	u32			first;		/* the batch entry of the first send */
	unsigned int		nr;
	unsigned int		nr_iov;
	unsigned int		nr_pages;
	size_t			len;
	u32			lens[ZCOPY_RUN_SENDS];
	struct {
		u64		cookie;
		u16		nr_iov;
		u16		nr_pages;
	}			send[ZCOPY_RUN_SENDS];
	struct zcopy_iovec	iov[ZCOPY_RUN_VECS];
};

/* Whether @req is a send that a run can take: whole, on a stream. */
static bool zcopy_send_runs(const struct zcopy_send_req *req)
{
	return req->sock->type == SOCK_STREAM && req->len == req->asked &&
	       req->len <= ZCOPY_RUN_BYTES && req->nr_iov <= ZCOPY_RUN_VECS;
}

/* Whether @req can join @run, which has sends; a full run takes none. */
static bool zcopy_send_run_takes(const struct zcopy_send_run *run,
				 const struct zcopy_send_req *req)
{
	return zcopy_send_runs(req) && req->sock == run->sock &&
	       req->args.flags == run->flags && req->args.buf_index == run->buf_index &&
	       req->copy == run->copy &&
	       run->nr < ZCOPY_RUN_SENDS &&
	       run->nr_iov + req->nr_iov <= ZCOPY_RUN_VECS &&
	       run->len + req->len <= ZCOPY_RUN_BYTES;
}

/* Add the send @req, batch entry @index, to @run; it takes @req's socket if first. */
static void zcopy_send_run_add(struct zcopy_send_run *run, struct zcopy_send_req *req,
			       u32 index)
{
	if (!run->nr) {
		run->sock = req->sock;
		req->sock = NULL;
		run->flags = req->args.flags;
		run->buf_index = req->args.buf_index;
		run->copy = req->copy;
		run->first = index;
		run->nr_iov = 0;
		run->nr_pages = 0;
		run->len = 0;
	}
	memcpy(run->iov + run->nr_iov, req->iov, req->nr_iov * sizeof(*req->iov));
	run->nr_iov += req->nr_iov;
	run->nr_pages += req->nr_pages;
	run->send[run->nr].cookie = req->args.cookie;
	run->send[run->nr].nr_iov = req->nr_iov;
	run->send[run->nr].nr_pages = req->nr_pages;
	run->lens[run->nr++] = req->len;
	run->len += req->len;
}

/* Write the results of @run's sends that @bytes from @seq and @offset reached. */
static int zcopy_send_run_results(struct zcopy_send_run *run, struct zcopy_send __user *sends,
				  size_t bytes, u64 seq, u64 offset, u32 *done)
{
	struct zcopy_send res = { .seq = seq, .offset = offset };
	unsigned int i;
	int ret;

	for (i = 0; i < run->nr && bytes; i++) {
		res.bytes = min_t(size_t, bytes, run->lens[i]);
		ret = zcopy_send_put_results(&sends[run->first + i], &res);
		if (ret)
			return ret;
		*done = run->first + i + 1;
		bytes -= res.bytes;
		res.seq++;
		res.offset += res.bytes;
	}
	return 0;
}

/*
 * The sends of a run of pages that could not go as one (a pin or a charge
 * refused, a vector outside the registered buffer) go one by one, as they
 * would have without runs: those before the one refused are made, and it
 * says why.
 */
static int zcopy_send_run_each(struct zcopy_file *zf, struct zcopy_send_run *run,
			       struct zcopy_send __user *sends, u32 *done, bool *whole)
{
	const struct zcopy_iovec *iov = run->iov;
	struct zcopy_send res;
	unsigned int i;
	int ret;

	for (i = 0; i < run->nr; iov += run->send[i++].nr_iov) {
		struct zcopy_tx_args ta = { .sock = run->sock, .len = run->lens[i],
					    .flags = run->flags,
					    .cookie = run->send[i].cookie };

		ret = zcopy_send_make(zf, &ta, run->buf_index, run->copy, iov,
				      run->send[i].nr_iov, run->send[i].nr_pages);
		if (ret < 0)
			return ret;
		res.bytes = ta.bytes;
		res.seq = ta.seq;
		res.offset = ta.offset;
		ret = zcopy_send_put_results(&sends[run->first + i], &res);
		if (ret)
			return ret;
		*done = run->first + i + 1;
		if (ta.bytes < run->lens[i])
			return 0;
	}
	*whole = true;
	return 0;
}

/*
 * Whether @run, which sent nothing (TCP fails a send only when it queued
 * none of it), may have been refused for one of its sends: a fault in
 * that send's memory, whether copied or pinned, or its pin or charge.
 */
static bool zcopy_send_run_refused_one(const struct zcopy_send_run *run, int ret)
{
	if (run->nr < 2)
		return false;
	if (ret == -EFAULT)
		return true;
	return (ret == -ENOBUFS || ret == -ENOMEM) &&
	       (!run->copy || (run->flags & ZCOPY_SEND_FIXED));
}

/*
 * Send @run and write each send's results back to its entry of @sends:
 * *@done moves past the sends made, and *@whole says whether all of them
 * were made whole. The run is empty after.
 */
static int zcopy_send_run_flush(struct zcopy_file *zf, struct zcopy_send_run *run,
				struct zcopy_send __user *sends, u32 *done, bool *whole)
{
	struct zcopy_tx_args ta = { .sock = run->sock, .len = run->len, .lens = run->lens,
				    .nr_sends = run->nr, .flags = run->flags,
				    .cookie = run->send[0].cookie };
	int ret;

	*whole = false;
	ret = zcopy_send_make(zf, &ta, run->buf_index, run->copy, run->iov, run->nr_iov,
			      run->nr_pages);
	if (zcopy_send_run_refused_one(run, ret)) {
		ret = zcopy_send_run_each(zf, run, sends, done, whole);
		goto out;
	}
	if (ret < 0)
		goto out;
	*whole = (size_t)ret == run->len;
	ret = zcopy_send_run_results(run, sends, ret, ta.seq, ta.offset, done);
	if (ret)
		*whole = false;
out:
	sockfd_put(run->sock);
	run->nr = 0;
	return ret;
}

/*
 * Sends in order until one fails or is short, as sendmmsg(2): an error
 * only when nothing was sent, else the count made (a short one counts).
 */
long zcopy_ioctl_send_batch(struct zcopy_file *zf, struct zcopy_send_batch __user *uarg)
{
	struct zcopy_send_run *run = NULL;
	struct zcopy_send_batch args;
	struct zcopy_send __user *sends;
	struct zcopy_send_req req;
	bool whole = true;
	u32 i, done = 0;
	int ret = 0;

	ret = zcopy_batch_read(uarg, &args);
	if (ret)
		return ret;
	sends = u64_to_user_ptr(args.sends);
	for (i = 0; i < args.count && whole; i++) {
		ret = zcopy_send_read(&sends[i], &req, !i);
		if (ret)
			break;
		if (run && run->nr && !zcopy_send_run_takes(run, &req)) {
			ret = zcopy_send_run_flush(zf, run, sends, &done, &whole);
			if (ret || !whole) {
				zcopy_send_req_put(&req);
				break;
			}
		}
		/* An empty run; without memory for one, each send goes alone. */
		if (!run && args.count > 1 && zcopy_send_runs(&req))
			run = kzalloc(sizeof(*run), GFP_KERNEL);
		if (run && zcopy_send_runs(&req)) {
			zcopy_send_run_add(run, &req, i);
			zcopy_send_req_put(&req);
			cond_resched();
			continue;
		}
		ret = zcopy_send(zf, &req, &sends[i], &whole);
		zcopy_send_req_put(&req);
		if (ret)
			break;
		done = i + 1;
		cond_resched();
	}
	/* The sends before a failing one go; the batch fails as its first send. */
	if (run && run->nr) {
		int err = zcopy_send_run_flush(zf, run, sends, &done, &whole);

		if (err)
			ret = err;
	}
	kfree(run);
	return zcopy_batch_done(uarg, done, ret);
}
