// SPDX-License-Identifier: GPL-2.0
/*
 * libzcopy: see libzcopy.h.
 *
 * The pattern: byte o of the stream is byte (o % 8), little-endian, of
 * zc_word(o / 8), where zc_word() is a bijection of 64-bit integers. So a
 * receiver checks every byte against its stream offset, and, given any
 * eight consecutive bytes of the pattern, tells at which offset they lie:
 * a UDP receiver finds where each datagram belongs even after a loss.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libzcopy.h"

static int zc_ioctl(int zfd, unsigned long cmd, void *arg)
{
	return ioctl(zfd, cmd, arg) ? -errno : 0;
}

int zc_open(void)
{
	return open(ZCOPY_DEVICE, O_RDWR | O_CLOEXEC);
}

int zc_info(int zfd, struct zcopy_info *info)
{
	memset(info, 0, sizeof(*info));
	return zc_ioctl(zfd, ZCOPY_IOC_INFO, info);
}

uint64_t zc_features(int zfd)
{
	struct zcopy_info info;

	return zc_info(zfd, &info) ? 0 : info.features;
}

int zc_stats(int zfd, uint32_t flags, struct zcopy_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->flags = flags;
	return zc_ioctl(zfd, ZCOPY_IOC_STATS, st);
}

/* ZCOPY_IOC_SEND of @s; *@out (may be NULL) gets the results. */
static int zc_send_args(int zfd, struct zcopy_send *s, struct zcopy_send *out)
{
	int ret = zc_ioctl(zfd, ZCOPY_IOC_SEND, s);

	if (!ret && out)
		*out = *s;
	return ret;
}

int zc_send(int zfd, int sock, const struct zcopy_iovec *iov, uint32_t n,
	    uint32_t flags, uint64_t cookie, struct zcopy_send *out)
{
	struct zcopy_send s = {
		.sockfd = sock,
		.flags = flags,
		.iov = (uintptr_t)iov,
		.iov_count = n,
		.cookie = cookie,
	};

	return zc_send_args(zfd, &s, out);
}

int zc_send_batch(int zfd, struct zcopy_send *sends, uint32_t n)
{
	struct zcopy_send_batch b = { .sends = (uintptr_t)sends, .count = n };
	int ret = zc_ioctl(zfd, ZCOPY_IOC_SEND_BATCH, &b);

	return ret ? ret : (int)b.done;
}

int zc_pool_send_batch(int zfd, struct zcopy_pool_send *sends, uint32_t n)
{
	struct zcopy_send_batch b = { .sends = (uintptr_t)sends, .count = n };
	int ret = zc_ioctl(zfd, ZCOPY_IOC_POOL_SEND_BATCH, &b);

	return ret ? ret : (int)b.done;
}

int zc_register(int zfd, const void *buf, size_t len)
{
	struct zcopy_register r = { .addr = (uintptr_t)buf, .len = len };
	int ret = zc_ioctl(zfd, ZCOPY_IOC_REGISTER, &r);

	return ret ? ret : (int)r.index;
}

int zc_unregister(int zfd, uint32_t index)
{
	struct zcopy_unregister u = { .index = index };

	return zc_ioctl(zfd, ZCOPY_IOC_UNREGISTER, &u);
}

int zc_send_fixed(int zfd, int sock, uint32_t index, const struct zcopy_iovec *iov,
		  uint32_t n, uint32_t flags, uint64_t cookie, struct zcopy_send *out)
{
	struct zcopy_send s = {
		.sockfd = sock,
		.flags = flags | ZCOPY_SEND_FIXED,
		.iov = (uintptr_t)iov,
		.iov_count = n,
		.buf_index = index,
		.cookie = cookie,
	};

	return zc_send_args(zfd, &s, out);
}

void *zc_pool_map(int zfd, size_t len)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, zfd, ZCOPY_MMAP_POOL);
}

int zc_pool_send(int zfd, int sock, uint64_t off, uint64_t len, uint32_t flags,
		 uint64_t cookie, struct zcopy_pool_send *out)
{
	struct zcopy_pool_send s = {
		.sockfd = sock,
		.flags = flags,
		.offset = off,
		.len = len,
		.cookie = cookie,
	};
	int ret = zc_ioctl(zfd, ZCOPY_IOC_POOL_SEND, &s);

	if (!ret && out)
		*out = s;
	return ret;
}

int zc_read_records(int zfd, struct zcopy_completion *rec, unsigned int n, int timeout_ms)
{
	struct pollfd pfd = { .fd = zfd, .events = POLLIN };
	ssize_t got;
	int ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret <= 0)
		return ret ? -errno : 0;
	got = read(zfd, rec, (size_t)n * sizeof(*rec));
	if (got < 0)
		return errno == EAGAIN ? 0 : -errno;
	return got / sizeof(*rec);
}

