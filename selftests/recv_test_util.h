/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for recv_test.c, on top of zcopy_test_util.h: a byte pattern
 * derived from the stream offset (so every received byte is checked where
 * it lands), the receive area and its ioctls, a receiver that checks each
 * descriptor of each ZCOPY_IOC_RECV, loopback connections, a pool sender
 * in a forked child (in the peer's netns if need be), MTUs, signals.
 *
 * The zc_* helpers come from zcopy_test_util.h; the rt_* ones are ours.
 * Nothing here uses the harness's ASSERT/EXPECT: helpers return -errno,
 * or fill rt_rx.msg, and the tests assert.
 */
#ifndef RECV_TEST_UTIL_H
#define RECV_TEST_UTIL_H

#include <grp.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <sys/resource.h>
#include <sys/uio.h>

#include "zcopy_test_util.h"

#define RT_MIB		(1024 * 1024ULL)
#define RT_MAPPED_COPIED	(ZCOPY_RX_MAPPED | ZCOPY_RX_COPIED)
#define RT_RX_FLAGS	(ZCOPY_RX_MAPPED | ZCOPY_RX_COPIED | ZCOPY_RX_EOR)

/* An MTU whose TCP payload (with timestamps) is 15 pages: 61440 bytes. */
static inline int rt_page_mtu(int family)
{
	return 61440 + 32 + (family == AF_INET ? 20 : 40);
}

/* ---- the pattern: byte @off of a stream is a function of @off ---- */

static inline uint64_t rt_word(uint64_t idx)
{
	uint64_t z = idx * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint8_t rt_byte(uint64_t off)
{
	return rt_word(off >> 3) >> ((off & 7) * 8);
}

/* Bytes [@off, @off + @len) of the stream into @buf. */
static inline void rt_fill(void *buf, uint64_t off, size_t len)
{
	uint8_t *p = buf;
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		p[i] = rt_byte(off + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = rt_word((off + i) >> 3);

		memcpy(p + i, &w, 8);
	}
	for (; i < len; i++)
		p[i] = rt_byte(off + i);
}

/* The index of the first byte of @buf that is not stream byte @off + i, or @len. */
static inline size_t rt_check(const void *buf, uint64_t off, size_t len)
{
	const uint8_t *p = buf;
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		if (p[i] != rt_byte(off + i))
			return i;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		if (w != rt_word((off + i) >> 3))
			break;
	}
	for (; i < len; i++)
		if (p[i] != rt_byte(off + i))
			return i;
	return len;
}

/* The index of the first non-zero byte of @buf, or @len. */
static inline size_t rt_zero_until(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return i;
	return len;
}

/* ---- the receive area and its ioctls ---- */

/* mmap() the receive area of @zfd: the address, or MAP_FAILED with errno. */
static inline void *rt_mmap_area(int zfd, size_t pages, int prot)
{
	return mmap(NULL, pages * zc_page_size(), prot, MAP_SHARED, zfd, ZCOPY_MMAP_RECV);
}

/* ZCOPY_IOC_RECV with @r as it is: 0 or -errno. */
static inline int rt_recv_raw(int zfd, struct zcopy_recv *r)
{
	return ioctl(zfd, ZCOPY_IOC_RECV, r) ? -errno : 0;
}

/* A receive into @desc (@n entries), no release: 0 with *r filled in, or -errno. */
static inline int rt_recv(int zfd, int sock, struct zcopy_rx_desc *desc, uint32_t n,
			  uint32_t flags, uint32_t timeout_ms, struct zcopy_recv *r)
{
	memset(r, 0, sizeof(*r));
	r->sockfd = sock;
	r->flags = flags;
	r->desc = (uintptr_t)desc;
	r->desc_count = n;
	r->timeout_ms = timeout_ms;
	return rt_recv_raw(zfd, r);
}

/* ZCOPY_IOC_RELEASE of @n area offsets: 0 or -errno. */
static inline int rt_release(int zfd, const uint64_t *offs, uint32_t n)
{
	struct zcopy_release rel = { .offsets = (uintptr_t)offs, .count = n };

	return ioctl(zfd, ZCOPY_IOC_RELEASE, &rel) ? -errno : 0;
}

/* ---- a receiver that checks every descriptor ---- */

/* A slot the receiver holds: where, which stream bytes, how. */
struct rt_slot {
	uint64_t area_off;
	uint64_t stream_off;
	uint32_t len;
	uint32_t flags;
};

/*
 * The receiving side of one connection (or UDP socket) through one zcopy
 * fd and its area. Stream bytes are the pattern from offset 0 on (UDP: the
 * datagrams' payloads, one after the other, are that stream).
 */
struct rt_rx {
	int zfd;
	int sock;
	bool udp;
	const uint8_t *area;
	size_t pages;
	size_t ps;
	uint64_t off;		/* stream bytes received and checked */
	uint64_t mapped;	/* of which in ZCOPY_RX_MAPPED slots */
	uint64_t copied;	/* ... in ZCOPY_RX_COPIED slots */
	uint64_t receives;	/* receives that returned a descriptor */
	uint64_t last_bytes;	/* of the last receive */
	uint32_t last_n;	/* descriptors of the last receive */
	struct rt_slot *slots;	/* held, in the order received */
	size_t nslots;
	uint8_t *busy;		/* per area slot: held */
	struct zcopy_rx_desc desc[ZCOPY_MAX_RX_DESC];
	uint64_t rel[ZCOPY_MAX_RX_DESC];
	bool bad;		/* a receive broke a rule: see msg */
	char msg[512];
};

static inline int rt_rx_init(struct rt_rx *rx, int zfd, int sock, bool udp,
			     const void *area, size_t pages)
{
	memset(rx, 0, sizeof(*rx));
	rx->zfd = zfd;
	rx->sock = sock;
	rx->udp = udp;
	rx->area = area;
	rx->pages = pages;
	rx->ps = zc_page_size();
	rx->slots = calloc(pages, sizeof(*rx->slots));
	rx->busy = calloc(pages, 1);
	return rx->slots && rx->busy ? 0 : -ENOMEM;
}

static inline void rt_rx_free(struct rt_rx *rx)
{
	free(rx->slots);
	free(rx->busy);
	rx->slots = NULL;
	rx->busy = NULL;
}

static inline int __printf(2, 3)
rt_rx_bad(struct rt_rx *rx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rx->msg, sizeof(rx->msg), fmt, ap);
	va_end(ap);
	rx->bad = true;
	return 0;
}

