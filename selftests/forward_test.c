// SPDX-License-Identifier: GPL-2.0
/*
 * Forwarding (ZCOPY_IOC_FORWARD): received bytes sent on to another socket
 * from the pages they were received into, the router path.
 *
 *  - fwd:  a proxy between a pool sender (forked, in netns peer over the
 *          NICs) and a checksumming receiver (forked): everything it
 *          receives through the area it forwards, every byte checked at
 *          the far end, the ledger and the records saying how the bytes
 *          left: without a copy across e1000e, copied by the stack over
 *          loopback and veth;
 *  - fwd1: the call itself over loopback connections of send() data:
 *          every rejected input with its errno and nothing left behind,
 *          pieces of slots, one slot sent twice, records or none, a
 *          release while the stack still holds the pages, every way of
 *          writing into a page in flight failing; closing the fd, either
 *          socket, or exiting with forwards in flight; datagrams in and
 *          out.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "kselftest_harness.h"
#include "recv_test_util.h"

#define FWD_AREA_PAGES	512
#define FWD_DESC	64
#define RX_SLOTS_FWD1	64

/* FNV-1a of pattern bytes [0, @len). */
static uint64_t fwd_pattern_hash(uint64_t len)
{
	static uint8_t buf[64 << 10];
	uint64_t h = ZC_FNV_INIT, off = 0;

	while (off < len) {
		size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);

		zc_fill(buf, off, n);
		h = zc_fnv(h, buf, n);
		off += n;
	}
	return h;
}

