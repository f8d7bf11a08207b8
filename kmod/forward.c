// SPDX-License-Identifier: GPL-2.0
/*
 * The router path: received pages sent on to another socket, by reference.
 *
 * The pages of the receive area, those the NIC wrote and those zcopy
 * copied into on receipt, are a third source of pages for the send core.
 * A forward holds the slots its pieces lie in (zcopy_rx_hold()) from the
 * ioctl until the stack lets go of the last skb, so that a slot the
 * application gives back meanwhile is not filled again while its page is
 * on its way, and stays charged to the area. Nothing writes to a received
 * page while the stack holds it, so nothing else needs guarding: the NIC
 * does not reuse a page someone holds, and zcopy copies into a page of its
 * own again only once no one else does (zcopy_rx_spare_alone()).
 */

#include <linux/net.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <net/sock.h>

#include "zcopy.h"

/**
 * struct zcopy_fwd - a forward's hold on the receive area
 * @area:	the area, which lives as long as the file the send holds
 * @idx:	the slot of each piece sent, in order
 */
struct zcopy_fwd {
	struct zcopy_rx_area	*area;
	u32			idx[];
};

static const struct zcopy_tx_ledger zcopy_fwd_ledger = {
	.sends		= ZC_FWD_SENDS,
	.bytes		= ZC_FWD_BYTES,
	.completions	= ZC_FWD_COMPLETIONS,
	.zerocopy	= ZC_FWD_ZEROCOPY_BYTES,
	.copied		= ZC_FWD_COPIED_BYTES,
	.not_offloaded	= ZC_FWD_COPIED_NOT_OFFLOADED,
	.loopback	= ZC_FWD_COPIED_LOOPBACK,
	.stack		= ZC_FWD_COPIED_STACK,
	/* Forwards are not copied for being short; were they, counted here. */
	.small		= ZC_FWD_COPIED_NOT_OFFLOADED,
};

/* Let go of the slots of pieces [@from, tx->nr_pages). */
static void zcopy_fwd_unhold(struct zcopy_tx *tx, unsigned int from)
{
	struct zcopy_fwd *fwd = tx->priv;

	zcopy_rx_unhold(fwd->area, fwd->idx + from, tx->nr_pages - from);
	tx->nr_pages = from;
}

static void zcopy_fwd_trim(struct zcopy_tx *tx, unsigned int keep)
{
	zcopy_fwd_unhold(tx, keep);
}

static void zcopy_fwd_release(struct zcopy_tx *tx, bool sent)
{
	zcopy_fwd_unhold(tx, 0);
}

static const struct zcopy_tx_ops zcopy_fwd_ops = {
	.ledger		= &zcopy_fwd_ledger,
	.trim		= zcopy_fwd_trim,
	.release	= zcopy_fwd_release,
};

/* Bytes in @n pieces, or -EINVAL past what one send takes. */
static ssize_t zcopy_fwd_len(const struct zcopy_fwd_piece *p, unsigned int n)
{
	size_t len = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (p[i].__pad)
			return -EINVAL;
		len += p[i].len;
	}
	return len > MAX_RW_COUNT ? -EINVAL : len;
}

static int zcopy_forward(struct zcopy_file *zf, struct zcopy_rx_area *area,
			 struct socket *sock, struct zcopy_forward *args,
			 const struct zcopy_fwd_piece *pieces)
{
	struct zcopy_tx_args ta = { .sock = sock, .flags = args->flags & ZCOPY_SEND_FLAGS,
				    .cookie = args->cookie };
	struct bio_vec fast[ZCOPY_FAST_BVEC];
	unsigned int n = args->count;
	struct zcopy_fwd *fwd;
	struct zcopy_tx *tx;
	ssize_t len;
	int ret;

	len = zcopy_fwd_len(pieces, n);
	if (len < 0)
		return len;
	ta.len = len;

	tx = zcopy_tx_alloc(zf, 0, &zcopy_fwd_ops, struct_size(fwd, idx, n),
			    args->flags & ZCOPY_FORWARD_NOTIFY);
	if (IS_ERR(tx))
		return PTR_ERR(tx);
	fwd = tx->priv;
	fwd->area = area;
	ret = -ENOMEM;
	ta.bvec = zcopy_bvec_get(fast, n);
	if (!ta.bvec)
		goto err_free_tx;
	ret = zcopy_rx_hold(area, pieces, n, ta.bvec, fwd->idx);
	if (ret)
		goto err_free_bvec;
	tx->nr_pages = n;

	ret = zcopy_tx_submit(tx, &ta);
	zcopy_bvec_put(ta.bvec, fast);
	if (ret < 0)
		return ret;
	args->bytes = ta.bytes;
	args->seq = ta.seq;
	args->stream_offset = ta.offset;
	return 0;

err_free_bvec:
	zcopy_bvec_put(ta.bvec, fast);
err_free_tx:
	zcopy_tx_free(tx);
	return ret;
}

long zcopy_ioctl_forward(struct zcopy_file *zf, struct zcopy_forward __user *uarg)
{
	struct zcopy_fwd_piece *pieces;
	struct zcopy_forward args;
	struct zcopy_rx_area *area;
	struct socket *sock;
	int ret;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~ZCOPY_FORWARD_FLAGS || args.__pad ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!args.count || args.count > ZCOPY_MAX_FWD_PIECES)
		return -EINVAL;
	area = zcopy_file_rx(zf);
	if (!area)
		return -ENXIO;
	/* The results go back here: fail now rather than after sending. */
	if (copy_to_user(uarg, &args, sizeof(args)))
		return -EFAULT;

	sock = zcopy_send_socket(args.sockfd, true);
	if (IS_ERR(sock))
		return PTR_ERR(sock);
	pieces = memdup_user(u64_to_user_ptr(args.pieces),
			     array_size(args.count, sizeof(*pieces)));
	if (IS_ERR(pieces)) {
		ret = PTR_ERR(pieces);
		goto out_put_sock;
	}

	ret = zcopy_forward(zf, area, sock, &args, pieces);
	if (!ret && copy_to_user(uarg, &args, sizeof(args)))
		ret = -EFAULT;

	kfree(pieces);
out_put_sock:
	sockfd_put(sock);
	return ret;
}