/* Forget slots [0, @n) of rx->slots: they were released. */
static inline void rt_rx_forget(struct rt_rx *rx, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		rx->busy[rx->slots[i].area_off / rx->ps] = 0;
	memmove(rx->slots, rx->slots + n, (rx->nslots - n) * sizeof(*rx->slots));
	rx->nslots -= n;
}

/*
 * The descriptors of a receive that returned @bytes: each in a free slot
 * of the area, page-aligned, mapped (a whole page) or copied (the rest of
 * the page zero), in stream order, every byte the pattern's; for UDP one
 * datagram, copied, its last descriptor (only) with ZCOPY_RX_EOR. A
 * copied slot short of a page ends the receive or comes before a mapped
 * one: copied bytes are packed. Sets rx->bad on the first broken rule.
 */
static inline void rt_rx_take(struct rt_rx *rx, uint32_t asked, uint32_t n, uint64_t bytes)
{
	uint64_t sum = 0, size = (uint64_t)rx->pages * rx->ps;
	uint32_t i;

	rx->last_bytes = bytes;
	rx->last_n = n;
	if (n > asked) {
		rt_rx_bad(rx, "%u descriptors filled, %u asked for", n, asked);
		return;
	}
	if (!rx->udp && !n != !bytes) {
		rt_rx_bad(rx, "%u descriptors for %llu bytes", n, ZC_U64(bytes));
		return;
	}
	if (rx->udp && !n && bytes) {
		rt_rx_bad(rx, "a UDP receive with no descriptor (%llu bytes)", ZC_U64(bytes));
		return;
	}
	for (i = 0; i < n; i++) {
		const struct zcopy_rx_desc *d = &rx->desc[i];
		uint32_t kind = d->flags & RT_MAPPED_COPIED;
		const uint8_t *p = rx->area + d->offset;
		bool last = i + 1 == n;
		size_t bad;

		if (d->offset % rx->ps || d->offset >= size) {
			rt_rx_bad(rx, "desc %u/%u: offset %#llx not a slot of a %zu-page area",
				  i, n, ZC_U64(d->offset), rx->pages);
			return;
		}
		if (rx->busy[d->offset / rx->ps]) {
			rt_rx_bad(rx, "desc %u/%u: slot %#llx is already held",
				  i, n, ZC_U64(d->offset));
			return;
		}
		if ((d->flags & ~RT_RX_FLAGS) || (kind != ZCOPY_RX_MAPPED && kind != ZCOPY_RX_COPIED)) {
			rt_rx_bad(rx, "desc %u/%u: flags %#x", i, n, d->flags);
			return;
		}
		if (d->len > rx->ps || (kind == ZCOPY_RX_MAPPED && d->len != rx->ps)) {
			rt_rx_bad(rx, "desc %u/%u: %s slot of %u bytes", i, n,
				  kind == ZCOPY_RX_MAPPED ? "mapped" : "copied", d->len);
			return;
		}
		if (rx->udp) {
			if (kind != ZCOPY_RX_COPIED || !(d->flags & ZCOPY_RX_EOR) != !last) {
				rt_rx_bad(rx, "UDP desc %u/%u: flags %#x", i, n, d->flags);
				return;
			}
			if (!last && d->len != rx->ps) {
				rt_rx_bad(rx, "UDP desc %u/%u: %u bytes before the last", i, n, d->len);
				return;
			}
			if (last && !d->len && n > 1) {
				rt_rx_bad(rx, "UDP desc %u/%u: an empty last slot", i, n);
				return;
			}
		} else {
			if (d->flags & ZCOPY_RX_EOR) {
				rt_rx_bad(rx, "TCP desc %u/%u: ZCOPY_RX_EOR", i, n);
				return;
			}
			if (!d->len) {
				rt_rx_bad(rx, "TCP desc %u/%u: empty", i, n);
				return;
			}
			if (kind == ZCOPY_RX_COPIED && d->len < rx->ps && !last &&
			    !(rx->desc[i + 1].flags & ZCOPY_RX_MAPPED)) {
				rt_rx_bad(rx, "TCP desc %u/%u: copied slot of %u bytes, then desc %#x of %u",
					  i, n, d->len, rx->desc[i + 1].flags, rx->desc[i + 1].len);
				return;
			}
		}
		bad = rt_check(p, rx->off + sum, d->len);
		if (bad < d->len) {
			rt_rx_bad(rx, "desc %u/%u (slot %#llx, %s, %u bytes): byte %zu is %#x, stream byte %llu is %#x",
				  i, n, ZC_U64(d->offset),
				  kind == ZCOPY_RX_MAPPED ? "mapped" : "copied", d->len, bad,
				  p[bad], ZC_U64(rx->off + sum + bad), rt_byte(rx->off + sum + bad));
			return;
		}
		bad = rt_zero_until(p + d->len, rx->ps - d->len);
		if (bad < rx->ps - d->len) {
			rt_rx_bad(rx, "desc %u/%u (slot %#llx): byte %zu past its %u bytes is %#x, not 0",
				  i, n, ZC_U64(d->offset), d->len + bad, d->len, p[d->len + bad]);
			return;
		}
		rx->busy[d->offset / rx->ps] = 1;
		rx->slots[rx->nslots++] = (struct rt_slot){
			.area_off = d->offset, .stream_off = rx->off + sum,
			.len = d->len, .flags = d->flags,
		};
		if (kind == ZCOPY_RX_MAPPED)
			rx->mapped += d->len;
		else
			rx->copied += d->len;
		sum += d->len;
	}
	if (sum != bytes) {
		rt_rx_bad(rx, "descriptors hold %llu bytes, the receive says %llu",
			  ZC_U64(sum), ZC_U64(bytes));
		return;
	}
	rx->off += sum;
	if (n)
		rx->receives++;
}