/* Open the device for a forward test: NULL, or why the test is skipped. */
static const char *fwd_open(struct __test_metadata *_metadata, int *zfd)
{
	*zfd = zc_open();
	if (*zfd < 0 && errno == ENOENT)
		return ZCOPY_DEVICE " is missing: zcopy.ko is not loaded";
	EXPECT_LE(0, *zfd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
	if (*zfd < 0)
		return "the device cannot be opened";
	if (!(zc_features(*zfd) & ZCOPY_FEAT_FORWARD))
		return "the module lacks ZCOPY_FEAT_FORWARD";
	return NULL;
}

/* ---- fwd: sender -> proxy (us) -> receiver, across the test network ---- */

FIXTURE(fwd)
{
	int zfd;
	size_t ps;
	uint8_t *area;
	int lfd, in, out;
	pid_t tx;
	struct rt_tx_res *res;
	struct zc_rx rx;
	bool rx_started;
};

FIXTURE_VARIANT(fwd)
{
	enum zc_path in_path;
	enum zc_path out_path;
	int family;
	int out_type;		/* SOCK_STREAM, or SOCK_DGRAM: one datagram per slot */
	uint64_t bytes;
	uint32_t copied;	/* ZCOPY_COPIED_* the stack copies with; 0: none */
};

/*
 * Across e1000e: received by header split into pages of the NIC's, mapped,
 * and sent on from those very pages by scatter/gather DMA.
 */
FIXTURE_VARIANT_ADD(fwd, nic4148_to_nic_v4) {
	.in_path = ZC_NIC_HS4, .out_path = ZC_NIC_HS6, .family = AF_INET,
	.out_type = SOCK_STREAM, .bytes = 8 * RT_MIB,
};

FIXTURE_VARIANT_ADD(fwd, nic4168_to_nic1500_v6) {
	.in_path = ZC_NIC_HS6, .out_path = ZC_NIC, .family = AF_INET6,
	.out_type = SOCK_STREAM, .bytes = 8 * RT_MIB,
};

/* TCP in, UDP out: each slot a datagram (4096 + 28 bytes fit MTU 4168). */
FIXTURE_VARIANT_ADD(fwd, nic4148_to_udp_v4) {
	.in_path = ZC_NIC_HS4, .out_path = ZC_NIC_HS6, .family = AF_INET,
	.out_type = SOCK_DGRAM, .bytes = 1 * RT_MIB,
};

/* Local delivery copies what a zero-copy skb carries: the stack says so. */
FIXTURE_VARIANT_ADD(fwd, nic4148_to_veth_v4) {
	.in_path = ZC_NIC_HS4, .out_path = ZC_VETH, .family = AF_INET,
	.out_type = SOCK_STREAM, .bytes = 4 * RT_MIB, .copied = ZCOPY_COPIED_STACK,
};

FIXTURE_VARIANT_ADD(fwd, loopback_v6) {
	.in_path = ZC_LOOPBACK, .out_path = ZC_LOOPBACK, .family = AF_INET6,
	.out_type = SOCK_STREAM, .bytes = 4 * RT_MIB, .copied = ZCOPY_COPIED_LOOPBACK,
};

FIXTURE_SETUP(fwd)
{
	const char *why;

	self->zfd = -1;
	self->lfd = -1;
	self->in = -1;
	self->out = -1;
	self->tx = 0;
	self->area = NULL;
	self->res = NULL;
	self->rx_started = false;
	self->ps = zc_page_size();
	signal(SIGPIPE, SIG_IGN);
	why = fwd_open(_metadata, &self->zfd);
	if (!why)
		why = zc_path_missing(variant->in_path) ?: zc_path_missing(variant->out_path);
	if (why)
		SKIP(return, "%s", why);
	self->res = mmap(NULL, sizeof(*self->res), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->res);
	self->area = rt_mmap_area(self->zfd, FWD_AREA_PAGES, PROT_READ);
	ASSERT_NE(MAP_FAILED, self->area) TH_LOG("mmap of the area: %s", strerror(errno));
}

FIXTURE_TEARDOWN(fwd)
{
	if (self->tx > 0) {
		kill(self->tx, SIGKILL);
		waitpid(self->tx, NULL, 0);
	}
	if (self->rx_started)
		zc_rx_free(&self->rx);
	if (self->in >= 0)
		close(self->in);
	if (self->out >= 0)
		close(self->out);
	if (self->lfd >= 0)
		close(self->lfd);
	if (self->area && self->area != MAP_FAILED)
		munmap(self->area, FWD_AREA_PAGES * self->ps);
	if (self->zfd >= 0)
		close(self->zfd);
	if (self->res && self->res != MAP_FAILED)
		munmap(self->res, sizeof(*self->res));
}

/* The proxy: receive into the area, forward every slot, release it next time. */
static int fwd_pump(int zfd, int in, int out, bool dgrams, struct zc_rx *rx,
		    uint64_t *received, uint64_t *sends)
{
	struct zcopy_rx_desc d[FWD_DESC];
	struct zcopy_fwd_piece p[FWD_DESC];
	uint64_t held[FWD_DESC];
	int64_t deadline = zc_now_ms() + 60000;
	uint32_t nheld = 0, i;
	int ret;

	for (;;) {
		struct zcopy_recv r = {
			.sockfd = in, .desc = (uintptr_t)d, .desc_count = FWD_DESC,
			.timeout_ms = 20000, .release = (uintptr_t)held, .release_count = nheld,
		};

		ret = zc_recv_args(zfd, &r);
		/* The release comes first: done, whatever the receive did then. */
		nheld = 0;
		if (ret == -EINTR)
			continue;
		/* Every slot held by forwards in flight: wait for the stack. */
		if (ret == -ENOSPC && zc_now_ms() < deadline) {
			zc_sleep_ms(1);
			continue;
		}
		if (ret)
			return ret;
		nheld = r.desc_count;
		if (!r.bytes)
			return 0;
		for (i = 0; i < r.desc_count; i++) {
			p[i] = (struct zcopy_fwd_piece){ .offset = d[i].offset, .len = d[i].len };
			held[i] = d[i].offset;
		}
		*received += r.bytes;
		if (!dgrams) {
			ret = zc_forward_all(zfd, out, p, r.desc_count, 0, sends);
			if (ret)
				return ret;
			continue;
		}
		for (i = 0; i < r.desc_count; i++) {
			ret = zc_forward_all(zfd, out, &p[i], 1, 0, sends);
			if (ret)
				return ret;
		}
		/* Datagrams are not paced by a window: let the receiver keep up. */
		ret = zc_rx_wait_for(rx, *sends, 10000);
		if (ret)
			return ret;
	}
}

TEST_F_TIMEOUT(fwd, every_byte_sent_on, 300)
{
	struct zc_net out_net = { variant->out_path, variant->family, variant->out_type };
	const char *ip = zc_local_ip(variant->in_path, variant->family);
	bool dgrams = variant->out_type == SOCK_DGRAM;
	struct rt_tx_args a = {
		.netns = zc_path_netns(variant->in_path),
		.family = variant->family,
		.ip = ip,
		.total = variant->bytes,
		.pool = true,
		.notify = variant->in_path != ZC_LOOPBACK,
		.pool_pages = 240,
		.chunk_pages = 60,
	};
	uint64_t received = 0, sends = 0, i, expect;
	struct zcopy_stats st;
	int ret, status;

	ret = zc_rx_start(&self->rx, &out_net, &(struct zc_rx_opts){ .rcvbuf = 8 << 20 });
	ASSERT_EQ(0, ret) TH_LOG("the receiver: %s", strerror(-ret));
	self->rx_started = true;
	/* Less in the send queue than the area holds: the proxy never waits long. */
	self->out = zc_connect(&out_net, self->rx.port, 1 << 20, false);
	ASSERT_LE(0, self->out) TH_LOG("connecting on: %s", strerror(-self->out));

	self->lfd = zc_bind(variant->family, SOCK_STREAM, ip, 4 << 20);
	ASSERT_LE(0, self->lfd) TH_LOG("listening on %s: %s", ip, strerror(-self->lfd));
	a.port = zc_port(self->lfd);
	self->tx = rt_tx_start(&a, self->res);
	ASSERT_LT(0, self->tx);
	self->in = zc_accept(self->lfd, 10000);
	ASSERT_LE(0, self->in) TH_LOG("accept: %s", strerror(-self->in));

	ret = fwd_pump(self->zfd, self->in, self->out, dgrams, &self->rx, &received, &sends);
	ASSERT_EQ(0, ret) TH_LOG("proxying: %s, after %llu bytes", strerror(-ret),
				 ZC_U64(received));
	ASSERT_EQ(variant->bytes, received);
	ASSERT_EQ(self->tx, waitpid(self->tx, &status, 0));
	self->tx = 0;
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("the sender: %s: %s", self->res->what, strerror(self->res->err));

	if (!dgrams)
		shutdown(self->out, SHUT_WR);
	ret = zc_rx_finish(&self->rx, dgrams ? sends : 0, 30000);
	ASSERT_EQ(0, ret) TH_LOG("the receiver: %s", strerror(-ret));
	EXPECT_EQ(variant->bytes, self->rx.sh->bytes);
	if (dgrams) {
		/* Each datagram a slot: a page of the stream, in order. */
		ASSERT_EQ(sends, self->rx.sh->ndgrams);
		for (i = 0, expect = 0; i < self->rx.sh->ndgrams && i < ZC_RX_MAX_DGRAMS; i++) {
			uint8_t buf[65536];
			uint32_t len = self->rx.sh->dgram[i].len;

			zc_fill(buf, expect, len);
			EXPECT_EQ(zc_fnv(ZC_FNV_INIT, buf, len), self->rx.sh->dgram[i].hash)
				TH_LOG("datagram %llu (%u bytes at %llu)", ZC_U64(i), len,
				       ZC_U64(expect));
			expect += len;
		}
	} else {
		EXPECT_EQ(fwd_pattern_hash(variant->bytes), self->rx.sh->hash)
			TH_LOG("the bytes that came out are not those that went in");
	}

	ASSERT_EQ(0, zc_wait_idle(self->zfd, 0, 10000, &st));
	TH_LOG("%s -> %s: %llu bytes in %llu forwards; received %llu mapped, %llu copied; "
	       "forwarded %llu uncopied, %llu copied (loopback %llu, stack %llu)",
	       zc_path_name(variant->in_path), zc_path_name(variant->out_path),
	       ZC_U64(received), ZC_U64(st.fwd_sends), ZC_U64(st.rx_bytes_mapped),
	       ZC_U64(st.rx_bytes_copied), ZC_U64(st.fwd_zerocopy_bytes),
	       ZC_U64(st.fwd_copied_bytes), ZC_U64(st.fwd_copied_loopback),
	       ZC_U64(st.fwd_copied_stack));
	EXPECT_EQ(variant->bytes, st.fwd_bytes);
	EXPECT_EQ(sends, st.fwd_sends);
	EXPECT_EQ(st.fwd_sends, st.fwd_completions);
	EXPECT_EQ(variant->bytes, st.fwd_zerocopy_bytes + st.fwd_copied_bytes);
	EXPECT_EQ(0, st.fwd_slots_held);
	/* Sends and forwards count apart. */
	EXPECT_EQ(0, st.sends);
	if (!variant->copied) {
		EXPECT_EQ(variant->bytes, st.fwd_zerocopy_bytes)
			TH_LOG("the stack copied %llu forwarded bytes", ZC_U64(st.fwd_copied_bytes));
		/* Header split: the proxy's CPU copied nothing but stray bytes. */
		EXPECT_LE(st.rx_bytes_copied * 100, variant->bytes);
	} else if (variant->copied == ZCOPY_COPIED_LOOPBACK) {
		EXPECT_EQ(variant->bytes, st.fwd_copied_loopback);
	} else {
		EXPECT_EQ(variant->bytes, st.fwd_copied_stack);
	}
}

/* ---- fwd1: the call, over loopback connections of send() data ---- */

FIXTURE(fwd1)
{
	int zfd;
	size_t ps;
	uint8_t *area;
	int cli, srv;		/* in: cli writes, srv receives through the area */
	int ocli, osrv;		/* out: ocli forwards, osrv reads */
	struct zcopy_rx_desc d[FWD_DESC];
	uint32_t nd;
};

FIXTURE_SETUP(fwd1)
{
	const char *why;

	self->zfd = -1;
	self->cli = self->srv = self->ocli = self->osrv = -1;
	self->area = NULL;
	self->nd = 0;
	self->ps = zc_page_size();
	signal(SIGPIPE, SIG_IGN);
	why = fwd_open(_metadata, &self->zfd);
	if (why)
		SKIP(return, "%s", why);
	self->area = rt_mmap_area(self->zfd, RX_SLOTS_FWD1, PROT_READ);
	ASSERT_NE(MAP_FAILED, self->area);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &self->cli, &self->srv));
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &self->ocli, &self->osrv));
}

/* Close the sockets of @fds (-1: none), unmap @area of RX_SLOTS_FWD1 slots, close @zfd. */
static void fwd1_close(const int *fds, int n, uint8_t *area, int zfd)
{
	int i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (area && area != MAP_FAILED)
		munmap(area, RX_SLOTS_FWD1 * zc_page_size());
	if (zfd >= 0)
		close(zfd);
}

