// SPDX-License-Identifier: GPL-2.0
/*
 * Registered buffers, a source of pages for the send core: user memory
 * pinned once (ZCOPY_IOC_REGISTER) and sent from many times
 * (ZCOPY_IOC_SEND with ZCOPY_SEND_FIXED), as io_uring's fixed buffers are.
 * A send from one pins nothing and charges nothing: it builds its bio_vecs
 * from the buffer's pages, and the stack takes its own page references.
 *
 * A buffer lives while the file's table or a send in flight holds it: an
 * unregistered buffer, or one of a closed file, is unpinned when the last
 * send from it completes.
 */

#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "zcopy.h"

/**
 * struct zcopy_fixed - a registered buffer
 * @ref:	one for the file's table, one for each send in flight from it
 * @zf:		the file it is charged to, which outlives it: the table's
 *		reference is dropped at the latest on release, and a send
 *		holds the file until after its pages are let go of
 * @uaddr:	the buffer's first byte
 * @len:	its length
 * @nr_pages:	pages pinned, from the page of @uaddr on
 * @mmp:	the RLIMIT_MEMLOCK charge of the pins
 * @pages:	the pinned pages
 */
struct zcopy_fixed {
	struct kref		ref;
	struct zcopy_file	*zf;
	u64			uaddr;
	u64			len;
	unsigned long		nr_pages;
	struct mmpin		mmp;
	struct page		*pages[];
};

/*
 * In process context: a buffer may have max_fd_pages pages to unpin, too
 * many for where the stack lets go of a send (zcopy_fixed_release_atomic()).
 */
static void zcopy_fixed_free(struct kref *ref)
{
	struct zcopy_fixed *buf = container_of(ref, struct zcopy_fixed, ref);

	might_sleep();
	unpin_user_pages(buf->pages, buf->nr_pages);
	zcopy_file_uncharge(buf->zf, buf->nr_pages);
	zcopy_count_pinned(buf->zf, -(long)buf->nr_pages);
	mm_unaccount_pinned_pages(&buf->mmp);
	kvfree(buf);
}

static void zcopy_fixed_put(struct zcopy_fixed *buf)
{
	kref_put(&buf->ref, zcopy_fixed_free);
}

/* The buffer at @index, with a reference, or NULL. */
static struct zcopy_fixed *zcopy_fixed_get(struct zcopy_file *zf, u32 index)
{
	struct zcopy_fixed *buf;

	xa_lock(&zf->fixed);
	buf = xa_load(&zf->fixed, index);
	if (buf)
		kref_get(&buf->ref);
	xa_unlock(&zf->fixed);
	return buf;
}

/* Pin [@uaddr, @uaddr + @len) for @zf: a buffer not yet in the table. */
static struct zcopy_fixed *zcopy_fixed_pin(struct zcopy_file *zf, u64 uaddr, u64 len)
{
	unsigned long nr = DIV_ROUND_UP(offset_in_page(uaddr) + len, PAGE_SIZE);
	struct zcopy_fixed *buf;
	long done;
	int ret;

	ret = zcopy_file_charge(zf, nr);
	if (ret)
		return ERR_PTR(ret);
	ret = -ENOMEM;
	buf = kvzalloc(struct_size(buf, pages, nr), GFP_KERNEL_ACCOUNT);
	if (!buf)
		goto err_uncharge_file;
	ret = zcopy_account_pages(&buf->mmp, nr);
	if (ret) {
		ret = -ENOBUFS;
		goto err_free_buf;
	}
	/* The pages must stay the ones the application writes: see compat.h. */
	done = zcopy_pin_longterm_read(uaddr & PAGE_MASK, nr, buf->pages);
	if (done != nr) {
		if (done > 0)
			unpin_user_pages(buf->pages, done);
		ret = done < 0 ? done : -EFAULT;
		goto err_unaccount;
	}
	kref_init(&buf->ref);
	buf->zf = zf;
	buf->uaddr = uaddr;
	buf->len = len;
	buf->nr_pages = nr;
	zcopy_count_pinned(zf, nr);
	return buf;

err_unaccount:
	mm_unaccount_pinned_pages(&buf->mmp);
err_free_buf:
	kvfree(buf);
err_uncharge_file:
	zcopy_file_uncharge(zf, nr);
	return ERR_PTR(ret);
}