/*
 * One receive of up to @ndesc descriptors, releasing every slot held
 * first when @release (in the same call). 0 (rx->bad set if the result
 * broke a rule) or the receive's -errno.
 */
static inline int rt_rx_once(struct rt_rx *rx, uint32_t ndesc, uint32_t flags,
			     uint32_t timeout_ms, uint64_t max_bytes, bool release)
{
	struct zcopy_recv r = {
		.sockfd = rx->sock,
		.flags = flags,
		.desc = (uintptr_t)rx->desc,
		.desc_count = ndesc,
		.timeout_ms = timeout_ms,
		.max_bytes = max_bytes,
	};
	size_t nrel = 0, i;
	int ret;

	if (release && rx->nslots) {
		nrel = rx->nslots < ZCOPY_MAX_RX_DESC ? rx->nslots : ZCOPY_MAX_RX_DESC;
		for (i = 0; i < nrel; i++)
			rx->rel[i] = rx->slots[i].area_off;
		r.release = (uintptr_t)rx->rel;
		r.release_count = nrel;
	}
	memset(rx->desc, 0xa5, ndesc * sizeof(rx->desc[0]));
	ret = rt_recv_raw(rx->zfd, &r);
	if (ret)
		return ret;
	rt_rx_forget(rx, nrel);
	rt_rx_take(rx, ndesc, r.desc_count, r.bytes);
	return 0;
}