FIXTURE_TEARDOWN(fwd1)
{
	int fds[] = { self->cli, self->srv, self->ocli, self->osrv };

	fwd1_close(fds, 4, self->area, self->zfd);
}

typedef FIXTURE_DATA(fwd1) fwd1_self;

/* Write pattern bytes [@off, @off + @len) on cli and receive them all into the area. */
static int fwd1_take(fwd1_self *self, uint64_t off, size_t len)
{
	uint64_t got = 0;
	struct zcopy_recv r;
	int ret;

	ret = rt_write_pattern(self->cli, off, len);
	if (ret)
		return ret;
	while (got < len) {
		ret = zc_recv(self->zfd, self->srv, self->d + self->nd, FWD_DESC - self->nd, 0,
			      5000, &r);
		if (ret)
			return ret;
		if (!r.bytes)
			return -ENODATA;
		self->nd += r.desc_count;
		got += r.bytes;
	}
	return 0;
}

/* Read exactly @len bytes from @fd (5 s at most): they must be pattern bytes from @off. */
static int fwd1_expect(int fd, uint64_t off, size_t len)
{
	static uint8_t buf[1 << 20];
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		if (rt_wait_readable(fd, 1, 5000))
			return -ETIMEDOUT;
		n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n <= 0)
			return n ? -errno : -ENODATA;
		got += n;
	}
	return zc_check(buf, off, len) == len ? 0 : -EBADMSG;
}

static struct zcopy_stats fwd1_stats(int zfd)
{
	struct zcopy_stats st;

	memset(&st, 0xff, sizeof(st));
	zc_stats(zfd, 0, &st);
	return st;
}

/* The ledger of a fd whose forwards are all done. */
static bool fwd_idle(const struct zcopy_stats *st)
{
	return !st->sends_in_flight && !st->fwd_slots_held;
}

/* What the rejected inputs are made of. */
struct fwd_env {
	size_t ps;
	uint64_t full, part, empty, end;	/* a full slot, a 100-byte one, a free one */
	int pipe, listener, unix_sock, shut, udp;
	void *gone;				/* unmapped */
	struct zcopy_fwd_piece *many;		/* ZCOPY_MAX_FWD_PIECES + 1 */
};

/* A call, good but for what its case changes. */
struct fwd_call {
	struct zcopy_forward f;
	struct zcopy_fwd_piece p[2];
	const struct fwd_env *env;
};

static void bad_flags(struct fwd_call *c)
{
	c->f.flags = 1U << 7;
}

static void bad_pad(struct fwd_call *c)
{
	c->f.__pad = 1;
}

static void bad_reserved(struct fwd_call *c)
{
	c->f.reserved[3] = 1;
}

static void bad_count0(struct fwd_call *c)
{
	c->f.count = 0;
}

static void bad_len0(struct fwd_call *c)
{
	c->p[0].len = 0;
}

static void bad_past_area(struct fwd_call *c)
{
	c->p[0].offset = c->env->end;
}

static void bad_far(struct fwd_call *c)
{
	c->p[0].offset = 1ULL << 63;
}

static void bad_piece_pad(struct fwd_call *c)
{
	c->p[0].__pad = 1;
}

static void bad_empty_slot(struct fwd_call *c)
{
	c->p[0].offset = c->env->empty;
}

static void bad_pieces_null(struct fwd_call *c)
{
	c->f.pieces = 0;
}

static void bad_pieces_gone(struct fwd_call *c)
{
	c->f.pieces = (uintptr_t)c->env->gone;
}

static void bad_sock_badf(struct fwd_call *c)
{
	c->f.sockfd = 1 << 20;
}

static void bad_sock_pipe(struct fwd_call *c)
{
	c->f.sockfd = c->env->pipe;
}

static void bad_sock_listen(struct fwd_call *c)
{
	c->f.sockfd = c->env->listener;
}

static void bad_sock_unix(struct fwd_call *c)
{
	c->f.sockfd = c->env->unix_sock;
}

static void bad_sock_shut(struct fwd_call *c)
{
	c->f.sockfd = c->env->shut;
}

static void bad_sock_udp(struct fwd_call *c)
{
	c->f.sockfd = c->env->udp;
}

static void bad_count_max(struct fwd_call *c)
{
	int i;

	for (i = 0; i <= ZCOPY_MAX_FWD_PIECES; i++)
		c->env->many[i] = c->p[0];
	c->f.pieces = (uintptr_t)c->env->many;
	c->f.count = ZCOPY_MAX_FWD_PIECES + 1;
}

static void bad_past_data(struct fwd_call *c)
{
	c->p[0] = (struct zcopy_fwd_piece){ .offset = c->env->part + 50, .len = 51 };
}

static void bad_spans(struct fwd_call *c)
{
	c->p[0] = (struct zcopy_fwd_piece){ .offset = c->env->full + c->env->ps - 10, .len = 20 };
}

static void bad_second(struct fwd_call *c)
{
	c->p[1] = (struct zcopy_fwd_piece){ .offset = c->env->empty, .len = 1 };
	c->f.count = 2;
}

static const struct {
	const char *why;
	int err;
	void (*make)(struct fwd_call *c);
} fwd_bad_calls[] = {
	{ "a flag no one defined", EINVAL, bad_flags },
	{ "__pad not zero", EINVAL, bad_pad },
	{ "reserved[3] not zero", EINVAL, bad_reserved },
	{ "no pieces", EINVAL, bad_count0 },
	{ "ZCOPY_MAX_FWD_PIECES + 1 pieces", EINVAL, bad_count_max },
	{ "a piece of 0 bytes", EINVAL, bad_len0 },
	{ "a piece at the end of the area", EINVAL, bad_past_area },
	{ "a piece at offset 2^63", EINVAL, bad_far },
	{ "a piece past its slot's data", EINVAL, bad_past_data },
	{ "a piece across two slots", EINVAL, bad_spans },
	{ "a piece's __pad not zero", EINVAL, bad_piece_pad },
	{ "a piece in a slot that holds nothing", ENOENT, bad_empty_slot },
	{ "a good piece, then one in an empty slot", ENOENT, bad_second },
	{ "pieces at NULL", EFAULT, bad_pieces_null },
	{ "pieces at an unmapped address", EFAULT, bad_pieces_gone },
	{ "no such fd", EBADF, bad_sock_badf },
	{ "a pipe", ENOTSOCK, bad_sock_pipe },
	{ "a listening TCP socket", ENOTCONN, bad_sock_listen },
	{ "a unix socket", EOPNOTSUPP, bad_sock_unix },
	{ "a TCP socket shut down for sending", EPIPE, bad_sock_shut },
	{ "an unconnected UDP socket", ENOTCONN, bad_sock_udp },
};

/*
 * Each input refused with its errno, and nothing left behind: no slot
 * held, nothing sent, the slots still the application's.
 */
