/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for pool_test.c, on top of zcopy_test_util.h: the send pool of a
 * zcopy fd (its mappings and ZCOPY_IOC_POOL_SEND), connections whose
 * receiver, a forked child, checksums every byte it gets, and a test
 * context that undoes it all and then checks that nothing leaked.
 *
 * The zc_* helpers come from zcopy_test_util.h, shared with the other
 * tests; the pt_* ones are the pool's.
 */
#ifndef POOL_TEST_UTIL_H
#define POOL_TEST_UTIL_H

#include <limits.h>
#include <sys/resource.h>

#include "zcopy_test_util.h"

#define PT_MAX_CONNS	4
#define PT_MAX_MAPS	8
#define PT_MAX_FDS	8

/* A socket to a receiver that checksums what it gets. */
struct pt_conn {
	struct zc_net net;
	int sock;
	struct zc_rx rx;
	bool hold;		/* the receiver reads nothing until released */
	bool released;
	uint64_t bytes;		/* the stream sent (TCP) and its checksum */
	uint64_t hash;
	struct zc_dgram *dg;	/* the datagrams sent (UDP) */
	size_t ndg;
	unsigned int window;	/* datagrams sent ahead of the receiver */
};

struct pt_map {
	void *addr;
	size_t len;
};

/*
 * What a test set up: undone by pt_teardown(), which then waits for the
 * module to be back where it was before the test.
 */
struct pt_ctx {
	int zfd;
	size_t ps;
	uint64_t features;
	struct zcopy_stats base;	/* the module's ledger before the test */
	struct pt_conn conn[PT_MAX_CONNS];
	struct pt_map map[PT_MAX_MAPS];
	int fds[PT_MAX_FDS];
	long saved_max_pool_pages;	/* >= 0: restore at teardown */
	long saved_copy_below;		/* >= 0: restore at teardown */
	struct zc_log log;		/* sends of zfd that have a record */
	size_t recs_seen;		/* log.rec[] entries a test looked at */
};

void pt_init(struct pt_ctx *c);

/* Close a zcopy fd early: c->zfd or one from pt_open_fd(). */
void pt_close_fd(struct pt_ctx *c, int fd);

void pt_untrack(struct pt_ctx *c, void *addr);

/* mmap() the pool of @fd: the address, or MAP_FAILED with errno. */
void *pt_mmap_raw(int fd, size_t len, int prot, int flags, off_t off);

void pt_unmap(struct pt_ctx *c, void *addr, size_t len);

/* Poll @fd's pool_pages_in_flight (@flags: 0 or the module's) until == @want. */
int pt_wait_in_flight(int fd, uint32_t flags, uint64_t want, int timeout_ms,
		      struct zcopy_stats *st);

/* ---- connections ---- */

struct pt_conn_opts {
	bool hold;	/* the receiver accepts, then reads nothing until released */
	int rcvbuf;	/* the receiver's SO_RCVBUF, when non-zero */
	int sndbuf;	/* ours, when non-zero */
};

void pt_conn_free(struct pt_conn *k);

/* Account @len bytes of @src as sent on @k (UDP: as one datagram). */
void pt_account(struct pt_conn *k, const void *src, size_t len);

/* Does a pool send on @k queue a completion record? */
bool pt_has_record(const struct pt_conn *k, uint32_t flags);

/*
 * Account a pool send @s made on @k (its flags, len and cookie as asked,
 * its results as returned) of bytes at pool offset @off that were @expect
 * when sent: the receiver must get them, and a send with a record is
 * logged in c->log. 0, or -errno for results that make no sense.
 */
int pt_sent(struct pt_ctx *c, struct pt_conn *k, const struct zcopy_pool_send *s,
	    uint64_t off, const void *expect);

/*
 * Send bytes [@off, @off + @len) of the pool of c->zfd on @k, all of them
 * (TCP: in as many sends as it takes; UDP: one datagram), by offset, or
 * by address in the mapping at @base with ZCOPY_POOL_SEND_ADDR in @flags.
 * @expect is what the pool holds there (NULL: what @base holds there
 * before the send): the receiver must get exactly that. Sends with a record are logged in
 * c->log. 0 or -errno; *@nsends (may be NULL) counts the ioctls.
 */