/*
 * Receive until rx->off reaches @until (or EOF, or an error), each
 * receive waiting up to @timeout_ms; release as we go when @release.
 * 0, -ENODATA at an early EOF, or -errno.
 */
static inline int rt_rx_until(struct rt_rx *rx, uint64_t until, uint32_t ndesc,
			      uint32_t timeout_ms, bool release)
{
	while (rx->off < until) {
		int ret = rt_rx_once(rx, ndesc, 0, timeout_ms, 0, release);

		if (ret)
			return ret;
		if (rx->bad)
			return 0;
		if (!rx->last_bytes && !rx->last_n)
			return -ENODATA;
	}
	return 0;
}

/* Release every slot held: 0 or -errno. */
static inline int rt_rx_release_all(struct rt_rx *rx)
{
	while (rx->nslots) {
		size_t n = rx->nslots < ZCOPY_MAX_RX_DESC ? rx->nslots : ZCOPY_MAX_RX_DESC, i;
		int ret;

		for (i = 0; i < n; i++)
			rx->rel[i] = rx->slots[i].area_off;
		ret = rt_release(rx->zfd, rx->rel, n);
		if (ret)
			return ret;
		rt_rx_forget(rx, n);
	}
	return 0;
}

/* Every held slot still holds its bytes: 0, or -1 with rx->msg. */
static inline int rt_rx_recheck(struct rt_rx *rx, const uint8_t *area)
{
	size_t i, bad;

	for (i = 0; i < rx->nslots; i++) {
		const struct rt_slot *s = &rx->slots[i];

		bad = rt_check(area + s->area_off, s->stream_off, s->len);
		if (bad < s->len) {
			rt_rx_bad(rx, "slot %#llx (stream %llu, flags %#x): byte %zu is %#x, was %#x",
				  ZC_U64(s->area_off), ZC_U64(s->stream_off), s->flags, bad,
				  area[s->area_off + bad], rt_byte(s->stream_off + bad));
			return -1;
		}
	}
	return 0;
}

/* ---- sockets ---- */

