// SPDX-License-Identifier: GPL-2.0
/*
 * Race stress: for ZCOPY_STRESS_SECS seconds (default 5), lanes of rounds,
 * each a forked sender and a forked receiver, over loopback or the veth
 * pair (when setup_net.sh made it), TCP or UDP, IPv4 or IPv6.
 *
 * A sender child sends one to three streams at once through one zcopy fd:
 * ZCOPY_IOC_SEND from a ring of buffers it reuses only once the completion
 * records free them, and ZCOPY_IOC_POOL_SEND from the pool, by page
 * reference and with ZCOPY_POOL_SEND_NOTIFY. Meanwhile a thread writes all
 * over the pool, pages in flight included, and another unmaps and remaps
 * the pool and the ring under the sends in flight, closes and reopens the
 * zcopy fd, closes sockets, and forks children that exit at once. After a
 * random while it exits, its sends maybe still in flight, at times
 * resetting its connections.
 *
 * A receiver child reads each connection with ZCOPY_IOC_RECV into its
 * receive area, releasing slots as it goes and keeping some to check again
 * later, while a thread remaps the area or reopens its zcopy fd; or with
 * read(). At times it stops early and resets the connections.
 *
 * Each stream byte is a function of its offset, checked where it lands;
 * each TCP stream's FNV-1a checksum, and each UDP datagram's, must be what
 * was sent. At the end the module's ledger must show nothing pinned,
 * mapped, queued or in flight.
 *
 * ZCOPY_STRESS_SEED=N repeats a run's choices (not its timing; the seed
 * is always logged).
 *
 * A UDP socket may have two receivers, one of them with ZCOPY_IOC_RECV:
 * each datagram must reach one of them whole.
 */
#include <pthread.h>
#include <stddef.h>
#include <sys/time.h>

#include <linux/zcopy.h>

#include "kselftest_harness.h"
#include "recv_test_util.h"

#define ST_SECS_DEFAULT	5
#define ST_LANES	3
#define ST_STREAMS	3
#define ST_MAX_DGRAMS	4096	/* per stream and round */
#define ST_DGRAM_MAX	60000
/*
 * Datagrams ahead of the receiver. A 60000-byte datagram is 41 fragments
 * over a 1500-byte MTU: 4 of them on each of 3 streams stay well within
 * the 1000 packets of the receiving CPU's backlog, where veth would drop.
 */
#define ST_WINDOW	4
#define ST_RING_SLOTS	16
#define ST_SLOT		(64 << 10)
#define ST_SEQS		8192	/* > max_records: seqs in flight never alias */
#define ST_POOL_PAGES	64
#define ST_REGIONS	8
#define ST_AREA_PAGES	256
#define ST_HELD		32	/* receive slots a connection keeps */
#define ST_MAX_DESC	64
#define ST_BUF		(256 << 10)
#define ST_STUCK_MS	20000	/* nothing moves this long: a failure */
#define ST_MAGIC	0x7a637374

/* A round's choices, made by its lane before forking. */
struct st_cfg {
	int path;		/* ZC_LOOPBACK, ZC_VETH */
	int family;
	int type;
	int streams;
	int lifetime_ms;
	bool udp_shared;	/* UDP: two receivers, ZCOPY_IOC_RECV among them */
	bool abort;		/* the sender resets its connections at the end */
	bool rx_quit;		/* the receiver stops early and resets them */
	uint64_t rx_quit_after;
	uint16_t port;		/* the receiver's */
	uint64_t seed;
	uint64_t base[ST_STREAMS];	/* the pattern offset of each stream's byte 0 */
};

struct st_dg {
	uint32_t len;
	uint32_t __pad;
	uint64_t hash;
};

/* The first bytes of a datagram. */
struct st_hdr {
	uint32_t magic;
	uint32_t stream;
	uint64_t seq;
};

struct st_tx_res {
	uint64_t bytes, hash;	/* TCP: the stream accepted by the socket */
	uint32_t ndg;		/* UDP: datagrams sent */
	int32_t err;		/* what ended the stream early, 0 if nothing did */
	uint16_t port;		/* its local port, for the receiver to tell streams apart */
};

struct st_rx_res {
	uint64_t bytes, hash;
	uint64_t mapped, copied;	/* received by ZCOPY_IOC_RECV, as each */
	uint32_t ndg, bad;
	int32_t err;
	int32_t zc;		/* read with ZCOPY_IOC_RECV */
};

/* What the children did, for the log. */
struct st_ops {
	uint64_t sends, pool_ref, pool_notify, send_bytes, records;
	uint64_t scribbles, pool_remaps, ring_remaps, zfd_reopens, sock_closes, forks;
	uint64_t recvs, releases, reads, area_remaps, rx_reopens, rx_bytes, rx_dgrams;
};

/* Shared by a lane and the children of its round (MAP_SHARED). */
struct st_shared {
	struct st_cfg cfg;
	struct st_tx_res tx[ST_STREAMS];
	struct st_rx_res rx[ST_STREAMS];
	uint32_t rx_ndg[ST_STREAMS];	/* UDP: the receiver's progress */
	int32_t tx_done;		/* UDP: the sender is gone, tx[] final */
	int32_t tx_failed, rx_failed;
	char tx_msg[320], rx_msg[320];
	struct st_ops ops;
	struct st_dg dg[ST_STREAMS][ST_MAX_DGRAMS];	/* written before each send */
};

#define ST_COUNT(sh, field, n)	__atomic_add_fetch(&(sh)->ops.field, (n), __ATOMIC_RELAXED)

static uint64_t st_env(const char *name, uint64_t def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

static uint64_t st_secs(void)
{
	return st_env("ZCOPY_STRESS_SECS", ST_SECS_DEFAULT);
}

static uint64_t st_below(uint64_t *rng, uint64_t n)
{
	return n ? zc_rand(rng) % n : 0;
}

static bool st_pct(uint64_t *rng, unsigned int pct)
{
	return st_below(rng, 100) < pct;
}

static void st_nap_us(uint64_t us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* The first failure of a child, for its lane to report. */
static void __printf(3, 4)
st_fail(int32_t *failed, char *msg, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_exchange_n(failed, 1, __ATOMIC_SEQ_CST))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, 320, fmt, ap);
	va_end(ap);
}

static const char *st_path_ip(const struct st_cfg *c)
{
	struct zc_net net = { c->path, c->family, c->type };

	return zc_peer_ip(&net);
}

/* ---- the sender ---- */

enum { ST_FREE, ST_WAIT, ST_EARLY };

/* A seq of the zcopy fd: waiting for its record, or its record came first. */
struct st_seq {
	uint32_t epoch;		/* of the zcopy fd */
	uint32_t gen;		/* of the ring */
	uint32_t mask;		/* ring slots it holds */
	uint32_t state;
};

struct st_tx;

struct st_stream {
	struct st_tx *t;
	int id;
	int sock;
	int closed;		/* the chaos thread closed it */
	uint64_t off;		/* TCP: stream bytes accepted */
	uint64_t hash;
	uint32_t ndg;		/* UDP: datagrams sent */
	int err;
	uint64_t rng;
	pthread_t th;
};

struct st_tx {
	struct st_shared *sh;
	const struct st_cfg *cfg;
	size_t ps;
	/* The fd, pool and ring: held (read) to use them, (write) to swap them. */
	pthread_rwlock_t maplock;
	/* A pool region: held (write) to fill and send it, (read) to scribble. */
	pthread_rwlock_t region[ST_REGIONS];
	pthread_mutex_t lock;	/* busy[], seq[], issued, covered */
	int zfd;
	uint32_t epoch;
	uint8_t *pool;
	uint8_t *ring;
	uint32_t gen;
	int busy[ST_RING_SLOTS];
	struct st_seq seq[ST_SEQS];
	uint64_t issued, covered;	/* sends with a record on this fd, records */
	unsigned int claim_next;	/* where st_claim() looks first */
	struct st_stream st[ST_STREAMS];
	int running;		/* stream threads still sending */
	pid_t kids[64];
	int nkids;
};

#define TX_FAIL(t, ...)	st_fail(&(t)->sh->tx_failed, (t)->sh->tx_msg, __VA_ARGS__)