TEST_F(fwd1, rejected_inputs)
{
	struct fwd_env env = { .ps = self->ps, .end = (uint64_t)RX_SLOTS_FWD1 * self->ps };
	int pfd[2], ufd[2], shut_s, fd;
	struct zcopy_stats st;
	struct fwd_call c;
	uint64_t rel[2];
	unsigned int i;

	/* A full slot and a partial one: a page and 100 bytes. */
	ASSERT_EQ(0, fwd1_take(self, 0, self->ps + 100));
	ASSERT_EQ(2, self->nd);
	env.full = self->d[0].offset;
	env.part = self->d[1].offset;
	ASSERT_EQ(100, self->d[1].len);
	for (env.empty = 0; env.empty == env.full || env.empty == env.part;)
		env.empty += self->ps;

	ASSERT_EQ(0, pipe(pfd));
	env.pipe = pfd[0];
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, ufd));
	env.unix_sock = ufd[0];
	env.listener = zc_bind(AF_INET, SOCK_STREAM, "127.0.0.1", 0);
	ASSERT_LE(0, env.listener);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &env.shut, &shut_s));
	ASSERT_EQ(0, shutdown(env.shut, SHUT_WR));
	env.udp = socket(AF_INET, SOCK_DGRAM, 0);
	ASSERT_LE(0, env.udp);
	env.gone = mmap(NULL, self->ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, env.gone);
	munmap(env.gone, self->ps);
	env.many = calloc(ZCOPY_MAX_FWD_PIECES + 1, sizeof(*env.many));
	ASSERT_NE(NULL, env.many);

	for (i = 0; i <= ARRAY_SIZE(fwd_bad_calls); i++) {
		const char *why = i < ARRAY_SIZE(fwd_bad_calls) ? fwd_bad_calls[i].why : "a good call";

		memset(&c, 0, sizeof(c));
		c.env = &env;
		c.p[0] = (struct zcopy_fwd_piece){ .offset = env.full + 10, .len = 20 };
		c.f.sockfd = self->ocli;
		c.f.pieces = (uintptr_t)c.p;
		c.f.count = 1;
		errno = 0;
		if (i < ARRAY_SIZE(fwd_bad_calls)) {
			fwd_bad_calls[i].make(&c);
			EXPECT_EQ(-1, ioctl(self->zfd, ZCOPY_IOC_FORWARD, &c.f)) TH_LOG("%s", why);
			EXPECT_EQ(fwd_bad_calls[i].err, errno) TH_LOG("%s: %s", why, strerror(errno));
		} else {
			/* For contrast, and to see that the refused ones sent nothing. */
			EXPECT_EQ(0, ioctl(self->zfd, ZCOPY_IOC_FORWARD, &c.f)) TH_LOG("%s",
										strerror(errno));
			EXPECT_EQ(20, c.f.bytes);
			EXPECT_EQ(0, fwd1_expect(self->osrv, 10, 20));
		}
		ASSERT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, &st, fwd_idle))
			TH_LOG("%s: something is still held", why);
	}
	EXPECT_EQ(-ETIMEDOUT, fwd1_expect(self->osrv, 0, 1));
	st = fwd1_stats(self->zfd);
	EXPECT_EQ(1, st.fwd_sends);
	EXPECT_EQ(20, st.fwd_bytes);
	/* The slots are still the application's. */
	rel[0] = env.full;
	rel[1] = env.part;
	EXPECT_EQ(0, zc_release(self->zfd, rel, 2));
	st = fwd1_stats(self->zfd);
	EXPECT_EQ(0, st.rx_slots_used);

	/* Without a receive area: ENXIO. */
	fd = zc_open();
	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENXIO, zc_forward(fd, self->ocli, c.p, 1, 0, 0, NULL));
	close(fd);
	/* The arguments themselves unreadable: EFAULT. */
	EXPECT_EQ(-1, ioctl(self->zfd, ZCOPY_IOC_FORWARD, env.gone));
	EXPECT_EQ(EFAULT, errno);

	free(env.many);
	close(env.udp);
	close(env.shut);
	close(shut_s);
	close(env.listener);
	close(ufd[0]);
	close(ufd[1]);
	close(pfd[0]);
	close(pfd[1]);
}

/* Pieces of slots, in any order: a proxy drops headers and reorders. */
TEST_F(fwd1, pieces_of_slots)
{
	struct zcopy_fwd_piece p[3];
	struct zcopy_forward f;
	uint8_t want[300];

	ASSERT_EQ(0, fwd1_take(self, 0, 3 * self->ps));
	ASSERT_EQ(3, self->nd);
	/* The last 100 bytes of slot 2, the first 100 of slot 0, 100 from the middle of 1. */
	p[0] = (struct zcopy_fwd_piece){ .offset = self->d[2].offset + self->ps - 100, .len = 100 };
	p[1] = (struct zcopy_fwd_piece){ .offset = self->d[0].offset, .len = 100 };
	p[2] = (struct zcopy_fwd_piece){ .offset = self->d[1].offset + 2000, .len = 100 };
	ASSERT_EQ(0, zc_forward(self->zfd, self->ocli, p, 3, 0, 0, &f));
	EXPECT_EQ(300, f.bytes);
	EXPECT_EQ(ZCOPY_NO_SEQ, f.seq);
	EXPECT_EQ(ZCOPY_NO_SEQ, f.stream_offset);
	ASSERT_EQ(0, rt_wait_readable(self->osrv, 300, 5000));
	ASSERT_EQ(300, recv(self->osrv, want, sizeof(want), MSG_WAITALL));
	EXPECT_EQ(100, zc_check(want, 3 * self->ps - 100, 100));
	EXPECT_EQ(100, zc_check(want + 100, 0, 100));
	EXPECT_EQ(100, zc_check(want + 200, self->ps + 2000, 100));
}

/* One slot to two sockets; and the same slot twice in one call. */
TEST_F(fwd1, one_slot_many_times)
{
	struct zcopy_fwd_piece p[2];
	uint64_t rel;
	int c2, s2;

	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &c2, &s2));
	ASSERT_EQ(0, fwd1_take(self, 0, self->ps));
	p[0] = (struct zcopy_fwd_piece){ .offset = self->d[0].offset, .len = self->ps };
	p[1] = p[0];
	EXPECT_EQ(0, zc_forward(self->zfd, self->ocli, p, 2, 0, 0, NULL));
	EXPECT_EQ(0, zc_forward(self->zfd, c2, p, 1, 0, 0, NULL));
	EXPECT_EQ(0, fwd1_expect(self->osrv, 0, self->ps));
	EXPECT_EQ(0, fwd1_expect(self->osrv, 0, self->ps));
	EXPECT_EQ(0, fwd1_expect(s2, 0, self->ps));
	EXPECT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, NULL, fwd_idle));
	rel = self->d[0].offset;
	EXPECT_EQ(0, zc_release(self->zfd, &rel, 1));
	close(c2);
	close(s2);
}

/* With ZCOPY_FORWARD_NOTIFY a record, in the fd's stream of sends; without, none. */
TEST_F(fwd1, records)
{
	struct zcopy_completion rec[4];
	struct zcopy_fwd_piece p;
	struct zcopy_forward f;
	int n;

	ASSERT_EQ(0, fwd1_take(self, 0, 2 * self->ps));
	p = (struct zcopy_fwd_piece){ .offset = self->d[0].offset, .len = self->ps };
	ASSERT_EQ(0, zc_forward(self->zfd, self->ocli, &p, 1, 0, 7, &f));
	EXPECT_EQ(ZCOPY_NO_SEQ, f.seq);
	p.offset = self->d[1].offset;
	ASSERT_EQ(0, zc_forward(self->zfd, self->ocli, &p, 1, ZCOPY_FORWARD_NOTIFY, 8, &f));
	EXPECT_EQ(0, f.seq);
	EXPECT_EQ(0, f.stream_offset);
	EXPECT_EQ(self->ps, f.bytes);
	EXPECT_EQ(0, fwd1_expect(self->osrv, 0, 2 * self->ps));
	n = zc_read_records(self->zfd, rec, 4, 5000);
	ASSERT_EQ(1, n);
	EXPECT_EQ(8, rec[0].cookie);
	EXPECT_EQ(0, rec[0].seq);
	EXPECT_EQ(self->ps, rec[0].bytes);
	/* Local delivery copies a zero-copy skb's pages: over loopback. */
	EXPECT_EQ(ZCOPY_COMPL_COPIED | ZCOPY_COPIED_LOOPBACK, rec[0].flags);
	EXPECT_EQ(0, zc_read_records(self->zfd, rec, 4, 200));
}

