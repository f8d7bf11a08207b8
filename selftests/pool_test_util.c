// SPDX-License-Identifier: GPL-2.0
/*
 * The bodies of pool_test_util.h's helpers.
 */
#include "pool_test_util.h"

void pt_init(struct pt_ctx *c)
{
	int i;

	memset(c, 0, sizeof(*c));
	c->zfd = -1;
	c->ps = zc_page_size();
	c->saved_max_pool_pages = -1;
	c->saved_copy_below = -1;
	for (i = 0; i < PT_MAX_CONNS; i++) {
		c->conn[i].sock = -1;
		c->conn[i].rx.ctl = -1;
	}
	for (i = 0; i < PT_MAX_FDS; i++)
		c->fds[i] = -1;
}

void pt_close_fd(struct pt_ctx *c, int fd)
{
	int i;

	if (fd < 0)
		return;
	if (fd == c->zfd)
		c->zfd = -1;
	for (i = 0; i < PT_MAX_FDS; i++)
		if (c->fds[i] == fd)
			c->fds[i] = -1;
	close(fd);
}

void pt_untrack(struct pt_ctx *c, void *addr)
{
	int i;

	for (i = 0; i < PT_MAX_MAPS; i++)
		if (c->map[i].addr == addr)
			c->map[i].addr = NULL;
}

void *pt_mmap_raw(int fd, size_t len, int prot, int flags, off_t off)
{
	return mmap(NULL, len, prot, flags, fd, off);
}

void pt_unmap(struct pt_ctx *c, void *addr, size_t len)
{
	pt_untrack(c, addr);
	munmap(addr, len);
}

int pt_wait_in_flight(int fd, uint32_t flags, uint64_t want, int timeout_ms,
		      struct zcopy_stats *st)
{
	int64_t deadline = zc_now_ms() + timeout_ms;
	struct zcopy_stats tmp;

	if (!st)
		st = &tmp;
	for (;;) {
		int ret = zc_stats(fd, flags, st);

		if (ret)
			return ret;
		if (st->pool_pages_in_flight == want)
			return 0;
		if (zc_now_ms() > deadline)
			return -ETIMEDOUT;
		zc_sleep_ms(10);
	}
}

void pt_conn_free(struct pt_conn *k)
{
	if (k->sock >= 0)
		close(k->sock);
	k->sock = -1;
	zc_rx_free(&k->rx);
	free(k->dg);
	k->dg = NULL;
}

void pt_account(struct pt_conn *k, const void *src, size_t len)
{
	if (k->net.type == SOCK_STREAM) {
		k->hash = zc_fnv(k->hash, src, len);
		k->bytes += len;
	} else if (k->ndg < ZC_RX_MAX_DGRAMS) {
		k->dg[k->ndg].len = len;
		k->dg[k->ndg].hash = zc_fnv(ZC_FNV_INIT, src, len);
		k->ndg++;
		k->bytes += len;
	}
}

bool pt_has_record(const struct pt_conn *k, uint32_t flags)
{
	return (flags & ZCOPY_POOL_SEND_NOTIFY) || k->net.type == SOCK_DGRAM;
}

int pt_sent(struct pt_ctx *c, struct pt_conn *k, const struct zcopy_pool_send *s,
	    uint64_t off, const void *expect)
{
	if (!s->bytes || s->bytes > s->len)
		return -ERANGE;
	if (k->net.type == SOCK_DGRAM && s->bytes != s->len)
		return -EMSGSIZE;
	if (pt_has_record(k, s->flags)) {
		struct zcopy_send as = {
			.cookie = s->cookie, .bytes = s->bytes,
			.seq = s->seq, .offset = s->stream_offset,
		};

		zc_log_add(&c->log, &as, zc_expected_flags(&k->net, s->len),
			   zc_pages_spanned(off, s->bytes));
	} else if (s->seq != ZCOPY_NO_SEQ || s->stream_offset != ZCOPY_NO_SEQ) {
		return -EPROTO;
	}
	pt_account(k, expect, s->bytes);
	return 0;
}

int pt_send(struct pt_ctx *c, struct pt_conn *k, uint8_t *base, uint64_t off,
	    uint64_t len, uint32_t flags, uint64_t cookie, const void *expect,
	    unsigned int *nsends)
{
	const uint8_t *want = expect;
	uint8_t *before = NULL;
	uint64_t done = 0;
	int ret = 0;

	if (k->net.type == SOCK_DGRAM && k->ndg >= k->window &&
	    zc_rx_wait_for(&k->rx, k->ndg - k->window + 1, 10000))
		return -ETIMEDOUT;
	/* What the pool held before the send, not what a send may have left there. */
	if (!want) {
		before = malloc(len);
		if (!before)
			return -ENOMEM;
		memcpy(before, base + off, len);
		want = before;
	}
	while (done < len) {
		uint64_t where = (flags & ZCOPY_POOL_SEND_ADDR) ?
				 (uint64_t)(uintptr_t)(base + off + done) : off + done;
		struct zcopy_pool_send s = { 0 };

		ret = zc_pool_send(c->zfd, k->sock, where, len - done, flags, cookie, &s);
		if (ret)
			break;
		s.flags = flags;
		s.len = len - done;
		s.cookie = cookie;
		ret = pt_sent(c, k, &s, off + done, want + done);
		if (ret)
			break;
		if (nsends)
			(*nsends)++;
		done += s.bytes;
	}
	free(before);
	return ret;
}