void *zc_rx_map(int zfd, size_t pages)
{
	return mmap(NULL, pages * sysconf(_SC_PAGESIZE), PROT_READ, MAP_SHARED, zfd,
		    ZCOPY_MMAP_RECV);
}

int zc_recv(int zfd, int sock, struct zcopy_rx_desc *desc, uint32_t n, uint32_t flags,
	    uint32_t timeout_ms, struct zcopy_recv *out)
{
	struct zcopy_recv r = {
		.sockfd = sock,
		.flags = flags,
		.desc = (uintptr_t)desc,
		.desc_count = n,
		.timeout_ms = timeout_ms,
	};
	int ret = zc_ioctl(zfd, ZCOPY_IOC_RECV, &r);

	if (out)
		*out = r;
	return ret;
}

int zc_recv_args(int zfd, struct zcopy_recv *r)
{
	return zc_ioctl(zfd, ZCOPY_IOC_RECV, r);
}

int zc_release(int zfd, const uint64_t *offsets, uint32_t n)
{
	struct zcopy_release rel = { .offsets = (uintptr_t)offsets, .count = n };

	return zc_ioctl(zfd, ZCOPY_IOC_RELEASE, &rel);
}

int zc_forward(int zfd, int sock, const struct zcopy_fwd_piece *pieces, uint32_t n,
	       uint32_t flags, uint64_t cookie, struct zcopy_forward *out)
{
	struct zcopy_forward f = {
		.sockfd = sock, .flags = flags, .pieces = (uintptr_t)pieces, .count = n,
		.cookie = cookie,
	};
	int ret = zc_ioctl(zfd, ZCOPY_IOC_FORWARD, &f);

	if (!ret && out)
		*out = f;
	return ret;
}

int zc_forward_all(int zfd, int sock, struct zcopy_fwd_piece *pieces, uint32_t n,
		   uint32_t flags, uint64_t *calls)
{
	for (; n && !pieces->len; n--)
		pieces++;
	while (n) {
		struct zcopy_forward f;
		uint64_t left;
		int ret = zc_forward(zfd, sock, pieces, n, flags, 0, &f);

		if (ret == -EINTR)
			continue;
		if (ret)
			return ret;
		if (calls)
			(*calls)++;
		for (left = f.bytes; n && left >= pieces->len; n--, pieces++) {
			left -= pieces->len;
			pieces->len = 0;
		}
		if (n && left) {
			pieces->offset += left;
			pieces->len -= left;
		}
	}
	return 0;
}

#define COUNTER(f, what, now) { #f, offsetof(struct zcopy_stats, f), what, now }
const struct zc_counter zc_counters[] = {
	COUNTER(sends, "sends that moved data", 0),
	COUNTER(send_bytes, "bytes accepted by sockets", 0),
	COUNTER(send_completions, "sends the stack let go of", 0),
	COUNTER(tx_zerocopy_bytes, "bytes sent without a copy", 0),
	COUNTER(tx_copied_bytes, "bytes the stack copied", 0),
	COUNTER(tx_copied_not_offloaded, "  at send: no offload, FRAGS, probes, cork", 0),
	COUNTER(tx_copied_loopback, "  delivered over loopback", 0),
	COUNTER(tx_copied_stack, "  elsewhere on the way", 0),
	COUNTER(sends_in_flight, "sends in flight (now)", 1),
	COUNTER(pages_pinned, "pages pinned (now)", 1),
	COUNTER(pages_pinned_peak, "pages pinned at most", 1),
	COUNTER(pages_pinned_total, "pages pinned in all", 0),
	COUNTER(records_queued, "completion records unread (now)", 1),
	COUNTER(pool_pages, "pages in send pools (now)", 1),
	COUNTER(pool_sends, "sends from a pool", 0),
	COUNTER(pool_send_bytes, "bytes sent from a pool", 0),
	COUNTER(pool_send_copied_bytes, "  sent from a copy", 0),
	COUNTER(cow_copies, "pool pages copied on write while held", 0),
	COUNTER(write_faults, "writes to pool pages that faulted", 0),
	COUNTER(pages_rearmed, "pool pages re-armed when records were read", 0),
	COUNTER(pool_pages_in_flight, "pool pages held by sends (now)", 1),
	COUNTER(receives, "receives that returned data", 0),
	COUNTER(rx_bytes_mapped, "bytes received as mapped pages", 0),
	COUNTER(rx_bytes_copied, "bytes received by copying", 0),
	COUNTER(rx_slots_used, "receive slots holding data (now)", 1),
	COUNTER(rx_copied_linear, "  copied: in an skb's own buffer", 0),
	COUNTER(rx_copied_partial, "  copied: fragment short of a page", 0),
	COUNTER(rx_copied_unaligned, "  copied: fragment not page-aligned", 0),
	COUNTER(rx_copied_foreign, "  copied: page that cannot be mapped", 0),
	COUNTER(rx_copied_cut, "  copied: page cut by max_bytes", 0),
	COUNTER(rx_copied_datagram, "  copied: UDP datagram", 0),
	COUNTER(fwd_sends, "forwards of received bytes", 0),
	COUNTER(fwd_bytes, "bytes they sent", 0),
	COUNTER(fwd_completions, "forwards the stack let go of", 0),
	COUNTER(fwd_zerocopy_bytes, "forwarded bytes that left uncopied", 0),
	COUNTER(fwd_copied_bytes, "forwarded bytes the stack copied:", 0),
	COUNTER(fwd_copied_not_offloaded, "  at send time", 0),
	COUNTER(fwd_copied_loopback, "  on loopback", 0),
	COUNTER(fwd_copied_stack, "  elsewhere in the stack", 0),
	COUNTER(fwd_slots_held, "receive slots held by forwards (now)", 1),
	COUNTER(tx_copied_small, "bytes of short sends copied (copy_below)", 0),
};

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