static uint8_t *st_map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static uint8_t *st_map_pool(int zfd, size_t pages)
{
	void *p = mmap(NULL, pages * zc_page_size(), PROT_READ | PROT_WRITE, MAP_SHARED, zfd,
		       ZCOPY_MMAP_POOL);

	return p == MAP_FAILED ? NULL : p;
}

/* One ZCOPY_IOC_POOL_SEND: 0 with *@out filled in, or -errno. */
static int st_pool_send_raw(int zfd, int sock, uint64_t offset, uint64_t len, uint32_t flags,
			    uint64_t cookie, struct zcopy_pool_send *out)
{
	*out = (struct zcopy_pool_send){
		.sockfd = sock, .flags = flags, .offset = offset, .len = len, .cookie = cookie,
	};
	return ioctl(zfd, ZCOPY_IOC_POOL_SEND, out) ? -errno : 0;
}

/* A send with a record went as @seq, holding ring slots @mask. */
static void st_register(struct st_tx *t, uint64_t seq, uint32_t mask)
{
	struct st_seq *e = &t->seq[seq % ST_SEQS];
	unsigned int i;

	pthread_mutex_lock(&t->lock);
	t->issued++;
	if (e->epoch == t->epoch && e->state == ST_EARLY) {
		e->state = ST_FREE;
	} else if (e->epoch == t->epoch && e->state == ST_WAIT) {
		TX_FAIL(t, "seq %llu given to two sends", ZC_U64(seq));
	} else {
		*e = (struct st_seq){ t->epoch, t->gen, mask, ST_WAIT };
		for (i = 0; i < ST_RING_SLOTS; i++)
			if (mask & 1U << i)
				t->busy[i]++;
	}
	pthread_mutex_unlock(&t->lock);
}

/* The record of @seq came; under t->lock. */
static void st_complete(struct st_tx *t, uint64_t seq)
{
	struct st_seq *e = &t->seq[seq % ST_SEQS];
	unsigned int i;

	t->covered++;
	if (e->epoch == t->epoch && e->state == ST_WAIT) {
		for (i = 0; i < ST_RING_SLOTS && e->gen == t->gen; i++)
			if (e->mask & 1U << i)
				t->busy[i]--;
		e->state = ST_FREE;
	} else if (e->epoch == t->epoch && e->state == ST_EARLY) {
		TX_FAIL(t, "two records for seq %llu", ZC_U64(seq));
	} else {
		/* Its send has not been registered yet: it will find this. */
		*e = (struct st_seq){ t->epoch, 0, 0, ST_EARLY };
	}
}

/* Read the records waiting; maplock held. */
static void st_records(struct st_tx *t)
{
	struct zcopy_completion c[64];
	unsigned int i;
	uint64_t s;
	ssize_t n;

	for (;;) {
		n = read(t->zfd, c, sizeof(c));
		if (n < 0 && errno != EAGAIN)
			TX_FAIL(t, "read of records: %s", strerror(errno));
		if (n <= 0)
			return;
		if (n % sizeof(c[0])) {
			TX_FAIL(t, "read of records returned %zd bytes", n);
			return;
		}
		pthread_mutex_lock(&t->lock);
		for (i = 0; i < n / sizeof(c[0]); i++) {
			const char *bad = zc_rec_invalid(&c[i]);

			if (bad)
				TX_FAIL(t, "record seq %llu: %s", ZC_U64(c[i].seq), bad);
			for (s = c[i].seq; s < c[i].seq + c[i].sends && !bad; s++)
				st_complete(t, s);
		}
		pthread_mutex_unlock(&t->lock);
		ST_COUNT(t->sh, records, n / sizeof(c[0]));
	}
}

/* Wait up to @ms for records, and read them. */
static void st_records_wait(struct st_tx *t, int ms)
{
	struct pollfd p = { 0, POLLIN, 0 };

	pthread_rwlock_rdlock(&t->maplock);
	p.fd = t->zfd;
	poll(&p, 1, ms);
	st_records(t);
	pthread_rwlock_unlock(&t->maplock);
}

/*
 * Claim up to @n free ring slots, each holding a reference of ours until
 * the send from it is made; maplock held. How many, in @slots.
 */