static inline uint16_t rt_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return 0;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
		     ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/*
 * A socket of @type bound to @ip on a free port, listening if TCP, with
 * SO_RCVBUF @rcvbuf if non-zero: the fd, or -errno.
 */
static inline int rt_bind(int family, int type, const char *ip, int rcvbuf)
{
	struct sockaddr_storage ss;
	socklen_t sl = zc_sockaddr(family, ip, 0, &ss);
	int fd = socket(family, type | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	if (rcvbuf && zc_set_buf(fd, SO_RCVBUF, rcvbuf))
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, sl))
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 8))
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

/* A socket of @type connected to @ip:@port: the fd, or -errno. */
static inline int rt_connect(int family, int type, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl = zc_sockaddr(family, ip, port, &ss);
	int fd = socket(family, type | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, sl)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* accept() within @timeout_ms: the fd, or -errno. */
static inline int rt_accept(int lfd, int timeout_ms)
{
	struct pollfd p = { lfd, POLLIN, 0 };
	int fd, ret = poll(&p, 1, timeout_ms);

	if (ret <= 0)
		return ret ? -errno : -ETIMEDOUT;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static inline const char *rt_lo_ip(int family)
{
	return family == AF_INET ? "127.0.0.1" : "::1";
}

/*
 * A TCP connection over loopback: *cli sends, *srv receives (SO_RCVBUF
 * @rcvbuf if non-zero). 0 or -errno.
 */
static inline int rt_tcp_pair(int family, int rcvbuf, int *cli, int *srv)
{
	int lfd = rt_bind(family, SOCK_STREAM, rt_lo_ip(family), rcvbuf), c, s;

	*cli = -1;
	*srv = -1;
	if (lfd < 0)
		return lfd;
	c = rt_connect(family, SOCK_STREAM, rt_lo_ip(family), rt_port(lfd));
	if (c < 0) {
		close(lfd);
		return c;
	}
	s = rt_accept(lfd, 5000);
	close(lfd);
	if (s < 0) {
		close(c);
		return s;
	}
	*cli = c;
	*srv = s;
	return 0;
}

/*
 * Two UDP sockets over loopback: *rxs bound, *txs connected to it (and
 * *rxs to *txs when @connect_back). 0 or -errno.
 */
static inline int rt_udp_pair(int family, bool connect_back, int *txs, int *rxs)
{
	struct sockaddr_storage ss;
	int r = rt_bind(family, SOCK_DGRAM, rt_lo_ip(family), 4 << 20), t;
	socklen_t sl;

	*txs = -1;
	*rxs = -1;
	if (r < 0)
		return r;
	t = rt_connect(family, SOCK_DGRAM, rt_lo_ip(family), rt_port(r));
	if (t < 0) {
		close(r);
		return t;
	}
	if (connect_back) {
		sl = zc_sockaddr(family, rt_lo_ip(family), rt_port(t), &ss);
		if (connect(r, (struct sockaddr *)&ss, sl)) {
			int err = -errno;

			close(r);
			close(t);
			return err;
		}
	}
	*txs = t;
	*rxs = r;
	return 0;
}

/* Stream bytes [@off, @off + @len) with write(): 0 or -errno. */
static inline int rt_write_pattern(int sock, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	size_t done = 0;

	if (!buf)
		return -ENOMEM;
	rt_fill(buf, off, len);
	while (done < len) {
		ssize_t n = send(sock, buf + done, len - done, MSG_NOSIGNAL);

		if (n < 0) {
			int err = -errno;

			if (errno == EINTR)
				continue;
			free(buf);
			return err;
		}
		done += n;
	}
	free(buf);
	return 0;
}

/* Wait until @sock has @bytes to read (FIONREAD): 0 or -ETIMEDOUT. */
static inline int rt_wait_readable(int sock, int bytes, int timeout_ms)
{
	int64_t deadline = zc_now_ms() + timeout_ms;
	int n = 0;

	for (;;) {
		if (!ioctl(sock, FIONREAD, &n) && n >= bytes)
			return 0;
		if (zc_now_ms() > deadline)
			return -ETIMEDOUT;
		zc_sleep_ms(2);
	}
}

/* ---- the pool ---- */

/* All of pool bytes [@off, @off + @len) by page reference: 0 or -errno. */
static inline int rt_pool_send(int zfd, int sock, uint64_t off, uint64_t len)
{
	while (len) {
		struct zcopy_pool_send ps = { .sockfd = sock, .offset = off, .len = len };

		if (ioctl(zfd, ZCOPY_IOC_POOL_SEND, &ps)) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!ps.bytes || ps.bytes > len)
			return -ERANGE;
		off += ps.bytes;
		len -= ps.bytes;
	}
	return 0;
}

/* ---- a sender in a forked child, in the peer's netns if need be ---- */

struct rt_tx_args {
	const char *netns;	/* NULL: the init netns */
	int family;
	const char *ip;		/* the receiver's */
	uint16_t port;
	uint64_t total;		/* stream bytes to send */
	bool pool;		/* pool sends by reference; else send() */
	size_t pool_pages;	/* a ring of this many pages ... */
	size_t chunk_pages;	/* ... sent this many at a time */
};

/* Shared with the sender (MAP_SHARED): it writes, the test reads. */
struct rt_tx_res {
	int32_t done;
	int32_t err;		/* errno of the step that failed */
	char what[64];		/* that step */
	uint64_t bytes;		/* sent */
	struct zcopy_stats st;	/* the sender's fd's ledger, after sending */
};

static inline void __noreturn rt_tx_fail(struct rt_tx_res *res, const char *what, int err)
{
	res->err = err;
	snprintf(res->what, sizeof(res->what), "%s", what);
	_exit(1);
}

/*
 * The sender: connects, and sends stream bytes [0, total): from a pool
 * mapped here (pools are not inherited by fork()), rewriting each chunk of
 * the ring before sending it, or with send(). Closes the socket, exits.
 */
static inline void __noreturn rt_tx_main(const struct rt_tx_args *a, struct rt_tx_res *res)
{
	size_t ps = zc_page_size(), chunk = a->chunk_pages * ps;
	uint8_t *buf = NULL;
	uint64_t off = 0;
	int s, zfd = -1, ret;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	if (a->netns && zc_enter_netns(a->netns))
		rt_tx_fail(res, "setns", errno);
	s = rt_connect(a->family, SOCK_STREAM, a->ip, a->port);
	if (s < 0)
		rt_tx_fail(res, "connect", -s);
	zc_set_buf(s, SO_SNDBUF, 4 << 20);
	if (a->pool) {
		zfd = zc_open();
		if (zfd < 0)
			rt_tx_fail(res, "open " ZCOPY_DEVICE, errno);
		buf = mmap(NULL, a->pool_pages * ps, PROT_READ | PROT_WRITE, MAP_SHARED, zfd,
			   ZCOPY_MMAP_POOL);
		if (buf == MAP_FAILED)
			rt_tx_fail(res, "mmap pool", errno);
	} else {
		buf = malloc(chunk);
		if (!buf)
			rt_tx_fail(res, "malloc", ENOMEM);
	}
	while (off < a->total) {
		uint64_t len = a->total - off < chunk ? a->total - off : chunk;
		uint64_t pos = a->pool ? (off / ps) % a->pool_pages * ps : 0;

		rt_fill(buf + pos, off, len);
		if (a->pool)
			ret = rt_pool_send(zfd, s, pos, len);
		else
			ret = rt_write_pattern(s, off, len);
		if (ret)
			rt_tx_fail(res, a->pool ? "ZCOPY_IOC_POOL_SEND" : "send", -ret);
		off += len;
		__atomic_store_n(&res->bytes, off, __ATOMIC_SEQ_CST);
	}
	if (zfd >= 0 && zc_stats(zfd, 0, &res->st))
		rt_tx_fail(res, "ZCOPY_IOC_STATS", errno);
	if (close(s))
		rt_tx_fail(res, "close", errno);
	__atomic_store_n(&res->done, 1, __ATOMIC_SEQ_CST);
	_exit(0);
}

/* Fork the sender: its pid, or -errno. */
static inline pid_t rt_tx_start(const struct rt_tx_args *a, struct rt_tx_res *res)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid)
		rt_tx_main(a, res);
	return pid;
}