int pt_send(struct pt_ctx *c, struct pt_conn *k, uint8_t *base, uint64_t off,
	    uint64_t len, uint32_t flags, uint64_t cookie, const void *expect,
	    unsigned int *nsends);

/* ---- what tests assert through: only with the kselftest harness ---- */
#ifdef __KSELFTEST_HARNESS_H

/* Open /dev/zcopy and note the module's ledger: NULL, or why to skip. */
static inline const char *pt_setup(struct __test_metadata *_metadata, struct pt_ctx *c)
{
	pt_init(c);
	/* A dead receiver must fail a send, not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	c->zfd = zc_open();
	if (c->zfd < 0 && errno == ENOENT)
		return ZCOPY_DEVICE " is missing: zcopy.ko is not loaded";
	if (c->zfd < 0) {
		EXPECT_LE(0, c->zfd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
		return "cannot open " ZCOPY_DEVICE;
	}
	c->features = zc_features(c->zfd);
	if (!(c->features & ZCOPY_FEAT_POOL))
		return "the module has no ZCOPY_FEAT_POOL";
	if (!(c->features & ZCOPY_FEAT_STATS))
		return "the module has no ZCOPY_FEAT_STATS";
	/* Leftovers of an earlier test (its sends completing) settle first. */
	zc_wait_idle(c->zfd, ZCOPY_STATS_MODULE, 5000, NULL);
	if (zc_stats(c->zfd, ZCOPY_STATS_MODULE, &c->base))
		return "ZCOPY_IOC_STATS fails";
	return NULL;
}