/*
 * Forward all of @n bytes received to a receiver that reads nothing yet,
 * over a window that takes little, so that the pages stay in flight: @p
 * gets the pieces forwarded, @rel their slots.
 */
static void fwd1_forward_stalled(struct __test_metadata *_metadata, FIXTURE_DATA(fwd1) * self,
				 size_t n, struct zcopy_fwd_piece *p, uint64_t *rel)
{
	int i;

	close(self->ocli);
	close(self->osrv);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 4096, &self->ocli, &self->osrv));
	ASSERT_EQ(0, zc_set_buf(self->ocli, SO_SNDBUF, 4 << 20));
	ASSERT_EQ(0, fwd1_take(self, 0, n));
	for (i = 0; i < self->nd; i++) {
		p[i] = (struct zcopy_fwd_piece){ .offset = self->d[i].offset, .len = self->d[i].len };
		rel[i] = self->d[i].offset;
	}
	ASSERT_EQ(0, zc_forward(self->zfd, self->ocli, p, self->nd, 0, 0, NULL));
}

/*
 * Released while the stack holds them: unmapped at once, but the slots are
 * reused only once the stack lets go, and the bytes that leave are those
 * received.
 */
TEST_F(fwd1, release_while_held)
{
	size_t n = 32 * self->ps;
	struct zcopy_fwd_piece p[FWD_DESC];
	struct zcopy_stats st;
	uint64_t rel[FWD_DESC];
	void *addr;
	int code;

	fwd1_forward_stalled(_metadata, self, n, p, rel);
	st = fwd1_stats(self->zfd);
	EXPECT_LT(0, st.fwd_slots_held) TH_LOG("the stack let go of everything at once");

	ASSERT_EQ(0, zc_release(self->zfd, rel, self->nd));
	st = fwd1_stats(self->zfd);
	TH_LOG("released %u slots, %llu still held by the stack", self->nd,
	       ZC_U64(st.fwd_slots_held));
	/* Still counted, still not free: the receive area stays charged. */
	EXPECT_EQ(st.fwd_slots_held, st.rx_slots_used);
	/* But gone from the application: unmapped, not releasable, not forwardable. */
	addr = self->area + self->d[self->nd - 1].offset;
	EXPECT_EQ(SIGBUS, rt_probe(addr, false, &code, &addr));
	EXPECT_EQ(-ENOENT, zc_release(self->zfd, &rel[self->nd - 1], 1));
	EXPECT_EQ(-ENOENT, zc_forward(self->zfd, self->ocli, &p[self->nd - 1], 1, 0, 0, NULL));

	/* The receiver reads: what it gets is what came in. */
	EXPECT_EQ(0, fwd1_expect(self->osrv, 0, n));
	ASSERT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, &st, fwd_idle));
	EXPECT_EQ(0, st.rx_slots_used);
}

/*
 * Nothing writes a page the stack holds: every way a process could write
 * into a forwarded slot while its page is in flight fails, and the far end
 * gets exactly the bytes received.
 */
TEST_F(fwd1, writes_into_forwarded_pages_fail)
{
	size_t n = 16 * self->ps;
	struct zcopy_fwd_piece p[FWD_DESC];
	struct zcopy_stats st;
	uint64_t rel[FWD_DESC];
	uint8_t junk[64];
	struct iovec local = { junk, sizeof(junk) }, remote;
	int code, fd, pipefd[2], c2, s2;
	void *fault;
	uint8_t *addr;

	memset(junk, 0xa5, sizeof(junk));
	fwd1_forward_stalled(_metadata, self, n, p, rel);
	st = fwd1_stats(self->zfd);
	ASSERT_LT(0, st.fwd_slots_held) TH_LOG("the stack let go of everything at once");

	addr = self->area + self->d[self->nd - 1].offset;
	remote = (struct iovec){ addr, sizeof(junk) };
	/* A store. */
	EXPECT_EQ(SIGSEGV, rt_probe(addr, true, &code, &fault));
	/* Making the mapping writable. */
	EXPECT_EQ(-1, mprotect(addr, self->ps, PROT_READ | PROT_WRITE));
	/* The kernel writing for the process: /proc/self/mem, process_vm_writev(). */
	fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, pwrite(fd, junk, sizeof(junk), (off_t)(uintptr_t)addr));
	close(fd);
	EXPECT_EQ(-1, process_vm_writev(getpid(), &local, 1, &remote, 1, 0));
	/* read(2) and recv() into it. */
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ((ssize_t)sizeof(junk), write(pipefd[1], junk, sizeof(junk)));
	EXPECT_EQ(-1, read(pipefd[0], addr, sizeof(junk)));
	EXPECT_EQ(EFAULT, errno);
	close(pipefd[0]);
	close(pipefd[1]);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &c2, &s2));
	ASSERT_EQ((ssize_t)sizeof(junk), send(c2, junk, sizeof(junk), 0));
	ASSERT_EQ(0, rt_wait_readable(s2, 1, 5000));
	EXPECT_EQ(-1, recv(s2, addr, sizeof(junk), MSG_DONTWAIT));
	EXPECT_EQ(EFAULT, errno);
	close(c2);
	close(s2);

	/* The receiver reads: what it gets is what came in. */
	EXPECT_EQ(0, fwd1_expect(self->osrv, 0, n));
	ASSERT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, &st, fwd_idle));
	EXPECT_EQ(0, zc_release(self->zfd, rel, self->nd));
}

/* A fresh out pair whose receiver reads nothing yet, with a small window. */
static int fwd1_slow_pair(fwd1_self *self)
{
	int ret;

	close(self->ocli);
	close(self->osrv);
	ret = zc_tcp_pair(AF_INET, 4096, &self->ocli, &self->osrv);
	return ret ?: zc_set_buf(self->ocli, SO_SNDBUF, 4 << 20);
}

/* Receive @n bytes and forward them all, with a record. */
static int fwd1_forward_all(fwd1_self *self, size_t n)
{
	struct zcopy_fwd_piece p[FWD_DESC];
	int i, ret;

	ret = fwd1_take(self, 0, n);
	if (ret)
		return ret;
	for (i = 0; i < self->nd; i++)
		p[i] = (struct zcopy_fwd_piece){ .offset = self->d[i].offset, .len = self->d[i].len };
	return zc_forward(self->zfd, self->ocli, p, self->nd, ZCOPY_FORWARD_NOTIFY, 0, NULL);
}

/* Forward @n received bytes to a receiver that reads nothing yet: in flight. */
static int fwd1_in_flight(fwd1_self *self, size_t n)
{
	return fwd1_slow_pair(self) ?: fwd1_forward_all(self, n);
}

/*
 * A slot that ZCOPY_MAX_SLOT_FORWARDS pieces in flight hold takes no more
 * (ENOBUFS, holding nothing for the call): its count must never wrap,
 * which would free a page the stack is still sending. Pieces of one byte,
 * which TCP merges into one fragment per call, reach the limit in a few
 * KiB of send queue.
 */