/* ---- the network ---- */

/* `/usr/bin/ip [-n NETNS] link set DEV mtu MTU`: 0 or the failing status. */
static inline int rt_set_mtu(const char *netns, const char *dev, int mtu)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "/usr/bin/ip %s%s link set %s mtu %d",
		 netns ? "-n " : "", netns ? netns : "", dev, mtu);
	return system(cmd);
}

/* The MTU of @dev in the init netns, or -1. */
static inline int rt_get_mtu(const char *dev)
{
	char file[128], buf[32];
	int fd, n;

	snprintf(file, sizeof(file), "/sys/class/net/%s/mtu", dev);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return atoi(buf);
}

/* ---- signals ---- */

static sigjmp_buf rt_jmp;
static int rt_sig_no, rt_sig_code;
static void *rt_sig_addr;

static inline void rt_sig_handler(int sig, siginfo_t *si, void *uc)
{
	__atomic_store_n(&rt_sig_no, sig, __ATOMIC_SEQ_CST);
	__atomic_store_n(&rt_sig_code, si->si_code, __ATOMIC_SEQ_CST);
	__atomic_store_n(&rt_sig_addr, si->si_addr, __ATOMIC_SEQ_CST);
	siglongjmp(rt_jmp, 1);
}

/*
 * Read (or write, when @write) the byte at @p, catching SIGSEGV and
 * SIGBUS: 0 if the access went through, else the signal, with its
 * si_code in *code and si_addr in *addr.
 */