static unsigned int st_claim(struct st_tx *t, unsigned int n, unsigned int *slots)
{
	unsigned int i, got = 0, start;

	pthread_mutex_lock(&t->lock);
	start = t->claim_next++;
	for (i = 0; i < ST_RING_SLOTS && got < n; i++) {
		unsigned int k = (start + i) % ST_RING_SLOTS;

		if (!t->busy[k]) {
			t->busy[k] = 1;
			slots[got++] = k;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return got;
}

static void st_unclaim(struct st_tx *t, uint32_t gen, const unsigned int *slots,
		       unsigned int n)
{
	unsigned int i;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < n && gen == t->gen; i++)
		t->busy[slots[i]]--;
	pthread_mutex_unlock(&t->lock);
}

/*
 * Claim ring slots, waiting for records to free some: returns with maplock
 * held and at least one slot, or 0 (maplock not held) when the stream must
 * stop.
 */
static unsigned int st_claim_wait(struct st_stream *s, unsigned int n, unsigned int *slots)
{
	struct st_tx *t = s->t;
	int64_t deadline = zc_now_ms() + ST_STUCK_MS;
	unsigned int got;

	for (;;) {
		pthread_rwlock_rdlock(&t->maplock);
		got = st_claim(t, n, slots);
		if (got)
			return got;
		pthread_rwlock_unlock(&t->maplock);
		if (zc_now_ms() > deadline) {
			TX_FAIL(t, "stream %d: no ring slot freed in %d ms (%llu of %llu records)",
				s->id, ST_STUCK_MS, ZC_U64(t->covered), ZC_U64(t->issued));
			return 0;
		}
		st_records_wait(t, 20);
	}
}

/* An error that ends a stream: expected, or a failure. */
static void st_stream_error(struct st_stream *s, const char *what, int err)
{
	struct st_tx *t = s->t;
	bool closed = __atomic_load_n(&s->closed, __ATOMIC_SEQ_CST);

	s->err = err;
	if (closed && (err == EBADF || err == ENOTSOCK))
		return;
	if (t->cfg->rx_quit && (err == ECONNRESET || err == EPIPE))
		return;
	TX_FAIL(t, "stream %d: %s after %llu bytes, %u datagrams: %s", s->id, what,
		ZC_U64(s->off), s->ndg, strerror(err));
}

/* Wait for room in a socket, or for records: what a send answered. */
static bool st_retry(struct st_stream *s, int ret)
{
	struct pollfd p = { s->sock, POLLOUT, 0 };

	if (ret == -EAGAIN) {
		poll(&p, 1, 50);
		return true;
	}
	if (ret == -ENOSPC) {
		st_records(s->t);
		p.fd = s->t->zfd;
		p.events = POLLIN;
		poll(&p, 1, 20);
		return true;
	}
	return false;
}

/* TCP: up to three pieces of ring slots, as one stream of sends. */
static void st_tcp_send(struct st_stream *s)
{
	struct st_tx *t = s->t;
	struct zcopy_iovec iov[6];
	unsigned int slots[3], n, i, k = 0, first = 0;
	uint64_t total = 0, cookie = zc_rand(&s->rng);
	uint32_t mask = 0, gen;

	n = st_claim_wait(s, zc_rand_range(&s->rng, 1, 3), slots);
	if (!n)
		return;
	gen = t->gen;
	for (i = 0; i < n; i++) {
		size_t len = zc_rand_range(&s->rng, 1, ST_SLOT);
		size_t at = st_below(&s->rng, ST_SLOT - len + 1);
		uint8_t *p = t->ring + slots[i] * ST_SLOT + at;

		zc_fill(p, t->cfg->base[s->id] + s->off + total, len);
		/* Empty entries are skipped, wherever they point. */
		if (st_pct(&s->rng, 10))
			iov[k++] = (struct zcopy_iovec){ zc_rand(&s->rng), 0 };
		iov[k++] = (struct zcopy_iovec){ (uintptr_t)p, len };
		total += len;
		mask |= 1U << slots[i];
	}
	while (total) {
		uint32_t flags = st_pct(&s->rng, 30) ? ZCOPY_SEND_DONTWAIT : 0;
		struct zcopy_send out = { 0 };
		int ret;

		if (st_pct(&s->rng, 10))
			flags |= ZCOPY_SEND_MORE;
		ret = zc_send(t->zfd, s->sock, iov + first, k - first, flags, cookie, &out);
		if (st_retry(s, ret))
			continue;
		if (ret) {
			st_stream_error(s, "ZCOPY_IOC_SEND", -ret);
			break;
		}
		if (!out.bytes || out.bytes > total) {
			TX_FAIL(t, "ZCOPY_IOC_SEND: %llu bytes of %llu", ZC_U64(out.bytes),
				ZC_U64(total));
			s->err = ERANGE;
			break;
		}
		st_register(t, out.seq, mask);
		s->hash = zc_fnv_iov(s->hash, iov + first, k - first, out.bytes);
		s->off += out.bytes;
		total -= out.bytes;
		ST_COUNT(t->sh, sends, 1);
		ST_COUNT(t->sh, send_bytes, out.bytes);
		first = zc_iov_advance(iov, first, k, out.bytes);
	}
	st_unclaim(t, gen, slots, n);
	pthread_rwlock_unlock(&t->maplock);
}

/* UDP: one datagram, its header apart or not, from ring slots. */
static void st_udp_send(struct st_stream *s)
{
	struct st_tx *t = s->t;
	struct st_shared *sh = t->sh;
	size_t len = zc_rand_range(&s->rng, sizeof(struct st_hdr), ST_DGRAM_MAX);
	struct st_hdr hdr = { ST_MAGIC, s->id, s->ndg };
	unsigned int slots[2], n;
	struct zcopy_iovec iov[2];
	struct zcopy_send out = { 0 };
	uint8_t *a, *b;
	uint32_t gen;
	int ret;

	n = st_claim_wait(s, 2, slots);
	if (!n)
		return;
	gen = t->gen;
	a = t->ring + slots[0] * ST_SLOT;
	b = t->ring + slots[n - 1] * ST_SLOT + (n > 1 ? st_below(&s->rng, 64) : sizeof(hdr));
	memcpy(a, &hdr, sizeof(hdr));
	zc_fill(b, t->cfg->base[s->id] + s->ndg * 65536ULL, len - sizeof(hdr));
	iov[0] = (struct zcopy_iovec){ (uintptr_t)a, sizeof(hdr) };
	iov[1] = (struct zcopy_iovec){ (uintptr_t)b, len - sizeof(hdr) };
	if (n == 1) {
		iov[0].len = len;
		iov[1].len = 0;
	}
	sh->dg[s->id][s->ndg] = (struct st_dg){ len, 0, zc_fnv_iov(ZC_FNV_INIT, iov, 2, len) };
	do {
		ret = zc_send(t->zfd, s->sock, iov, 2, st_pct(&s->rng, 30) ? ZCOPY_SEND_DONTWAIT : 0,
			      s->ndg, &out);
	} while (st_retry(s, ret));
	if (ret) {
		st_stream_error(s, "ZCOPY_IOC_SEND", -ret);
	} else if (out.bytes != len) {
		TX_FAIL(t, "a datagram of %zu bytes went as %llu", len, ZC_U64(out.bytes));
		s->err = ERANGE;
	} else {
		st_register(t, out.seq, n > 1 ? 1U << slots[0] | 1U << slots[1] : 1U << slots[0]);
		s->ndg++;
		ST_COUNT(sh, sends, 1);
		ST_COUNT(sh, send_bytes, len);
	}
	st_unclaim(t, gen, slots, n);
	pthread_rwlock_unlock(&t->maplock);
}

/*
 * From a pool region of ours: fill it, send it (TCP: all of it, by page
 * reference or with a record; UDP: a datagram), and at times overwrite it
 * at once, the pages still in flight.
 */
static void st_pool_send(struct st_stream *s)
{
	struct st_tx *t = s->t;
	struct st_shared *sh = t->sh;
	size_t region = ST_POOL_PAGES / ST_REGIONS * t->ps;
	unsigned int r = st_below(&s->rng, ST_REGIONS);
	bool udp = t->cfg->type == SOCK_DGRAM;
	uint32_t flags = 0;
	size_t len, off, done = 0;
	uint8_t *p;

	if (st_pct(&s->rng, 50))
		flags |= ZCOPY_POOL_SEND_NOTIFY;
	if (st_pct(&s->rng, 50))
		flags |= ZCOPY_POOL_SEND_ADDR;
	len = zc_rand_range(&s->rng, udp ? sizeof(struct st_hdr) : 1, region);
	off = r * region + st_below(&s->rng, region - len + 1);
	pthread_rwlock_rdlock(&t->maplock);
	pthread_rwlock_wrlock(&t->region[r]);
	p = t->pool + off;
	if (udp) {
		struct st_hdr hdr = { ST_MAGIC, s->id, s->ndg };

		memcpy(p, &hdr, sizeof(hdr));
		zc_fill(p + sizeof(hdr), t->cfg->base[s->id] + s->ndg * 65536ULL,
			len - sizeof(hdr));
		sh->dg[s->id][s->ndg] = (struct st_dg){ len, 0, zc_fnv(ZC_FNV_INIT, p, len) };
	} else {
		zc_fill(p, t->cfg->base[s->id] + s->off, len);
	}
	while (done < len) {
		uint64_t where = flags & ZCOPY_POOL_SEND_ADDR ? (uintptr_t)p + done : off + done;
		uint32_t f = flags | (st_pct(&s->rng, 20) ? ZCOPY_SEND_DONTWAIT : 0);
		struct zcopy_pool_send out;
		int ret;

		ret = st_pool_send_raw(t->zfd, s->sock, where, len - done, f, s->ndg, &out);
		if (st_retry(s, ret))
			continue;
		if (ret) {
			st_stream_error(s, "ZCOPY_IOC_POOL_SEND", -ret);
			break;
		}
		if (!out.bytes || out.bytes > len - done || (udp && out.bytes != len)) {
			TX_FAIL(t, "ZCOPY_IOC_POOL_SEND: %llu bytes of %zu", ZC_U64(out.bytes),
				len - done);
			s->err = ERANGE;
			break;
		}
		if (out.seq != ZCOPY_NO_SEQ)
			st_register(t, out.seq, 0);
		else if (udp || (flags & ZCOPY_POOL_SEND_NOTIFY))
			TX_FAIL(t, "a pool send of flags %#x without a record", f);
		if (!udp)
			s->hash = zc_fnv(s->hash, p + done, out.bytes);
		done += out.bytes;
		ST_COUNT(sh, send_bytes, out.bytes);
		if (flags & ZCOPY_POOL_SEND_NOTIFY || udp)
			ST_COUNT(sh, pool_notify, 1);
		else
			ST_COUNT(sh, pool_ref, 1);
	}
	if (udp && done == len)
		s->ndg++;
	else if (!udp)
		s->off += done;
	/* The receiver must still get what was sent, not this. */
	if (st_pct(&s->rng, 30))
		memset(p, 0xee, len);
	pthread_rwlock_unlock(&t->region[r]);
	pthread_rwlock_unlock(&t->maplock);
}

static void *st_stream_main(void *arg)
{
	struct st_stream *s = arg;
	struct st_tx *t = s->t;
	struct st_shared *sh = t->sh;
	int64_t end = zc_now_ms() + t->cfg->lifetime_ms;
	bool udp = t->cfg->type == SOCK_DGRAM;
	unsigned int n = 0;

	while (!s->err && zc_now_ms() < end && !sh->tx_failed) {
		if (udp) {
			int64_t deadline = zc_now_ms() + ST_STUCK_MS;

			if (s->ndg == ST_MAX_DGRAMS)
				break;
			/* A few datagrams ahead of the receiver: none is dropped. */
			while (__atomic_load_n(&sh->rx_ndg[s->id], __ATOMIC_SEQ_CST) + ST_WINDOW <=
			       s->ndg && zc_now_ms() < deadline)
				zc_sleep_ms(1);
			if (zc_now_ms() >= deadline) {
				TX_FAIL(t, "stream %d: the receiver has %u of %u datagrams after %d ms",
					s->id, sh->rx_ndg[s->id], s->ndg, ST_STUCK_MS);
				break;
			}
		}
		if (st_pct(&s->rng, 45))
			udp ? st_udp_send(s) : st_tcp_send(s);
		else
			st_pool_send(s);
		if (!(++n % 8))
			st_records_wait(t, 0);
	}
	__atomic_sub_fetch(&t->running, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Write all over the pool, pages in flight included, but never a region being filled. */
static void *st_scribbler(void *arg)
{
	struct st_tx *t = arg;
	size_t region = ST_POOL_PAGES / ST_REGIONS * t->ps;
	uint64_t rng = t->cfg->seed ^ 0x736372696262ULL, n = 0;

	while (__atomic_load_n(&t->running, __ATOMIC_SEQ_CST)) {
		unsigned int r = st_below(&rng, ST_REGIONS);
		size_t off = st_below(&rng, region), len = st_below(&rng, region - off) + 1;

		pthread_rwlock_rdlock(&t->maplock);
		if (!pthread_rwlock_tryrdlock(&t->region[r])) {
			memset(t->pool + r * region + off, (int)rng, len);
			pthread_rwlock_unlock(&t->region[r]);
			n++;
		}
		pthread_rwlock_unlock(&t->maplock);
		st_nap_us(st_below(&rng, 300));
	}
	ST_COUNT(t->sh, scribbles, n);
	return NULL;
}

/* A new ring; the old one's slots stay with the sends in flight. Maplock held (write). */
static void st_new_ring(struct st_tx *t)
{
	uint8_t *ring = st_map_anon(ST_RING_SLOTS * ST_SLOT);

	if (!ring) {
		TX_FAIL(t, "mmap of a ring: %s", strerror(errno));
		return;
	}
	munmap(t->ring, ST_RING_SLOTS * ST_SLOT);
	t->ring = ring;
	pthread_mutex_lock(&t->lock);
	t->gen++;
	memset(t->busy, 0, sizeof(t->busy));
	pthread_mutex_unlock(&t->lock);
	ST_COUNT(t->sh, ring_remaps, 1);
}

/* A child of the sender's: its copies of the ring and fds, a few calls, gone. */
static void st_fork(struct st_tx *t, uint64_t *rng)
{
	pid_t pid;

	while (t->nkids && waitpid(t->kids[t->nkids - 1], NULL, WNOHANG) > 0)
		t->nkids--;
	if (t->nkids == ARRAY_SIZE(t->kids))
		return;
	pid = fork();
	if (!pid) {
		struct zcopy_stats st;
		uint8_t *p = t->ring + st_below(rng, ST_RING_SLOTS * ST_SLOT);
		uint8_t v = *p;

		/* Pages pinned for sends were copied for the child at fork. */
		*p = v + 1;
		zc_stats(t->zfd, 0, &st);
		zc_features(t->zfd);
		st_nap_us(st_below(rng, 20000));
		_exit(0);
	}
	if (pid > 0) {
		t->kids[t->nkids++] = pid;
		ST_COUNT(t->sh, forks, 1);
	}
}

/* Unmap, remap, close and reopen under the sends in flight. */
static void *st_tx_chaos(void *arg)
{
	struct st_tx *t = arg;
	uint64_t rng = t->cfg->seed ^ 0x6368616f73ULL;

	while (__atomic_load_n(&t->running, __ATOMIC_SEQ_CST)) {
		unsigned int r = st_below(&rng, 100), i;
		uint8_t *p;
		int fd;

		st_nap_us(zc_rand_range(&rng, 5000, 40000));
		if (r < 25) {
			/* The same pool again, its pages in flight or not. */
			pthread_rwlock_wrlock(&t->maplock);
			munmap(t->pool, ST_POOL_PAGES * t->ps);
			t->pool = st_map_pool(t->zfd, ST_POOL_PAGES);
			if (!t->pool) {
				TX_FAIL(t, "mmap of the pool again: %s", strerror(errno));
				_exit(1);
			}
			pthread_rwlock_unlock(&t->maplock);
			ST_COUNT(t->sh, pool_remaps, 1);
		} else if (r < 45) {
			pthread_rwlock_wrlock(&t->maplock);
			st_new_ring(t);
			pthread_rwlock_unlock(&t->maplock);
		} else if (r < 55) {
			/* A new fd, pool and ring: the old ones' records never come. */
			pthread_rwlock_wrlock(&t->maplock);
			munmap(t->pool, ST_POOL_PAGES * t->ps);
			close(t->zfd);
			fd = open(ZCOPY_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
			p = fd < 0 ? NULL : st_map_pool(fd, ST_POOL_PAGES);
			if (!p) {
				TX_FAIL(t, "reopening the zcopy fd: %s", strerror(errno));
				_exit(1);
			}
			t->zfd = fd;
			t->pool = p;
			pthread_mutex_lock(&t->lock);
			t->epoch++;
			t->issued = 0;
			t->covered = 0;
			pthread_mutex_unlock(&t->lock);
			st_new_ring(t);
			pthread_rwlock_unlock(&t->maplock);
			ST_COUNT(t->sh, zfd_reopens, 1);
		} else if (r < 60 && t->cfg->streams > 1) {
			/* A stream ends here: what its socket took still arrives. */
			i = st_below(&rng, t->cfg->streams);
			if (!__atomic_exchange_n(&t->st[i].closed, 1, __ATOMIC_SEQ_CST)) {
				close(t->st[i].sock);
				ST_COUNT(t->sh, sock_closes, 1);
			}
		} else if (r < 80) {
			st_fork(t, &rng);
		} else if (r < 90) {
			/* Fresh zero pages under the ring: the pinned ones stay in flight. */
			pthread_rwlock_wrlock(&t->maplock);
			madvise(t->ring, ST_RING_SLOTS * ST_SLOT, MADV_DONTNEED);
			pthread_rwlock_unlock(&t->maplock);
		}
	}
	return NULL;
}

/* Connect the round's streams to the receiver, each from a port of its own. */
static int st_connect(struct st_tx *t)
{
	const struct st_cfg *c = t->cfg;
	struct sockaddr_storage ss;
	socklen_t sl;
	int i, fd;

	for (i = 0; i < c->streams; i++) {
		fd = socket(c->family, c->type | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		t->st[i].sock = fd;
		sl = zc_sockaddr(c->family, c->family == AF_INET ? "0.0.0.0" : "::", 0, &ss);
		if (bind(fd, (struct sockaddr *)&ss, sl))
			return -errno;
		t->sh->tx[i].port = zc_port(fd);
		if (c->type == SOCK_STREAM && st_pct(&t->st[i].rng, 30))
			zc_set_buf(fd, SO_SNDBUF, 64 << 10);
		sl = zc_sockaddr(c->family, st_path_ip(c), c->port, &ss);
		if (connect(fd, (struct sockaddr *)&ss, sl))
			return -errno;
	}
	return 0;
}

static void __noreturn st_tx_main(struct st_shared *sh)
{
	const struct st_cfg *c = &sh->cfg;
	struct st_tx *t = calloc(1, sizeof(*t));
	pthread_t scribbler, chaos;
	int one = 1;
	pthread_rwlockattr_t attr;
	uint64_t rng = c->seed ^ 0x7478ULL;
	int64_t deadline;
	int i, ret;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	if (!t) {
		st_fail(&sh->tx_failed, sh->tx_msg, "out of memory");
		_exit(1);
	}
	t->sh = sh;
	t->cfg = c;
	t->ps = zc_page_size();
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&t->maplock, &attr);
	for (i = 0; i < ST_REGIONS; i++)
		pthread_rwlock_init(&t->region[i], &attr);
	pthread_mutex_init(&t->lock, NULL);
	for (i = 0; i < ST_STREAMS; i++)
		t->st[i] = (struct st_stream){ .t = t, .id = i, .sock = -1, .hash = ZC_FNV_INIT,
					       .rng = zc_rand(&rng) };
	t->zfd = open(ZCOPY_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	t->pool = t->zfd < 0 ? NULL : st_map_pool(t->zfd, ST_POOL_PAGES);
	t->ring = st_map_anon(ST_RING_SLOTS * ST_SLOT);
	if (!t->pool || !t->ring) {
		TX_FAIL(t, "the zcopy fd, its pool or the ring: %s", strerror(errno));
		_exit(1);
	}
	ret = st_connect(t);
	if (ret) {
		TX_FAIL(t, "connecting to %s port %u: %s", st_path_ip(c), c->port, strerror(-ret));
		_exit(1);
	}

	t->running = c->streams;
	for (i = 0; i < c->streams; i++)
		if (pthread_create(&t->st[i].th, NULL, st_stream_main, &t->st[i]))
			_exit(2);
	if (pthread_create(&scribbler, NULL, st_scribbler, t) ||
	    pthread_create(&chaos, NULL, st_tx_chaos, t))
		_exit(2);
	for (i = 0; i < c->streams; i++)
		pthread_join(t->st[i].th, NULL);
	pthread_join(scribbler, NULL);
	pthread_join(chaos, NULL);

	/*
	 * Unless resetting: every send with a record gets it, once what
	 * ZCOPY_SEND_MORE corked is pushed out.
	 */
	for (i = 0; i < c->streams && c->type == SOCK_STREAM; i++)
		if (!t->st[i].closed)
			setsockopt(t->st[i].sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	deadline = zc_now_ms() + ST_STUCK_MS;
	while (!c->abort && t->covered < t->issued && zc_now_ms() < deadline && t->pool)
		st_records_wait(t, 50);
	if (!c->abort && t->covered != t->issued)
		TX_FAIL(t, "records for %llu of %llu sends after %d ms", ZC_U64(t->covered),
			ZC_U64(t->issued), ST_STUCK_MS);

	for (i = 0; i < c->streams; i++)
		sh->tx[i] = (struct st_tx_res){ t->st[i].off, t->st[i].hash, t->st[i].ndg,
						t->st[i].err, sh->tx[i].port };
	while (t->nkids)
		waitpid(t->kids[--t->nkids], NULL, 0);
	for (i = 0; i < c->streams; i++) {
		if (c->abort && !t->st[i].closed) {
			struct linger lg = { 1, 0 };

			setsockopt(t->st[i].sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
	}
	/* Or leave it all to exit(), sends and pool pages in flight. */
	if (st_pct(&rng, 50)) {
		for (i = 0; i < c->streams; i++)
			if (!t->st[i].closed)
				close(t->st[i].sock);
		close(t->zfd);
	}
	_exit(sh->tx_failed);
}

/* ---- the receiver ---- */

struct st_rx;

struct st_conn {
	struct st_rx *r;
	int id;			/* the stream; the thread's number for UDP */
	int sock;
	bool zc;		/* ZCOPY_IOC_RECV, else read() */
	uint64_t off, hash;
	struct rt_slot held[ST_HELD];
	unsigned int nheld;
	struct zcopy_rx_desc desc[ST_MAX_DESC];
	uint64_t rel[ST_HELD];
	uint8_t *buf;
	uint64_t rng;
	pthread_t th;
};

struct st_rx {
	struct st_shared *sh;
	const struct st_cfg *cfg;
	size_t ps;
	/* The fd and its area: held (read) to use them, (write) to swap them. */
	pthread_rwlock_t arealock;
	int zfd;
	uint8_t *area;
	struct st_conn conn[ST_STREAMS];
	int nconn;
	int running;
	uint8_t seen[ST_STREAMS][ST_MAX_DGRAMS];
};

#define RX_FAIL(r, ...)	st_fail(&(r)->sh->rx_failed, (r)->sh->rx_msg, __VA_ARGS__)

static uint8_t *st_map_area(int zfd)
{
	void *p = mmap(NULL, ST_AREA_PAGES * zc_page_size(), PROT_READ, MAP_SHARED, zfd,
		       ZCOPY_MMAP_RECV);

	return p == MAP_FAILED ? NULL : p;
}

/* TCP bytes at stream offset k->off: the pattern's, into the checksum. */
static void st_rx_bytes(struct st_conn *k, const uint8_t *p, size_t len, const char *how)
{
	struct st_rx *r = k->r;
	struct st_rx_res *res = &r->sh->rx[k->id];
	uint64_t at = r->cfg->base[k->id] + k->off;
	size_t bad = zc_check(p, at, len);

	if (bad < len) {
		res->bad++;
		RX_FAIL(r, "stream %d, byte %llu (%s, %zu bytes): %#x, sent %#x", k->id,
			ZC_U64(k->off + bad), how, len, p[bad], zc_byte(at + bad));
	}
	k->hash = zc_fnv(k->hash, p, len);
	k->off += len;
	ST_COUNT(r->sh, rx_bytes, len);
}

/* A datagram: one the sender logged, intact, not seen before. */
static void st_rx_dgram(struct st_rx *r, const uint8_t *p, size_t len)
{
	struct st_hdr h;
	struct st_dg dg;

	if (len < sizeof(h)) {
		RX_FAIL(r, "a datagram of %zu bytes", len);
		return;
	}
	memcpy(&h, p, sizeof(h));
	if (h.magic != ST_MAGIC || h.stream >= (uint32_t)r->cfg->streams ||
	    h.seq >= ST_MAX_DGRAMS) {
		RX_FAIL(r, "a datagram of %zu bytes: magic %#x stream %u seq %llu", len, h.magic,
			h.stream, ZC_U64(h.seq));
		return;
	}
	dg = r->sh->dg[h.stream][h.seq];
	if (dg.len != len || dg.hash != zc_fnv(ZC_FNV_INIT, p, len)) {
		r->sh->rx[h.stream].bad++;
		RX_FAIL(r, "stream %u datagram %llu: %zu bytes, checksum %s (sent %u bytes)",
			h.stream, ZC_U64(h.seq), len,
			dg.hash == zc_fnv(ZC_FNV_INIT, p, len) ? "right" : "wrong", dg.len);
		return;
	}
	if (__atomic_exchange_n(&r->seen[h.stream][h.seq], 1, __ATOMIC_SEQ_CST)) {
		r->sh->rx[h.stream].bad++;
		RX_FAIL(r, "stream %u datagram %llu twice", h.stream, ZC_U64(h.seq));
		return;
	}
	__atomic_add_fetch(&r->sh->rx[h.stream].ndg, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&r->sh->rx_ndg[h.stream], 1, __ATOMIC_SEQ_CST);
	ST_COUNT(r->sh, rx_dgrams, 1);
}

/* Slots held by a connection still hold what they did: copy-on-write works. */
static void st_recheck(struct st_conn *k)
{
	struct st_rx *r = k->r;
	unsigned int i;

	for (i = 0; i < k->nheld; i++) {
		const struct rt_slot *s = &k->held[i];
		size_t bad = zc_check(r->area + s->area_off, r->cfg->base[k->id] + s->stream_off,
				      s->len);

		if (bad < s->len) {
			r->sh->rx[k->id].bad++;
			RX_FAIL(r, "stream %d: held slot %#llx (%s, stream byte %llu) changed at %zu",
				k->id, ZC_U64(s->area_off),
				s->flags & ZCOPY_RX_MAPPED ? "mapped" : "copied",
				ZC_U64(s->stream_off), bad);
		}
	}
}

/* Give back the @n oldest held slots: in the next receive, or now. Arealock held. */
static unsigned int st_release_prep(struct st_conn *k, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		k->rel[i] = k->held[i].area_off;
	return n;
}

static void st_forget(struct st_conn *k, unsigned int n)
{
	memmove(k->held, k->held + n, (k->nheld - n) * sizeof(k->held[0]));
	k->nheld -= n;
}

static int st_release_now(struct st_conn *k, unsigned int n)
{
	int ret;

	if (!n)
		return 0;
	ret = zc_release(k->r->zfd, k->rel, st_release_prep(k, n));
	if (!ret) {
		st_forget(k, n);
		ST_COUNT(k->r->sh, releases, 1);
	}
	return ret;
}

/*
 * Did a receive that failed with @err release what it was given first?
 * Yes once past its arguments and the socket's checks: the errors of the
 * receive itself.
 */
static bool st_released(int err)
{
	return !err || err == EAGAIN || err == ENOSPC || err == ECONNRESET || err == EPIPE ||
	       err == ENOTCONN || err == EMSGSIZE || err == ENXIO;
}

/*
 * One ZCOPY_IOC_RECV on a TCP connection, releasing some held slots in it:
 * 1 at the end of the stream, 0, or -errno.
 */
static int st_zc_recv_tcp(struct st_conn *k)
{
	struct st_rx *r = k->r;
	unsigned int nrel = 0, i;
	struct zcopy_recv rv;
	int ret;

	if (k->nheld && (k->nheld >= ST_HELD - ST_MAX_DESC / 4 || st_pct(&k->rng, 30)))
		nrel = st_release_prep(k, zc_rand_range(&k->rng, 1, k->nheld));
	rv = (struct zcopy_recv){
		.sockfd = k->sock,
		.desc = (uintptr_t)k->desc,
		.desc_count = zc_rand_range(&k->rng, 1, ST_MAX_DESC / 4),
		.timeout_ms = 200,
		.max_bytes = st_pct(&k->rng, 20) ? zc_rand_range(&k->rng, 1, 65536) : 0,
		.release = (uintptr_t)k->rel,
		.release_count = nrel,
	};
	ret = zc_recv_args(r->zfd, &rv);
	if (st_released(-ret))
		st_forget(k, nrel);
	if (ret == -ENOSPC)
		return st_release_now(k, k->nheld);
	if (ret)
		return ret;
	ST_COUNT(r->sh, recvs, 1);
	if (!rv.bytes && !rv.desc_count)
		return 1;
	for (i = 0; i < rv.desc_count; i++) {
		const struct zcopy_rx_desc *d = &k->desc[i];
		struct st_rx_res *res = &r->sh->rx[k->id];

		if (d->offset % r->ps || d->offset >= ST_AREA_PAGES * r->ps || !d->len ||
		    d->len > r->ps) {
			RX_FAIL(r, "stream %d: desc %u/%u offset %#llx len %u", k->id, i,
				rv.desc_count, ZC_U64(d->offset), d->len);
			return -EPROTO;
		}
		if (d->flags & ZCOPY_RX_MAPPED)
			res->mapped += d->len;
		else
			res->copied += d->len;
		if (k->nheld == ST_HELD && st_release_now(k, ST_HELD / 2))
			return -EPROTO;
		k->held[k->nheld++] = (struct rt_slot){ d->offset, k->off, d->len, d->flags };
		st_rx_bytes(k, r->area + d->offset, d->len,
			    d->flags & ZCOPY_RX_MAPPED ? "mapped" : "copied");
	}
	if (st_pct(&k->rng, 20))
		st_recheck(k);
	return 0;
}

static void *st_conn_tcp(void *arg)
{
	struct st_conn *k = arg;
	struct st_rx *r = k->r;
	struct st_rx_res *res = &r->sh->rx[k->id];
	int64_t idle = zc_now_ms();
	ssize_t n;
	int ret;

	for (;;) {
		uint64_t before = k->off;

		if (r->cfg->rx_quit && k->off >= r->cfg->rx_quit_after) {
			/* Unread data in the socket: a reset for the sender. */
			close(k->sock);
			k->sock = -1;
			break;
		}
		if (k->zc) {
			pthread_rwlock_rdlock(&r->arealock);
			ret = st_zc_recv_tcp(k);
			pthread_rwlock_unlock(&r->arealock);
		} else {
			n = read(k->sock, k->buf, ST_BUF);
			ret = n < 0 ? -errno : !n;
			if (n > 0)
				st_rx_bytes(k, k->buf, n, "read");
			ST_COUNT(r->sh, reads, 1);
		}
		if (ret == 1)
			break;
		if (ret && ret != -EAGAIN) {
			res->err = -ret;
			if (!(r->cfg->abort && ret == -ECONNRESET))
				RX_FAIL(r, "stream %d after %llu bytes: %s", k->id, ZC_U64(k->off),
					strerror(-ret));
			break;
		}
		if (k->off != before) {
			idle = zc_now_ms();
		} else if (zc_now_ms() - idle > ST_STUCK_MS + r->cfg->lifetime_ms) {
			RX_FAIL(r, "stream %d: nothing for %d ms after %llu bytes", k->id,
				ST_STUCK_MS + r->cfg->lifetime_ms, ZC_U64(k->off));
			break;
		}
	}
	pthread_rwlock_rdlock(&r->arealock);
	st_recheck(k);
	if (k->zc && st_release_now(k, k->nheld))
		RX_FAIL(r, "stream %d: releasing its slots: %s", k->id, strerror(errno));
	pthread_rwlock_unlock(&r->arealock);
	res->bytes = k->off;
	res->hash = k->hash;
	res->zc = k->zc;
	__atomic_sub_fetch(&r->running, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Every datagram sent, or none for 2 s once the sender is gone. */
static bool st_udp_done(struct st_rx *r, int64_t last)
{
	int i;

	if (!__atomic_load_n(&r->sh->tx_done, __ATOMIC_SEQ_CST))
		return zc_now_ms() - last > ST_STUCK_MS + r->cfg->lifetime_ms;
	for (i = 0; i < r->cfg->streams; i++)
		if (__atomic_load_n(&r->sh->rx_ndg[i], __ATOMIC_SEQ_CST) < r->sh->tx[i].ndg)
			return zc_now_ms() - last > 2000;
	return true;
}

/* One UDP datagram into k->buf: its length, 0 if none came, or -errno. */
static ssize_t st_zc_recv_udp(struct st_conn *k)
{
	struct st_rx *r = k->r;
	struct zcopy_recv rv = {
		.sockfd = k->sock,
		.desc = (uintptr_t)k->desc,
		.desc_count = zc_rand_range(&k->rng, 17, ST_MAX_DESC),
		.timeout_ms = 100,
		.release = (uintptr_t)k->rel,
		.release_count = st_release_prep(k, k->nheld),
	};
	size_t len = 0;
	unsigned int i;
	int ret;

	ret = zc_recv_args(r->zfd, &rv);
	if (st_released(-ret))
		st_forget(k, rv.release_count);
	if (ret)
		return ret == -EAGAIN ? 0 : ret;
	ST_COUNT(r->sh, recvs, 1);
	for (i = 0; i < rv.desc_count; i++) {
		const struct zcopy_rx_desc *d = &k->desc[i];

		if (d->offset % r->ps || d->offset >= ST_AREA_PAGES * r->ps || d->len > r->ps ||
		    !(d->flags & ZCOPY_RX_COPIED) || !(d->flags & ZCOPY_RX_EOR) != (i + 1 < rv.desc_count)) {
			RX_FAIL(r, "a datagram's desc %u/%u: offset %#llx len %u flags %#x", i,
				rv.desc_count, ZC_U64(d->offset), d->len, d->flags);
			return -EPROTO;
		}
		memcpy(k->buf + len, r->area + d->offset, d->len);
		len += d->len;
		k->held[k->nheld++] = (struct rt_slot){ d->offset, 0, d->len, d->flags };
	}
	if (len != rv.bytes) {
		RX_FAIL(r, "a datagram of %llu bytes in descriptors of %zu", ZC_U64(rv.bytes), len);
		return -EPROTO;
	}
	return rv.desc_count ? (ssize_t)len : 0;
}

static void *st_conn_udp(void *arg)
{
	struct st_conn *k = arg;
	struct st_rx *r = k->r;
	int64_t last = zc_now_ms();
	ssize_t n;

	while (!st_udp_done(r, last)) {
		if (k->zc) {
			pthread_rwlock_rdlock(&r->arealock);
			n = st_zc_recv_udp(k);
			pthread_rwlock_unlock(&r->arealock);
		} else {
			n = recv(k->sock, k->buf, ST_BUF, MSG_TRUNC);
			if (n < 0)
				n = errno == EAGAIN ? 0 : -errno;
			ST_COUNT(r->sh, reads, 1);
		}
		if (n < 0) {
			RX_FAIL(r, "receiving datagrams: %s", strerror(-n));
			break;
		}
		if (n) {
			st_rx_dgram(r, k->buf, n);
			last = zc_now_ms();
		}
	}
	pthread_rwlock_rdlock(&r->arealock);
	if (k->zc && st_release_now(k, k->nheld))
		RX_FAIL(r, "releasing datagram slots: %s", strerror(errno));
	pthread_rwlock_unlock(&r->arealock);
	__atomic_sub_fetch(&r->running, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Remap the area, or reopen the fd with a new one, under the receives. */
static void *st_rx_chaos(void *arg)
{
	struct st_rx *r = arg;
	uint64_t rng = r->cfg->seed ^ 0x7278636861ULL;
	int i;

	while (__atomic_load_n(&r->running, __ATOMIC_SEQ_CST)) {
		st_nap_us(zc_rand_range(&rng, 10000, 80000));
		pthread_rwlock_wrlock(&r->arealock);
		munmap(r->area, ST_AREA_PAGES * r->ps);
		if (st_pct(&rng, 80)) {
			/* Held slots stay, faulted back in through the new mapping. */
			ST_COUNT(r->sh, area_remaps, 1);
		} else {
			close(r->zfd);
			r->zfd = open(ZCOPY_DEVICE, O_RDWR | O_CLOEXEC);
			for (i = 0; i < r->nconn; i++)
				r->conn[i].nheld = 0;
			ST_COUNT(r->sh, rx_reopens, 1);
		}
		r->area = r->zfd < 0 ? NULL : st_map_area(r->zfd);
		pthread_rwlock_unlock(&r->arealock);
		if (!r->area) {
			RX_FAIL(r, "mapping the area again: %s", strerror(errno));
			_exit(1);
		}
	}
	return NULL;
}

/* The stream a connection from @port carries, or -1. */
static int st_stream_of(struct st_shared *sh, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	uint16_t port;
	int i;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl))
		return -1;
	port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
		     ((struct sockaddr_in6 *)&ss)->sin6_port);
	for (i = 0; i < sh->cfg.streams; i++)
		if (sh->tx[i].port == port)
			return i;
	return -1;
}

static void __noreturn st_rx_main(struct st_shared *sh, int ready)
{
	const struct st_cfg *c = &sh->cfg;
	const char *ns = zc_path_netns(c->path);
	struct st_rx *r = calloc(1, sizeof(*r));
	struct timeval tv = { 0, 200000 };
	uint64_t rng = c->seed ^ 0x7278ULL;
	pthread_rwlockattr_t attr;
	pthread_t chaos;
	int32_t v = 0;
	int fd, i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!r || (ns && zc_enter_netns(ns)))
		goto fail;
	r->sh = sh;
	r->cfg = c;
	r->ps = zc_page_size();
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&r->arealock, &attr);
	r->zfd = zc_open();
	r->area = r->zfd < 0 ? NULL : st_map_area(r->zfd);
	fd = zc_bind(c->family, c->type, st_path_ip(c), c->type == SOCK_DGRAM ? 16 << 20 : 0);
	if (!r->area || fd < 0)
		goto fail;
	v = zc_port(fd);
	if (write(ready, &v, sizeof(v)) != sizeof(v))
		_exit(1);
	close(ready);

	r->nconn = c->type == SOCK_STREAM ? c->streams : zc_rand_range(&rng, 1, 2);
	for (i = 0; i < r->nconn; i++) {
		struct st_conn *k = &r->conn[i];

		k->r = r;
		k->id = i;
		k->sock = fd;
		k->zc = st_pct(&rng, 70);
		/* ZCOPY_STRESS_UDP_SHARED=0: ZCOPY_IOC_RECV alone on a UDP socket. */
		if (c->type == SOCK_DGRAM && !c->udp_shared) {
			if (i)
				k->zc = false;
			else if (k->zc)
				r->nconn = 1;
		}
		k->hash = ZC_FNV_INIT;
		k->rng = zc_rand(&rng);
		k->buf = malloc(ST_BUF);
		if (!k->buf)
			goto fail;
		if (c->type == SOCK_DGRAM)
			continue;
		k->sock = zc_accept(fd, 10000);
		if (k->sock < 0) {
			RX_FAIL(r, "accepting stream %d of %d: %s", i, c->streams,
				strerror(-k->sock));
			_exit(1);
		}
		k->id = st_stream_of(sh, k->sock);
		if (k->id < 0) {
			RX_FAIL(r, "a connection from a port no stream has");
			_exit(1);
		}
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r->running = r->nconn;
	for (i = 0; i < r->nconn; i++) {
		setsockopt(r->conn[i].sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (pthread_create(&r->conn[i].th, NULL,
				   c->type == SOCK_STREAM ? st_conn_tcp : st_conn_udp, &r->conn[i]))
			_exit(2);
	}
	if (pthread_create(&chaos, NULL, st_rx_chaos, r))
		_exit(2);
	for (i = 0; i < r->nconn; i++)
		pthread_join(r->conn[i].th, NULL);
	pthread_join(chaos, NULL);
	_exit(sh->rx_failed);
fail:
	v = -errno;
	if (write(ready, &v, sizeof(v)) != sizeof(v))
		_exit(2);
	_exit(1);
}

/* ---- the lanes ---- */

struct st_lane {
	pthread_t th;
	int id;
	uint64_t rng;
	int64_t end;
	bool veth;
	struct st_shared *sh;
	uint64_t rounds, tcp_bytes, dgrams, mapped, copied;
	struct st_ops ops;
	unsigned int fails;
	char msg[4][400];
};

static void __printf(2, 3) st_lane_fail(struct st_lane *l, const char *fmt, ...)
{
	va_list ap;

	if (l->fails < ARRAY_SIZE(l->msg)) {
		va_start(ap, fmt);
		vsnprintf(l->msg[l->fails], sizeof(l->msg[0]), fmt, ap);
		va_end(ap);
	}
	l->fails++;
}

static void st_ops_add(struct st_ops *to, const struct st_ops *from)
{
	const uint64_t *f = (const uint64_t *)from;
	uint64_t *t = (uint64_t *)to;
	size_t i;

	for (i = 0; i < sizeof(*to) / sizeof(uint64_t); i++)
		t[i] += f[i];
}

static const char *st_cfg_name(const struct st_cfg *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s%s, %d stream%s, %d ms%s%s, seed %#llx",
		 zc_path_name(c->path), c->type == SOCK_STREAM ? "TCP" : "UDP",
		 c->family == AF_INET ? "v4" : "v6", c->streams, c->streams > 1 ? "s" : "",
		 c->lifetime_ms, c->abort ? ", reset" : "", c->rx_quit ? ", receiver quits" : "",
		 ZC_U64(c->seed));
	return buf;
}

/* What arrived against what was sent, stream by stream. */
static void st_round_check(struct st_lane *l, const char *name)
{
	struct st_shared *sh = l->sh;
	const struct st_cfg *c = &sh->cfg;
	int i;

	for (i = 0; i < c->streams; i++) {
		const struct st_tx_res *tx = &sh->tx[i];
		const struct st_rx_res *rx = &sh->rx[i];

		if (rx->bad)
			st_lane_fail(l, "%s: stream %d: %u wrong; the receiver's first failure: %s",
				     name, i, rx->bad, sh->rx_msg);
		if (c->type == SOCK_DGRAM) {
			if (rx->ndg != tx->ndg)
				st_lane_fail(l, "%s: stream %d: %u of %u datagrams arrived", name, i,
					     rx->ndg, tx->ndg);
			l->dgrams += rx->ndg;
			continue;
		}
		if (rx->bytes > tx->bytes)
			st_lane_fail(l, "%s: stream %d: %llu bytes arrived, %llu sent", name, i,
				     ZC_U64(rx->bytes), ZC_U64(tx->bytes));
		else if (!c->abort && !c->rx_quit &&
			 (rx->bytes != tx->bytes || rx->hash != tx->hash))
			st_lane_fail(l, "%s: stream %d: %llu of %llu bytes arrived, checksum %#llx, sent %#llx",
				     name, i, ZC_U64(rx->bytes), ZC_U64(tx->bytes),
				     ZC_U64(rx->hash), ZC_U64(tx->hash));
		l->tcp_bytes += rx->bytes;
		l->mapped += rx->mapped;
		l->copied += rx->copied;
	}
}

static void st_round(struct st_lane *l)
{
	struct st_shared *sh = l->sh;
	struct st_cfg *c = &sh->cfg;
	int64_t left = l->end - zc_now_ms();
	int ready[2], stx, srx, i;
	pid_t tx, rx;
	char name[160];
	int32_t v;

	memset(sh, 0, offsetof(struct st_shared, dg));
	c->path = l->veth && st_pct(&l->rng, 40) ? ZC_VETH : ZC_LOOPBACK;
	c->family = st_pct(&l->rng, 50) ? AF_INET : AF_INET6;
	c->type = st_pct(&l->rng, 65) ? SOCK_STREAM : SOCK_DGRAM;
	c->streams = zc_rand_range(&l->rng, 1, ST_STREAMS);
	c->lifetime_ms = zc_rand_range(&l->rng, 100, 1000);
	if (c->lifetime_ms > left)
		c->lifetime_ms = left > 50 ? left : 50;
	c->udp_shared = st_env("ZCOPY_STRESS_UDP_SHARED", 1);
	c->abort = c->type == SOCK_STREAM && st_pct(&l->rng, 10);
	c->rx_quit = c->type == SOCK_STREAM && !c->abort && st_pct(&l->rng, 8);
	c->rx_quit_after = st_below(&l->rng, 1 << 20);
	c->seed = zc_rand(&l->rng);
	for (i = 0; i < ST_STREAMS; i++)
		c->base[i] = zc_rand(&l->rng) >> 8;
	st_cfg_name(c, name, sizeof(name));

	if (pipe2(ready, O_CLOEXEC)) {
		st_lane_fail(l, "pipe: %s", strerror(errno));
		return;
	}
	fflush(stderr);
	rx = fork();
	if (!rx) {
		close(ready[0]);
		st_rx_main(sh, ready[1]);
	}
	close(ready[1]);
	if (rx < 0 || read(ready[0], &v, sizeof(v)) != sizeof(v) || v <= 0) {
		close(ready[0]);
		st_lane_fail(l, "%s: the receiver did not start: %s", name,
			     rx < 0 || v >= 0 ? "it died" : strerror(-v));
		if (rx > 0)
			zc_wait_child(rx, 1000);
		return;
	}
	close(ready[0]);
	c->port = v;
	tx = fork();
	if (!tx)
		st_tx_main(sh);
	stx = tx < 0 ? -1 : zc_wait_child(tx, c->lifetime_ms + 2 * ST_STUCK_MS + 10000);
	__atomic_store_n(&sh->tx_done, 1, __ATOMIC_SEQ_CST);
	srx = zc_wait_child(rx, 2 * ST_STUCK_MS + 10000);
	l->rounds++;
	st_ops_add(&l->ops, &sh->ops);
	if (stx == -1 || !WIFEXITED(stx) || WEXITSTATUS(stx))
		st_lane_fail(l, "%s: sender status %#x: %s", name, stx, sh->tx_msg);
	if (srx == -1 || !WIFEXITED(srx) || WEXITSTATUS(srx))
		st_lane_fail(l, "%s: receiver status %#x: %s", name, srx, sh->rx_msg);
	st_round_check(l, name);
}

static void *st_lane_main(void *arg)
{
	struct st_lane *l = arg;

	while (zc_now_ms() < l->end && !l->fails)
		st_round(l);
	return NULL;
}

/* ---- the test ---- */

FIXTURE(stress)
{
	int zfd;
	struct st_lane lane[ST_LANES];
};

FIXTURE_SETUP(stress)
{
	int i;

	memset(self->lane, 0, sizeof(self->lane));
	signal(SIGPIPE, SIG_IGN);
	self->zfd = zc_open();
	if (self->zfd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, self->zfd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
	if ((zc_features(self->zfd) & 0xf) != 0xf)
		SKIP(return, "the module lacks a feature: SEND, STATS, POOL or RECV");
	for (i = 0; i < ST_LANES; i++) {
		void *p = mmap(NULL, sizeof(struct st_shared), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		ASSERT_NE(MAP_FAILED, p);
		self->lane[i].sh = p;
	}
}

FIXTURE_TEARDOWN(stress)
{
	int i;

	for (i = 0; i < ST_LANES; i++)
		if (self->lane[i].sh)
			munmap(self->lane[i].sh, sizeof(struct st_shared));
	if (self->zfd >= 0)
		close(self->zfd);
}

/*
 * Nothing pinned, in flight, queued or mapped once every child is gone:
 * completions run from a workqueue, so wait for them a while.
 */
static void st_module_idle(struct __test_metadata *_metadata, int zfd)
{
	struct zcopy_stats st;

	zc_expect_module_idle(_metadata, zfd, 10000, &st);
	TH_LOG("module: %llu sends (%llu bytes), %llu pool sends, %llu COW copies, %llu pages re-armed, %llu receives (%llu bytes mapped, %llu copied)",
	       ZC_U64(st.sends), ZC_U64(st.send_bytes), ZC_U64(st.pool_sends),
	       ZC_U64(st.cow_copies), ZC_U64(st.pages_rearmed), ZC_U64(st.receives),
	       ZC_U64(st.rx_bytes_mapped), ZC_U64(st.rx_bytes_copied));
}

/*
 * Sends, receives, unmaps, closes, forks and exits all at once for a
 * while: every byte that arrives is the one sent, nothing is left over.
 */
TEST_F_TIMEOUT(stress, everything_at_once, 120)
{
	const char *env = getenv("ZCOPY_STRESS_SEED");
	uint64_t secs = st_secs(), seed, rounds = 0, bytes = 0, dgrams = 0;
	uint64_t mapped = 0, copied = 0;
	bool veth = !zc_path_missing(ZC_VETH);
	struct st_ops ops = { 0 };
	int64_t t0 = zc_now_ms();
	unsigned int i, j, fails = 0;

	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ ts.tv_nsec ^ (uint64_t)getpid() << 32;
	}
	TH_LOG("seed %#llx: ZCOPY_STRESS_SEED=%#llx repeats its choices; %llu s, %d lanes, %s",
	       ZC_U64(seed), ZC_U64(seed), ZC_U64(secs), ST_LANES,
	       veth ? "loopback and veth" : "loopback only (no veth: run setup_net.sh)");
	zc_wait_idle(self->zfd, ZCOPY_STATS_MODULE, 5000, NULL);

	for (i = 0; i < ST_LANES; i++) {
		struct st_lane *l = &self->lane[i];

		l->id = i;
		l->rng = seed + i * 0x9e3779b97f4a7c15ULL;
		l->end = t0 + secs * 1000;
		l->veth = veth;
		ASSERT_EQ(0, pthread_create(&l->th, NULL, st_lane_main, l));
	}
	for (i = 0; i < ST_LANES; i++)
		pthread_join(self->lane[i].th, NULL);
	for (i = 0; i < ST_LANES; i++) {
		struct st_lane *l = &self->lane[i];

		for (j = 0; j < l->fails && j < ARRAY_SIZE(l->msg); j++)
			TH_LOG("lane %u: %s", i, l->msg[j]);
		fails += l->fails;
		rounds += l->rounds;
		bytes += l->tcp_bytes;
		dgrams += l->dgrams;
		mapped += l->mapped;
		copied += l->copied;
		st_ops_add(&ops, &l->ops);
	}
	TH_LOG("%llu rounds in %lld ms: %llu TCP bytes and %llu datagrams checked; %llu bytes received mapped, %llu copied",
	       ZC_U64(rounds), (long long)(zc_now_ms() - t0), ZC_U64(bytes), ZC_U64(dgrams),
	       ZC_U64(mapped), ZC_U64(copied));
	TH_LOG("senders: %llu sends, %llu pool sends by reference, %llu with a record, %llu records, %llu scribbles",
	       ZC_U64(ops.sends), ZC_U64(ops.pool_ref), ZC_U64(ops.pool_notify),
	       ZC_U64(ops.records), ZC_U64(ops.scribbles));
	TH_LOG("  %llu pool remaps, %llu ring remaps, %llu zcopy fds reopened, %llu sockets closed, %llu children forked",
	       ZC_U64(ops.pool_remaps), ZC_U64(ops.ring_remaps), ZC_U64(ops.zfd_reopens),
	       ZC_U64(ops.sock_closes), ZC_U64(ops.forks));
	TH_LOG("receivers: %llu receives, %llu releases, %llu reads, %llu area remaps, %llu fds reopened",
	       ZC_U64(ops.recvs), ZC_U64(ops.releases), ZC_U64(ops.reads),
	       ZC_U64(ops.area_remaps), ZC_U64(ops.rx_reopens));
	EXPECT_EQ(0, fails);
	EXPECT_LT(0, rounds);
	st_module_idle(_metadata, self->zfd);
}

/*
 * The harness's time limit, as long as ZCOPY_STRESS_SECS needs, with room
 * for the last rounds to end: set once the harness has registered the test
 * (in a constructor of its own, which runs before this one).
 */
static void __attribute__((constructor(KSELFTEST_PRIO_TEST + 1))) st_set_timeout(void)
{
	uint64_t secs = st_secs() + 120;

	_stress_everything_at_once_object->timeout = secs > 86400 ? 86400 : secs;
}

TEST_HARNESS_MAIN