long zcopy_ioctl_register(struct zcopy_file *zf, struct zcopy_register __user *uarg)
{
	struct zcopy_register args;
	struct zcopy_fixed *buf;
	u64 end;
	u32 index;
	int ret;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags || memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!args.len || args.len > ZCOPY_MAX_REGISTER_LEN ||
	    check_add_overflow(args.addr, args.len, &end))
		return -EINVAL;
	if (!access_ok(u64_to_user_ptr(args.addr), args.len))
		return -EFAULT;
	/* The index goes back here: fail now rather than after pinning. */
	if (copy_to_user(uarg, &args, sizeof(args)))
		return -EFAULT;

	buf = zcopy_fixed_pin(zf, args.addr, args.len);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	/*
	 * The table's reference; the first stays ours until the index is
	 * written back, so that @buf is not freed and its address not reused
	 * meanwhile.
	 */
	kref_get(&buf->ref);
	ret = xa_alloc(&zf->fixed, &index, buf, XA_LIMIT(0, ZCOPY_MAX_REGISTERED - 1),
		       GFP_KERNEL_ACCOUNT);
	if (ret) {
		zcopy_fixed_put(buf);
		ret = ret == -EBUSY ? -ENOSPC : ret;
	} else if (put_user(index, &uarg->index)) {
		/*
		 * Writable a moment ago; if no longer, the caller has lost the
		 * index and the buffer goes again, as if never registered:
		 * unless another thread, guessing the index, has unregistered
		 * it meanwhile (and maybe registered another buffer there).
		 */
		if (xa_cmpxchg(&zf->fixed, index, buf, NULL, 0) == buf)
			zcopy_fixed_put(buf);
		ret = -EFAULT;
	}
	zcopy_fixed_put(buf);
	return ret;
}

long zcopy_ioctl_unregister(struct zcopy_file *zf, struct zcopy_unregister __user *uarg)
{
	struct zcopy_unregister args;
	struct zcopy_fixed *buf;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags || memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	buf = xa_erase(&zf->fixed, args.index);
	if (!buf)
		return -ENOENT;
	zcopy_fixed_put(buf);
	return 0;
}

/* The file is being released: its table lets go of every buffer. */
void zcopy_fixed_close(struct zcopy_file *zf)
{
	struct zcopy_fixed *buf;
	unsigned long index;

	xa_for_each(&zf->fixed, index, buf) {
		xa_erase(&zf->fixed, index);
		zcopy_fixed_put(buf);
	}
	xa_destroy(&zf->fixed);
}

/* A send from a buffer holds it, at tx->priv. */
struct zcopy_fixed_tx {
	struct zcopy_fixed	*buf;
};

/* The pages belong to the buffer: a send that took fewer keeps it all the same. */
static void zcopy_fixed_trim(struct zcopy_tx *tx, unsigned int keep)
{
}

/*
 * Where the stack let go of the send, with bottom halves off: drop its
 * reference to the buffer, unless it is the last, which unpins the whole
 * buffer (an unregistered one, or one of a closed file). That is left to
 * the worker, as io_uring unmaps its buffers in task context, and the
 * send's record comes after it: the pages are free when it says so.
 * Nobody takes a reference once the count is down to ours.
 */
static bool zcopy_fixed_release_atomic(struct zcopy_tx *tx)
{
	struct zcopy_fixed_tx *ftx = tx->priv;

	if (!refcount_dec_not_one(&ftx->buf->ref.refcount))
		return false;
	ftx->buf = NULL;
	return true;
}