static inline int rt_probe(uint8_t *p, bool write, int *code, void **addr)
{
	struct sigaction sa = { .sa_sigaction = rt_sig_handler, .sa_flags = SA_SIGINFO };
	struct sigaction old_segv, old_bus;
	int sig = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	__atomic_store_n(&rt_sig_no, 0, __ATOMIC_SEQ_CST);
	if (!sigsetjmp(rt_jmp, 1)) {
		if (write)
			__atomic_store_n(p, 0x5a, __ATOMIC_SEQ_CST);
		else
			(void)__atomic_load_n(p, __ATOMIC_SEQ_CST);
	} else {
		sig = __atomic_load_n(&rt_sig_no, __ATOMIC_SEQ_CST);
		*code = __atomic_load_n(&rt_sig_code, __ATOMIC_SEQ_CST);
		*addr = __atomic_load_n(&rt_sig_addr, __ATOMIC_SEQ_CST);
	}
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return sig;
}

/* The PFN behind @addr (read first, so it is mapped), 0 if none or hidden. */
static inline uint64_t rt_pfn(const void *addr)
{
	uint64_t e = 0, ps = zc_page_size();
	int fd;

	(void)__atomic_load_n((const uint8_t *)addr, __ATOMIC_SEQ_CST);
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (pread(fd, &e, sizeof(e), (uintptr_t)addr / ps * sizeof(e)) != sizeof(e))
		e = 0;
	close(fd);
	return e >> 63 ? e & ((1ULL << 55) - 1) : 0;
}

static inline void rt_nop_handler(int sig)
{
}

/* A handler for @sig that interrupts system calls (no SA_RESTART). */
static inline void rt_catch(int sig)
{
	struct sigaction sa = { .sa_handler = rt_nop_handler };

	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* The module's ledger, or zeroes if it cannot be read. */
static inline struct zcopy_stats rt_module_stats(int zfd)
{
	struct zcopy_stats st;

	if (zc_stats(zfd, ZCOPY_STATS_MODULE, &st))
		memset(&st, 0, sizeof(st));
	return st;
}


#endif /* RECV_TEST_UTIL_H */