/* A zcopy fd besides c->zfd, closed at teardown. */
static inline int pt_open_fd(struct __test_metadata *_metadata, struct pt_ctx *c)
{
	int i, fd = zc_open();

	ASSERT_LE(0, fd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
	for (i = 0; i < PT_MAX_FDS; i++) {
		if (c->fds[i] < 0) {
			c->fds[i] = fd;
			return fd;
		}
	}
	close(fd);
	ASSERT_TRUE(0) TH_LOG("more than %d extra fds", PT_MAX_FDS);
	return -1;
}

/* Remember a mapping, to unmap at teardown. */
static inline void pt_track(struct __test_metadata *_metadata, struct pt_ctx *c,
	      void *addr, size_t len)
{
	int i;

	for (i = 0; i < PT_MAX_MAPS; i++) {
		if (!c->map[i].addr) {
			c->map[i].addr = addr;
			c->map[i].len = len;
			return;
		}
	}
	munmap(addr, len);
	ASSERT_TRUE(0) TH_LOG("more than %d mappings", PT_MAX_MAPS);
}

/* Map @pages of @fd's pool, read-write and shared; fails the test else. */
static inline uint8_t *pt_map_pool(struct __test_metadata *_metadata, struct pt_ctx *c,
		     int fd, size_t pages)
{
	void *p = pt_mmap_raw(fd, pages * c->ps, PROT_READ | PROT_WRITE, MAP_SHARED,
			      ZCOPY_MMAP_POOL);

	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap of a %zu-page pool: %s", pages, strerror(errno));
	pt_track(_metadata, c, p, pages * c->ps);
	return p;
}

static inline struct zcopy_stats pt_stats(struct __test_metadata *_metadata, int fd,
			    uint32_t flags)
{
	struct zcopy_stats st;
	int ret = zc_stats(fd, flags, &st);

	EXPECT_EQ(0, ret) TH_LOG("ZCOPY_IOC_STATS: %s", strerror(-ret));
	return st;
}

/* A connection to a new receiver over @path; fails the test else. */
static inline struct pt_conn *pt_connect(struct __test_metadata *_metadata,
			   struct pt_ctx *c, enum zc_path path, int family,
			   int type, const struct pt_conn_opts *o)
{
	struct pt_conn_opts none = { 0 };
	struct zc_rx_opts ro;
	struct pt_conn *k = NULL;
	int i, ret;

	if (!o)
		o = &none;
	for (i = 0; i < PT_MAX_CONNS; i++) {
		if (c->conn[i].sock < 0 && !c->conn[i].rx.pid) {
			k = &c->conn[i];
			break;
		}
	}
	ASSERT_NE(NULL, k) TH_LOG("more than %d connections", PT_MAX_CONNS);
	memset(k, 0, sizeof(*k));
	k->sock = -1;
	k->rx.ctl = -1;
	k->net = (struct zc_net){ path, family, type };
	k->hash = ZC_FNV_INIT;
	k->window = 16;
	k->hold = o->hold;
	k->dg = calloc(ZC_RX_MAX_DGRAMS, sizeof(*k->dg));
	ASSERT_NE(NULL, k->dg);
	/* Loopback keeps datagrams in order when they come from one CPU. */
	if (type == SOCK_DGRAM)
		zc_pin_cpu(0);
	ro = (struct zc_rx_opts){ .rcvbuf = o->rcvbuf, .hold = o->hold };
	ret = zc_rx_start(&k->rx, &k->net, &ro);
	ASSERT_EQ(0, ret) TH_LOG("receiver over %s: %s", zc_path_name(path), strerror(-ret));
	k->sock = zc_connect(&k->net, k->rx.port, o->sndbuf, false);
	ASSERT_LE(0, k->sock) TH_LOG("connect to %s port %u: %s", zc_peer_ip(&k->net),
				     k->rx.port, strerror(-k->sock));
	return k;
}

/* Let a holding receiver read. */
static inline void pt_release(struct __test_metadata *_metadata, struct pt_conn *k)
{
	if (!k->hold || k->released)
		return;
	k->released = true;
	EXPECT_EQ(0, zc_rx_release(&k->rx));
}

/* send(2) ordinary bytes (a pattern from @seed) on TCP, all of them. */
static inline void pt_send_plain(struct __test_metadata *_metadata, struct pt_conn *k,
		   size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len);
	size_t done = 0;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(seed), len);
	while (done < len) {
		ssize_t n = send(k->sock, buf + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			ASSERT_LT(0, n) TH_LOG("send: %s", strerror(errno));
		}
		done += n;
	}
	pt_account(k, buf, len);
	free(buf);
}

/*
 * All sent on @k arrived, in order, with the checksums of what was sent.
 * Releases a holding receiver; for TCP, shuts the socket down to end the
 * stream.
 */
static inline void pt_check_data(struct __test_metadata *_metadata, struct pt_conn *k)
{
	struct zc_rx_shared *sh = k->rx.sh;
	size_t i, bad = 0;
	int ret;

	pt_release(_metadata, k);
	if (k->net.type == SOCK_STREAM)
		ASSERT_EQ(0, shutdown(k->sock, SHUT_WR));
	ret = zc_rx_finish(&k->rx, k->ndg, 30000);
	ASSERT_EQ(0, ret) TH_LOG("receiver: %s after %llu of %llu bytes, %llu datagrams",
				 strerror(-ret), ZC_U64(sh->bytes), ZC_U64(k->bytes),
				 ZC_U64(sh->ndgrams));
	EXPECT_EQ(0, sh->err) TH_LOG("receiver: %s", strerror(sh->err));
	if (k->net.type == SOCK_STREAM) {
		EXPECT_EQ(k->bytes, sh->bytes) TH_LOG("bytes received");
		EXPECT_EQ(k->hash, sh->hash) TH_LOG("the stream's checksum differs: the receiver did not get what was sent");
		return;
	}
	ASSERT_EQ(k->ndg, sh->ndgrams) TH_LOG("datagrams lost or added");
	for (i = 0; i < k->ndg; i++) {
		if (k->dg[i].len == sh->dgram[i].len && k->dg[i].hash == sh->dgram[i].hash)
			continue;
		if (bad++ < 5) {
			EXPECT_EQ(k->dg[i].len, sh->dgram[i].len) TH_LOG("datagram %zu", i);
			EXPECT_EQ(k->dg[i].hash, sh->dgram[i].hash)
				TH_LOG("datagram %zu: checksum differs", i);
		}
	}
	EXPECT_EQ(0, bad) TH_LOG("%zu of %zu datagrams differ from what was sent", bad, k->ndg);
}