static void zcopy_fixed_release(struct zcopy_tx *tx, bool sent)
{
	struct zcopy_fixed_tx *ftx = tx->priv;

	if (ftx->buf)
		zcopy_fixed_put(ftx->buf);
}

static const struct zcopy_tx_ops zcopy_fixed_ops = {
	.ledger		= &zcopy_send_ledger,
	.trim		= zcopy_fixed_trim,
	.release	= zcopy_fixed_release,
	.release_atomic	= zcopy_fixed_release_atomic,
};

/*
 * The bio_vecs of @iov, each entry within @buf (else EFAULT), from the
 * buffer's own pages.
 */
static int zcopy_fixed_bvec(struct zcopy_fixed *buf, const struct zcopy_iovec *iov,
			    unsigned int nr_iov, struct bio_vec *bvec)
{
	u64 first = buf->uaddr & PAGE_MASK, len;
	unsigned int i, done = 0;
	unsigned long pg;

	for (i = 0; i < nr_iov; i++) {
		len = iov[i].len;
		if (!len)
			continue;
		if (iov[i].base < buf->uaddr || len > buf->len ||
		    iov[i].base - buf->uaddr > buf->len - len)
			return -EFAULT;
		pg = (iov[i].base - first) >> PAGE_SHIFT;
		done += zcopy_bvec_pages(bvec + done, buf->pages + pg,
					 offset_in_page(iov[i].base), len);
	}
	return 0;
}

/* Hand @buf's pages in @ta to the stack; the send holds @buf until it completes. */
static int zcopy_fixed_submit(struct zcopy_file *zf, struct zcopy_tx_args *ta,
			      struct zcopy_fixed *buf, unsigned int nr_pages)
{
	struct zcopy_fixed_tx *ftx;
	struct zcopy_tx *tx;

	tx = zcopy_tx_alloc(zf, 0, &zcopy_fixed_ops, sizeof(*ftx), true);
	if (IS_ERR(tx))
		return PTR_ERR(tx);
	ftx = tx->priv;
	ftx->buf = buf;
	kref_get(&buf->ref);
	tx->nr_pages = nr_pages;
	return zcopy_tx_submit(tx, ta);
}

/*
 * Send @iov (checked and cut to one send's limits: @nr_pages pages, @ta->len
 * bytes) from the registered buffer at @index. With @copy (why, from
 * zcopy_send_copies(): a short send, or a batch's run of them, a socket
 * that may send MTU probes, a corked datagram) the bytes are copied from
 * the buffer's pages, as any such send is.
 */
int zcopy_send_fixed(struct zcopy_file *zf, struct zcopy_tx_args *ta, u32 index,
		     const struct zcopy_iovec *iov, unsigned int nr_iov,
		     unsigned int nr_pages, u32 copy)
{
	struct bio_vec fast[ZCOPY_FAST_BVEC];
	struct zcopy_fixed *buf;
	struct iov_iter from;
	int ret;

	buf = zcopy_fixed_get(zf, index);
	if (!buf)
		return -ENOENT;
	ret = -ENOMEM;
	ta->bvec = zcopy_bvec_get(fast, nr_pages);
	if (!ta->bvec)
		goto out_put_buf;
	ret = zcopy_fixed_bvec(buf, iov, nr_iov, ta->bvec);
	if (ret)
		goto out_free_bvec;
	if (copy) {
		iov_iter_bvec(&from, ITER_SOURCE, ta->bvec, nr_pages, ta->len);
		ret = zcopy_tx_copy(zf, &zcopy_send_ledger, ta, &from, copy, true);
	} else {
		ret = zcopy_fixed_submit(zf, ta, buf, nr_pages);
	}

out_free_bvec:
	zcopy_bvec_put(ta->bvec, fast);
out_put_buf:
	zcopy_fixed_put(buf);
	return ret;
}