const size_t zc_nr_counters = ARRAY_SIZE(zc_counters);

const struct zc_feature zc_feature_names[] = {
	{ ZCOPY_FEAT_SEND, "send" },
	{ ZCOPY_FEAT_STATS, "stats" },
	{ ZCOPY_FEAT_POOL, "pool" },
	{ ZCOPY_FEAT_RECV, "recv" },
	{ ZCOPY_FEAT_RX_CAUSES, "rx-causes" },
	{ ZCOPY_FEAT_FORWARD, "forward" },
	{ ZCOPY_FEAT_COPY_SMALL, "copy-small" },
	{ ZCOPY_FEAT_REGISTER, "register" },
	{ ZCOPY_FEAT_SEND_BATCH, "send-batch" },
	{ ZCOPY_FEAT_POOL_BATCH, "pool-batch" },
	{ ZCOPY_FEAT_COPY_PROBING, "copy-probing" },
};

const size_t zc_nr_features = ARRAY_SIZE(zc_feature_names);

uint64_t zc_counter_get(const struct zcopy_stats *st, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)st + zc_counters[i].offset, sizeof(v));
	return v;
}

/* ---- the pattern ---- */

#define ZC_MUL1		0xd6e8feb86659fd93ULL
#define ZC_MUL2		0xff51afd7ed558ccdULL
#define ZC_ADD		0x6a09e667f3bcc909ULL

static uint64_t zc_word(uint64_t k)
{
	uint64_t x = k + ZC_ADD;

	x ^= x >> 32;
	x *= ZC_MUL1;
	x ^= x >> 29;
	x *= ZC_MUL2;
	x ^= x >> 32;
	return x;
}

/* The multiplicative inverse of odd @m modulo 2^64 (Newton's iteration). */
static uint64_t zc_mul_inverse(uint64_t m)
{
	uint64_t x = m;
	int i;

	for (i = 0; i < 5; i++)
		x *= 2 - m * x;
	return x;
}

static uint64_t zc_unword(uint64_t x)
{
	x ^= x >> 32;
	x *= zc_mul_inverse(ZC_MUL2);
	x ^= (x >> 29) ^ (x >> 58);
	x *= zc_mul_inverse(ZC_MUL1);
	x ^= x >> 32;
	return x - ZC_ADD;
}

uint8_t zc_byte(uint64_t off)
{
	return zc_word(off >> 3) >> ((off & 7) * 8);
}

void zc_fill(void *buf, uint64_t off, size_t len)
{
	uint8_t *p = buf;
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		p[i] = zc_byte(off + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = htole64(zc_word((off + i) >> 3));

		memcpy(p + i, &w, 8);
	}
	for (; i < len; i++)
		p[i] = zc_byte(off + i);
}

size_t zc_check(const void *buf, uint64_t off, size_t len)
{
	const uint8_t *p = buf;
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		if (p[i] != zc_byte(off + i))
			return i;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		if (le64toh(w) != zc_word((off + i) >> 3))
			break;
	}
	for (; i < len; i++)
		if (p[i] != zc_byte(off + i))
			return i;
	return len;
}

/*
 * Any 8 bytes decode to some word, and so to an offset: for each possible
 * alignment, the word after the first aligned one must follow it too,
 * which 8 bytes that are not that word's do with a chance of 2^-64.
 */
int zc_locate(const void *buf, size_t len, uint64_t *off)
{
	const uint8_t *p = buf;
	unsigned int r;

	if (len < ZC_LOCATE_MIN)
		return -1;
	for (r = 0; r < 8; r++) {
		size_t lead = (8 - r) & 7;
		uint64_t w, start;

		memcpy(&w, p + lead, 8);
		start = zc_unword(le64toh(w)) * 8 - lead;
		if (zc_check(p, start, lead + 16) == lead + 16) {
			*off = start;
			return 0;
		}
	}
	return -1;
}

#define ZC_FNV_PRIME	0x100000001b3ULL

uint64_t zc_fnv(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= ZC_FNV_PRIME;
	}
	return h;
}