TEST_F(fwd1, slot_forwards_capped)
{
	static struct zcopy_fwd_piece p[ZCOPY_MAX_FWD_PIECES];
	const int most = ZCOPY_MAX_SLOT_FORWARDS / ZCOPY_MAX_FWD_PIECES + 8;
	struct zcopy_forward f;
	struct zcopy_stats st;
	int i, calls, ret = 0;
	struct linger lg = { .l_onoff = 1 };
	uint64_t rel;

	ASSERT_EQ(0, fwd1_slow_pair(self));
	/* TCP charges each piece's page to the send buffer: room for all. */
	ASSERT_EQ(0, zc_set_buf(self->ocli, SO_SNDBUF, ZCOPY_MAX_SLOT_FORWARDS * self->ps));
	ASSERT_EQ(0, fwd1_take(self, 0, self->ps));
	ASSERT_EQ(self->ps, self->d[0].len);
	for (i = 0; i < ZCOPY_MAX_FWD_PIECES; i++)
		p[i] = (struct zcopy_fwd_piece){ .offset = self->d[0].offset + i, .len = 1 };
	for (calls = 0; calls < most; calls++) {
		ret = zc_forward(self->zfd, self->ocli, p, ZCOPY_MAX_FWD_PIECES,
				 ZCOPY_SEND_DONTWAIT, 0, &f);
		if (ret)
			break;
		ASSERT_EQ(ZCOPY_MAX_FWD_PIECES, f.bytes);
	}
	EXPECT_EQ(-ENOBUFS, ret);
	/* Less only by what the receiver's window took and acknowledged. */
	EXPECT_LE(ZCOPY_MAX_SLOT_FORWARDS / ZCOPY_MAX_FWD_PIECES, calls);

	/* The refused call sent nothing; those before it, what they said. */
	st = fwd1_stats(self->zfd);
	EXPECT_EQ(calls, st.fwd_sends);
	EXPECT_EQ((uint64_t)calls * ZCOPY_MAX_FWD_PIECES, st.fwd_bytes);
	EXPECT_EQ(0, fwd1_expect(self->osrv, 0, ZCOPY_MAX_FWD_PIECES));

	/*
	 * Through the small window the rest would take minutes: abort, which
	 * frees what the stack queued, and the slot must be held by nothing.
	 */
	ASSERT_EQ(0, setsockopt(self->ocli, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	close(self->ocli);
	self->ocli = -1;
	EXPECT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, &st, fwd_idle))
		TH_LOG("still held: %llu slots, %llu sends", ZC_U64(st.fwd_slots_held),
		       ZC_U64(st.sends_in_flight));
	rel = self->d[0].offset;
	EXPECT_EQ(0, zc_release(self->zfd, &rel, 1));
}

/*
 * zc_forward_all() that stops at EAGAIN (ZCOPY_SEND_DONTWAIT, a full send
 * buffer) leaves in the pieces what it did not send: those sent emptied,
 * from the first, the rest adding up to what the ledger says did not go.
 * Called again with the same pieces as the receiver reads, it resumes, and
 * the receiver gets every byte once, in order.
 */
TEST_F(fwd1, forward_all_resumes_after_eagain)
{
	size_t n = 32 * self->ps, left = 0, got = 0;
	struct zcopy_fwd_piece p[FWD_DESC];
	struct pollfd pfd = { .events = POLLOUT };
	uint64_t rel[FWD_DESC];
	struct zcopy_stats st;
	bool sent = true;
	uint8_t *buf;
	ssize_t r;
	int i, ret, rounds;

	buf = malloc(n);
	ASSERT_NE(NULL, buf);
	close(self->ocli);
	close(self->osrv);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 4096, &self->ocli, &self->osrv));
	ASSERT_EQ(0, zc_set_buf(self->ocli, SO_SNDBUF, 8 * self->ps));
	pfd.fd = self->ocli;
	ASSERT_EQ(0, fwd1_take(self, 0, n));
	for (i = 0; i < self->nd; i++) {
		p[i] = (struct zcopy_fwd_piece){ .offset = self->d[i].offset, .len = self->d[i].len };
		rel[i] = self->d[i].offset;
	}
	ret = zc_forward_all(self->zfd, self->ocli, p, self->nd, ZCOPY_SEND_DONTWAIT, NULL);
	ASSERT_EQ(-EAGAIN, ret) TH_LOG("%s: the send buffer took %zu bytes",
				       ret ? strerror(-ret) : "all sent", n);
	for (i = 0; i < self->nd; i++) {
		if (p[i].len)
			sent = false;
		else
			EXPECT_TRUE(sent) TH_LOG("piece %d emptied after one left", i);
		left += p[i].len;
	}
	st = fwd1_stats(self->zfd);
	EXPECT_EQ(n, st.fwd_bytes + left);
	EXPECT_LT(0, left);

	for (rounds = 0; ret == -EAGAIN && rounds < 1000; rounds++) {
		while ((r = recv(self->osrv, buf + got, n - got, MSG_DONTWAIT)) > 0)
			got += r;
		poll(&pfd, 1, 1000);
		ret = zc_forward_all(self->zfd, self->ocli, p, self->nd, ZCOPY_SEND_DONTWAIT,
				     NULL);
	}
	EXPECT_EQ(0, ret) TH_LOG("%s after %d rounds", strerror(-ret), rounds);
	EXPECT_EQ(got, zc_check(buf, 0, got));
	EXPECT_EQ(0, fwd1_expect(self->osrv, got, n - got));
	st = fwd1_stats(self->zfd);
	EXPECT_EQ(n, st.fwd_bytes);
	ASSERT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, &st, fwd_idle));
	EXPECT_EQ(0, zc_release(self->zfd, rel, self->nd));
	free(buf);
}

/* The socket forwarded to, closed with the pages in flight: they still leave. */
TEST_F(fwd1, close_out_socket_in_flight)
{
	size_t n = 16 * self->ps;
	struct zcopy_stats st;

	ASSERT_EQ(0, fwd1_in_flight(self, n));
	close(self->ocli);
	self->ocli = -1;
	EXPECT_EQ(0, fwd1_expect(self->osrv, 0, n));
	ASSERT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, &st, fwd_idle));
}

/* The socket the bytes came from, closed with them in flight: nothing changes. */
TEST_F(fwd1, close_in_socket_in_flight)
{
	size_t n = 16 * self->ps;
	struct zcopy_stats st;

	ASSERT_EQ(0, fwd1_in_flight(self, n));
	close(self->cli);
	close(self->srv);
	self->cli = self->srv = -1;
	EXPECT_EQ(0, fwd1_expect(self->osrv, 0, n));
	ASSERT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, &st, fwd_idle));
}

/*
 * The process that forwarded exits with its forwards in flight, holding
 * the last reference to its zcopy file: the far end gets every byte and
 * the module ends holding nothing.
 */
TEST_F(fwd1, exit_with_forwards_in_flight)
{
	size_t n = 16 * self->ps;
	struct zcopy_stats st;
	int status;
	pid_t pid;

	/* The receiver reads nothing until the child has gone. */
	ASSERT_EQ(0, fwd1_slow_pair(self));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* A zcopy file and area of its own: areas are not inherited. */
		self->zfd = zc_open();
		self->area = rt_mmap_area(self->zfd, RX_SLOTS_FWD1, PROT_READ);
		_exit(self->area == MAP_FAILED || fwd1_forward_all(self, n) ? 1 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));

	EXPECT_EQ(0, fwd1_expect(self->osrv, 0, n));
	ASSERT_EQ(0, zc_poll_stats(-1, ZCOPY_STATS_MODULE, 10000, &st, zc_module_idle))
		TH_LOG("the module still holds: %llu in flight, %llu slots, %llu held",
		       ZC_U64(st.sends_in_flight), ZC_U64(st.rx_slots_used),
		       ZC_U64(st.fwd_slots_held));
}