/* Read the records of c->zfd that wait now, into c->log. */
static inline void pt_drain_records(struct __test_metadata *_metadata, struct pt_ctx *c)
{
	int ret;

	do {
		ret = zc_log_records(c->zfd, &c->log, 0);
	} while (ret > 0);
	EXPECT_LE(0, ret) TH_LOG("reading records: %s", strerror(-ret));
}

/* Every logged send's record came, and they cover the sends exactly. */
static inline void pt_check_records(struct __test_metadata *_metadata, struct pt_ctx *c)
{
	char msg[512];
	int ret;

	ret = zc_collect(c->zfd, &c->log, 20000);
	ASSERT_EQ(0, ret) TH_LOG("records cover %llu of %zu sends: %s",
				 ZC_U64(c->log.covered), c->log.nsent, strerror(-ret));
	ret = zc_check_records(&c->log, msg, sizeof(msg));
	EXPECT_EQ(0, ret) TH_LOG("%s", msg);
}

/*
 * Undo what the test set up, then wait for the module to be back where it
 * was: the pools' pages freed, none of them in flight, nothing pinned.
 */
static inline void pt_teardown(struct __test_metadata *_metadata, struct pt_ctx *c)
{
	struct zcopy_stats st;
	int64_t deadline;
	int i, fd, ret;

	for (i = 0; i < PT_MAX_CONNS; i++)
		pt_conn_free(&c->conn[i]);
	for (i = 0; i < PT_MAX_MAPS; i++) {
		if (c->map[i].addr)
			munmap(c->map[i].addr, c->map[i].len);
		c->map[i].addr = NULL;
	}
	for (i = 0; i < PT_MAX_FDS; i++)
		pt_close_fd(c, c->fds[i]);
	pt_close_fd(c, c->zfd);
	zc_log_free(&c->log);
	if (c->saved_max_pool_pages >= 0)
		zc_param_write("max_pool_pages", c->saved_max_pool_pages);
	if (c->saved_copy_below >= 0)
		zc_param_write("copy_below", c->saved_copy_below);

	fd = zc_open();
	ASSERT_LE(0, fd);
	deadline = zc_now_ms() + 10000;
	for (;;) {
		ret = zc_stats(fd, ZCOPY_STATS_MODULE, &st);
		if (ret)
			break;
		if (st.pool_pages == c->base.pool_pages &&
		    st.pool_pages_in_flight == c->base.pool_pages_in_flight &&
		    !st.pages_pinned && !st.sends_in_flight)
			break;
		if (zc_now_ms() > deadline)
			break;
		zc_sleep_ms(20);
	}
	close(fd);
	EXPECT_EQ(0, ret);
	EXPECT_EQ(c->base.pool_pages, st.pool_pages)
		TH_LOG("leak: the module's pool_pages is %llu after the test, %llu before",
		       ZC_U64(st.pool_pages), ZC_U64(c->base.pool_pages));
	EXPECT_EQ(c->base.pool_pages_in_flight, st.pool_pages_in_flight)
		TH_LOG("leak: the module's pool_pages_in_flight is %llu after the test, %llu before",
		       ZC_U64(st.pool_pages_in_flight), ZC_U64(c->base.pool_pages_in_flight));
	EXPECT_EQ(0, st.pages_pinned) TH_LOG("leak: %llu pages still pinned",
					     ZC_U64(st.pages_pinned));
	EXPECT_EQ(0, st.sends_in_flight) TH_LOG("%llu sends still in flight",
						ZC_U64(st.sends_in_flight));
}

#endif /* __KSELFTEST_HARNESS_H */

#endif /* POOL_TEST_UTIL_H */