/* The fd closed, the area unmapped, forwards still in flight: nothing leaks. */
TEST_F(fwd1, close_with_forwards_in_flight)
{
	size_t n = 16 * self->ps;
	struct zcopy_fwd_piece p[FWD_DESC];
	struct zcopy_stats st;
	int i;

	close(self->ocli);
	close(self->osrv);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 4096, &self->ocli, &self->osrv));
	ASSERT_EQ(0, zc_set_buf(self->ocli, SO_SNDBUF, 4 << 20));
	ASSERT_EQ(0, fwd1_take(self, 0, n));
	for (i = 0; i < self->nd; i++)
		p[i] = (struct zcopy_fwd_piece){ .offset = self->d[i].offset, .len = self->d[i].len };
	ASSERT_EQ(0, zc_forward(self->zfd, self->ocli, p, self->nd, ZCOPY_FORWARD_NOTIFY, 0,
				NULL));
	munmap(self->area, RX_SLOTS_FWD1 * self->ps);
	self->area = NULL;
	close(self->zfd);
	self->zfd = -1;

	EXPECT_EQ(0, fwd1_expect(self->osrv, 0, n));
	ASSERT_EQ(0, zc_poll_stats(-1, ZCOPY_STATS_MODULE, 10000, &st, zc_module_idle))
		TH_LOG("the module still holds: %llu in flight, %llu slots, %llu held",
		       ZC_U64(st.sends_in_flight), ZC_U64(st.rx_slots_used),
		       ZC_U64(st.fwd_slots_held));
}

/* Datagrams in (copied on receipt, one slot each) and out: as they came. */
TEST_F(fwd1, datagrams_in_and_out)
{
	int utx, urx, otx, orx, i;
	uint8_t buf[2048];
	uint64_t rel;
	struct zcopy_recv r;
	struct zcopy_fwd_piece p;

	ASSERT_EQ(0, zc_udp_pair(AF_INET6, true, &utx, &urx));
	ASSERT_EQ(0, zc_udp_pair(AF_INET6, true, &otx, &orx));
	for (i = 0; i < 20; i++) {
		size_t len = 1 + 97 * i;

		zc_fill(buf, ZC_SEED(i), len);
		ASSERT_EQ(len, send(utx, buf, len, 0));
		ASSERT_EQ(0, zc_recv(self->zfd, urx, self->d, FWD_DESC, 0, 5000, &r));
		ASSERT_EQ(1, r.desc_count);
		ASSERT_EQ(len, r.bytes);
		/* UDP in, TCP out and UDP out. */
		p = (struct zcopy_fwd_piece){ .offset = self->d[0].offset, .len = len };
		ASSERT_EQ(0, zc_forward(self->zfd, otx, &p, 1, 0, 0, NULL));
		ASSERT_EQ(0, zc_forward(self->zfd, self->ocli, &p, 1, 0, 0, NULL));
		ASSERT_EQ(len, recv(orx, buf, sizeof(buf), 0));
		EXPECT_EQ(len, zc_check(buf, ZC_SEED(i), len)) TH_LOG("datagram %d", i);
		ASSERT_EQ(len, recv(self->osrv, buf, len, MSG_WAITALL));
		EXPECT_EQ(len, zc_check(buf, ZC_SEED(i), len)) TH_LOG("stream bytes of %d", i);
		ASSERT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, NULL, fwd_idle));
		rel = self->d[0].offset;
		ASSERT_EQ(0, zc_release(self->zfd, &rel, 1));
	}
	close(utx);
	close(urx);
	close(otx);
	close(orx);
}

/*
 * A datagram forwarded in more pieces than an skb has fragments
 * (MAX_SKB_FRAGS, 17 on Debian's kernels): UDP builds it in one skb, so it
 * is copied, whole and in order, and the record and the ledger say why.
 */
TEST_F(fwd1, datagram_of_many_pieces_copied)
{
	const size_t len = 1200, nr = 24, piece = len / nr;
	struct zcopy_fwd_piece p[24];
	struct zcopy_completion rec[2];
	struct zcopy_stats st0, st1;
	int utx, urx, otx, orx, i;
	struct zcopy_forward f;
	struct zcopy_recv r;
	uint8_t buf[2048];
	uint64_t rel;

	ASSERT_EQ(0, zc_udp_pair(AF_INET, true, &utx, &urx));
	ASSERT_EQ(0, zc_udp_pair(AF_INET, true, &otx, &orx));
	zc_fill(buf, ZC_SEED(70), len);
	ASSERT_EQ(len, send(utx, buf, len, 0));
	ASSERT_EQ(0, zc_recv(self->zfd, urx, self->d, FWD_DESC, 0, 5000, &r));
	ASSERT_EQ(len, r.bytes);
	rel = self->d[0].offset;
	for (i = 0; i < nr; i++)
		p[i] = (struct zcopy_fwd_piece){ .offset = rel + i * piece, .len = piece };
	ASSERT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, &st0, fwd_idle));
	ASSERT_EQ(0, zc_forward(self->zfd, otx, p, nr, ZCOPY_FORWARD_NOTIFY, 9, &f));
	EXPECT_EQ(len, f.bytes);
	ASSERT_EQ(len, recv(orx, buf, sizeof(buf), 0));
	EXPECT_EQ(len, zc_check(buf, ZC_SEED(70), len));
	ASSERT_EQ(1, zc_read_records(self->zfd, rec, 2, 5000));
	EXPECT_EQ(9, rec[0].cookie);
	EXPECT_EQ(len, rec[0].bytes);
	EXPECT_EQ(ZCOPY_COMPL_COPIED | ZCOPY_COPIED_FRAGS, rec[0].flags);
	ASSERT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, &st1, fwd_idle));
	EXPECT_EQ(len, st1.fwd_copied_not_offloaded - st0.fwd_copied_not_offloaded);
	EXPECT_EQ(0, st1.fwd_zerocopy_bytes - st0.fwd_zerocopy_bytes);
	EXPECT_EQ(0, st1.fwd_slots_held);
	ASSERT_EQ(0, zc_release(self->zfd, &rel, 1));
	close(utx);
	close(urx);
	close(otx);
	close(orx);
}

/*
 * Two received datagrams forwarded as one (ZCOPY_SEND_MORE) to a UDP socket
 * with UDP_SEGMENT: the stack would refuse the second piece's ubuf and drop
 * the datagram built from the first. Corked forwards are copied.
 */
TEST_F(fwd1, corked_datagram_with_gso)
{
	static const size_t len[2] = { 300, 400 };
	int utx, urx, otx, orx, i, gso = 1000;
	struct zcopy_fwd_piece p[2];
	struct zcopy_stats st;
	uint8_t buf[2048];
	struct zcopy_recv r;
	uint64_t rel[2];

	ASSERT_EQ(0, zc_udp_pair(AF_INET, true, &utx, &urx));
	ASSERT_EQ(0, zc_udp_pair(AF_INET, true, &otx, &orx));
	ASSERT_EQ(0, setsockopt(otx, IPPROTO_UDP, UDP_SEGMENT, &gso, sizeof(gso)));
	for (i = 0; i < 2; i++) {
		zc_fill(buf, ZC_SEED(60 + i), len[i]);
		ASSERT_EQ(len[i], send(utx, buf, len[i], 0));
		ASSERT_EQ(0, zc_recv(self->zfd, urx, self->d, FWD_DESC, 0, 5000, &r));
		ASSERT_EQ(len[i], r.bytes);
		rel[i] = self->d[0].offset;
		p[i] = (struct zcopy_fwd_piece){ .offset = rel[i], .len = len[i] };
	}
	ASSERT_EQ(0, zc_forward(self->zfd, otx, &p[0], 1, ZCOPY_SEND_MORE, 0, NULL));
	ASSERT_EQ(0, zc_forward(self->zfd, otx, &p[1], 1, 0, 0, NULL));
	ASSERT_EQ(len[0] + len[1], recv(orx, buf, sizeof(buf), 0));
	EXPECT_EQ(len[0], zc_check(buf, ZC_SEED(60), len[0]));
	EXPECT_EQ(len[1], zc_check(buf + len[0], ZC_SEED(61), len[1]));
	ASSERT_EQ(0, zc_poll_stats(self->zfd, 0, 5000, &st, fwd_idle));
	EXPECT_EQ(len[0] + len[1], st.fwd_copied_not_offloaded);
	EXPECT_EQ(0, st.fwd_zerocopy_bytes);
	ASSERT_EQ(0, zc_release(self->zfd, rel, 2));
	close(utx);
	close(urx);
	close(otx);
	close(orx);
}

/* ---- fwd_probe: a socket that starts MTU probing after the forward ---- */

/*
 * Forwards queued while tcp_mtu_probing was 0, over veth to a receiver
 * that reads nothing yet, then sysctl 1, tcp_retries1 0 and a black hole
 * (netem dropping everything) until TCP probes. From 6.5 the probes take
 * the forwarded pages without the forwards, which complete while the
 * receiver holds the probes' skbs. The slots are then released and the
 * area takes new data into pages of zcopy's own: the receiver must still
 * read the bytes forwarded, not the new ones.
 */
FIXTURE(fwd_probe)
{
	int zfd;
	size_t ps;
	uint8_t *area;
	int cli, srv, out;
	struct zc_rx rx;
	bool rx_started;
	struct zc_probe_env env;
};

FIXTURE_SETUP(fwd_probe)
{
	const char *why;

	self->cli = self->srv = self->out = -1;
	self->area = NULL;
	self->rx_started = false;
	self->env = (struct zc_probe_env){ .saved_probing = -1, .saved_retries1 = -1 };
	self->ps = zc_page_size();
	signal(SIGPIPE, SIG_IGN);
	why = fwd_open(_metadata, &self->zfd);
	if (why)
		SKIP(return, "%s", why);
	if (zc_path_missing(ZC_VETH))
		SKIP(return, "%s", zc_path_missing(ZC_VETH));
	ASSERT_EQ(0, zc_probe_env_init(&self->env));
	self->area = rt_mmap_area(self->zfd, RX_SLOTS_FWD1, PROT_READ);
	ASSERT_NE(MAP_FAILED, self->area);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &self->cli, &self->srv));
}

FIXTURE_TEARDOWN(fwd_probe)
{
	int fds[] = { self->cli, self->srv, self->out };

	zc_probe_env_restore(&self->env);
	if (self->rx_started)
		zc_rx_free(&self->rx);
	fwd1_close(fds, 3, self->area, self->zfd);
}

/* Pattern bytes [@off, @off + @len) written on cli, received into the area. */
static int fwd_probe_take(FIXTURE_DATA(fwd_probe) * self, uint64_t off, size_t len,
			  struct zcopy_rx_desc *d, uint32_t *nd)
{
	struct zcopy_recv r;
	uint64_t got = 0;
	int ret;

	ret = rt_write_pattern(self->cli, off, len);
	while (!ret && got < len) {
		ret = zc_recv(self->zfd, self->srv, d + *nd, FWD_DESC - *nd, 0, 5000, &r);
		if (!ret && !r.bytes)
			ret = -ENODATA;
		*nd += r.desc_count;
		got += r.bytes;
	}
	return ret;
}

TEST_F_TIMEOUT(fwd_probe, released_slots_not_rewritten, 120)
{
	struct zc_net net = { ZC_VETH, AF_INET, SOCK_STREAM };
	struct zc_rx_opts ro = { .rcvbuf = 4 << 20, .hold = true };
	struct zcopy_fwd_piece p[FWD_DESC];
	struct zcopy_rx_desc d[FWD_DESC];
	size_t n = 24 * self->ps;
	uint64_t rel[FWD_DESC];
	struct zcopy_stats st;
	long long probes;
	uint32_t nd = 0, i;
	unsigned int mss;
	int ret;

	probes = zc_tcp_mtu_probes();
	ret = zc_rx_start(&self->rx, &net, &ro);
	ASSERT_EQ(0, ret) TH_LOG("receiver over veth: %s", strerror(-ret));
	self->rx_started = true;
	self->out = zc_connect(&net, self->rx.port, 4 << 20, false);
	ASSERT_LE(0, self->out) TH_LOG("connect: %s", strerror(-self->out));
	mss = zc_tcp_snd_mss(self->out);

	ASSERT_EQ(0, fwd_probe_take(self, 0, n, d, &nd));
	for (i = 0; i < nd; i++) {
		ASSERT_TRUE(d[i].flags & ZCOPY_RX_COPIED) TH_LOG("send() data, copied into ours");
		p[i] = (struct zcopy_fwd_piece){ .offset = d[i].offset, .len = d[i].len };
		rel[i] = d[i].offset;
	}
	ASSERT_EQ(0, zc_probe_env_black_hole(&self->env, true));
	ASSERT_EQ(0, zc_forward(self->zfd, self->out, p, nd, 0, 0, NULL));

	ASSERT_EQ(0, zc_probe_env_arm(&self->env));
	ASSERT_EQ(0, zc_tcp_wait_mss_below(self->out, mss, 10000))
		TH_LOG("no black hole found in 10 s");
	ASSERT_EQ(0, zc_probe_env_black_hole(&self->env, false));

	/* Forwards done, slots released: new data comes into the area. */
	ASSERT_EQ(0, zc_poll_stats(self->zfd, 0, 10000, &st, fwd_idle));
	ASSERT_EQ(0, zc_release(self->zfd, rel, nd));
	nd = 0;
	ASSERT_EQ(0, fwd_probe_take(self, n, n, d, &nd));
	for (i = 0; i < nd; i++)
		rel[i] = d[i].offset;

	ASSERT_EQ(0, zc_rx_release(&self->rx));
	shutdown(self->out, SHUT_WR);
	ret = zc_rx_finish(&self->rx, 0, 30000);
	ASSERT_EQ(0, ret) TH_LOG("the receiver: %s", strerror(-ret));
	EXPECT_EQ(n, self->rx.sh->bytes);
	EXPECT_EQ(fwd_pattern_hash(n), self->rx.sh->hash)
		TH_LOG("the receiver read bytes written after the forward");
	EXPECT_LT(0, zc_tcp_mtu_probes() - probes)
		TH_LOG("TCP sent no MTU probe: the test proves nothing");
	EXPECT_EQ(0, zc_release(self->zfd, rel, nd));
}

TEST_HARNESS_MAIN
