// SPDX-License-Identifier: GPL-2.0
/*
 * Zero-copy send, what it refuses and what it outlives: bad sockets, bad
 * vectors and bad arguments, each with its errno and no trace in the
 * ledger; the stats ioctl's own checks; the limits (RLIMIT_MEMLOCK and the
 * module's parameters); and sends in flight when the zcopy fd, the socket
 * or the sending process goes away.
 */
#include <grp.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <sys/resource.h>

#include <linux/tls.h>
#include <linux/zcopy.h>

#include "kselftest_harness.h"
#include "zcopy_test_util.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP	262
#endif
#ifndef SOL_TLS
#define SOL_TLS		282
#endif

#define KB	1024UL
#define MB	(1024 * KB)

/* A connected loopback TCP socket and a good send to spoil, one field each. */
FIXTURE(bad)
{
	struct zc_tx t;
	char *buf;
	struct zcopy_iovec iov;
	struct zcopy_send s;
	long saved_copy_below;	/* -1: not changed */
};

FIXTURE_SETUP(bad)
{
	const char *why = zc_tx_init(_metadata, &self->t, ZC_LOOPBACK, AF_INET, SOCK_STREAM);

	self->saved_copy_below = -1;

	if (why)
		SKIP(return, "%s", why);
	ASSERT_LE(0, self->t.zfd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
	self->buf = zc_map(64 * KB);
	ASSERT_NE(NULL, self->buf);
	zc_fill(self->buf, ZC_SEED(5), 64 * KB);
	zc_tx_start(_metadata, &self->t, false, 0, 0, false);
	self->iov = (struct zcopy_iovec){ (uintptr_t)self->buf, 4096 };
	self->s = (struct zcopy_send){
		.sockfd = self->t.sock,
		.iov = (uintptr_t)&self->iov,
		.iov_count = 1,
		.cookie = 1,
	};
}

FIXTURE_TEARDOWN(bad)
{
	if (self->saved_copy_below >= 0)
		zc_param_write("copy_below", self->saved_copy_below);
	zc_tx_fini(&self->t);
	zc_unmap(self->buf, 64 * KB);
}

/*
 * A read-only copy of the @len bytes at @arg, in a page of its own: an
 * argument the module can read but not write its results back to.
 * Unmap it with munmap(ro, zc_page_size()).
 */
static void *ro_copy(const void *arg, size_t len)
{
	size_t ps = zc_page_size();
	void *ro = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (ro == MAP_FAILED)
		return NULL;
	memcpy(ro, arg, len);
	if (mprotect(ro, ps, PROT_READ)) {
		munmap(ro, ps);
		return NULL;
	}
	return ro;
}

/* ZCOPY_IOC_SEND: 0 or the errno. */
static int send_errno(int zfd, struct zcopy_send *s)
{
	return ioctl(zfd, ZCOPY_IOC_SEND, s) ? errno : 0;
}

/*
 * A refused send left nothing behind: no send counted, nothing pinned or in
 * flight, no record. With @then_send, a good send is then seq 0 at offset
 * 0 and arrives intact.
 */
static void __bad_nothing_sent(struct __test_metadata *_metadata, FIXTURE_DATA(bad) * self,
			       bool then_send, bool socket_refused)
{
	struct zc_tx *t = &self->t;
	struct pollfd p = { t->zfd, POLLIN, 0 };
	struct zcopy_iovec iov = { (uintptr_t)self->buf + 100, 5000 };
	struct zcopy_stats st;
	struct zcopy_send s;

	if (t->stats) {
		ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
		EXPECT_EQ(0, st.sends);
		EXPECT_EQ(0, st.send_bytes);
		EXPECT_EQ(0, st.sends_in_flight);
		EXPECT_EQ(0, st.pages_pinned);
		/*
		 * Refused before pinning: nothing was ever pinned. The socket's
		 * refusal comes after the pages were pinned (and let go).
		 */
		if (!socket_refused)
			EXPECT_EQ(0, st.pages_pinned_total);
		EXPECT_EQ(0, st.records_queued);
	}
	EXPECT_EQ(0, poll(&p, 1, 50)) TH_LOG("a refused send left a record");
	if (!then_send)
		return;
	ASSERT_EQ(0, zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1, 0, 9, &s));
	EXPECT_EQ(0, s.seq);
	EXPECT_EQ(0, s.offset);
	EXPECT_EQ(5000, s.bytes);
	zc_tx_verify(_metadata, t);
}

static void bad_nothing_sent(struct __test_metadata *_metadata, FIXTURE_DATA(bad) * self,
			     bool then_send)
{
	__bad_nothing_sent(_metadata, self, then_send, false);
}

/* ---- the socket ---- */

TEST_F(bad, sockfd_pipe_enotsock)
{
	int p[2];

	ASSERT_EQ(0, pipe(p));
	self->s.sockfd = p[1];
	EXPECT_EQ(ENOTSOCK, send_errno(self->t.zfd, &self->s));
	close(p[0]);
	close(p[1]);
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, sockfd_zcopy_fd_enotsock)
{
	self->s.sockfd = self->t.zfd;
	EXPECT_EQ(ENOTSOCK, send_errno(self->t.zfd, &self->s));
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, sockfd_invalid_ebadf)
{
	int fds[] = { -1, -1000, INT_MIN, INT_MAX, 1 << 20 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fds); i++) {
		self->s.sockfd = fds[i];
		EXPECT_EQ(EBADF, send_errno(self->t.zfd, &self->s)) TH_LOG("sockfd %d", fds[i]);
	}
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, sockfd_closed_ebadf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, close(fd));
	self->s.sockfd = fd;
	EXPECT_EQ(EBADF, send_errno(self->t.zfd, &self->s));
	bad_nothing_sent(_metadata, self, true);
}

static void bad_socketpair(struct __test_metadata *_metadata, FIXTURE_DATA(bad) * self,
			   int type)
{
	int sv[2];

	ASSERT_EQ(0, socketpair(AF_UNIX, type, 0, sv));
	self->s.sockfd = sv[0];
	EXPECT_EQ(EOPNOTSUPP, send_errno(self->t.zfd, &self->s));
	close(sv[0]);
	close(sv[1]);
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, unix_stream_eopnotsupp)
{
	bad_socketpair(_metadata, self, SOCK_STREAM);
}

TEST_F(bad, unix_dgram_eopnotsupp)
{
	bad_socketpair(_metadata, self, SOCK_DGRAM);
}

TEST_F(bad, packet_eopnotsupp)
{
	int fd = socket(AF_PACKET, SOCK_DGRAM, 0);

	if (fd < 0)
		SKIP(return, "no AF_PACKET: %s", strerror(errno));
	self->s.sockfd = fd;
	EXPECT_EQ(EOPNOTSUPP, send_errno(self->t.zfd, &self->s));
	close(fd);
	bad_nothing_sent(_metadata, self, true);
}

/* Raw IP sockets, connected: IPv4 and IPv6. */
TEST_F(bad, raw_eopnotsupp)
{
	int families[] = { AF_INET, AF_INET6 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(families); i++) {
		int fam = families[i], fd = socket(fam, SOCK_RAW, IPPROTO_UDP);
		struct sockaddr_storage ss;
		socklen_t sl;

		ASSERT_LE(0, fd);
		sl = zc_sockaddr(fam, fam == AF_INET ? "127.0.0.1" : "::1", 0, &ss);
		ASSERT_EQ(0, connect(fd, (struct sockaddr *)&ss, sl));
		self->s.sockfd = fd;
		EXPECT_EQ(EOPNOTSUPP, send_errno(self->t.zfd, &self->s))
			TH_LOG("raw %s", fam == AF_INET ? "IPv4" : "IPv6");
		close(fd);
	}
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, sctp_eopnotsupp)
{
	int fd = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);

	if (fd < 0)
		SKIP(return, "no SCTP here: %s", strerror(errno));
	self->s.sockfd = fd;
	EXPECT_EQ(EOPNOTSUPP, send_errno(self->t.zfd, &self->s));
	close(fd);
	bad_nothing_sent(_metadata, self, true);
}

/* MPTCP is SOCK_STREAM over IPv4, but not TCP: connected, still refused. */
TEST_F(bad, mptcp_eopnotsupp)
{
	int fd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	struct sockaddr_storage ss;
	socklen_t sl;

	if (fd < 0)
		SKIP(return, "no MPTCP here: %s", strerror(errno));
	sl = zc_sockaddr(AF_INET, "127.0.0.1", self->t.rx.port, &ss);
	ASSERT_EQ(0, connect(fd, (struct sockaddr *)&ss, sl));
	self->s.sockfd = fd;
	EXPECT_EQ(EOPNOTSUPP, send_errno(self->t.zfd, &self->s));
	close(fd);
	bad_nothing_sent(_metadata, self, true);
}

/* An ICMP echo ("ping") socket is SOCK_DGRAM over IPv4, but not UDP. */
TEST_F(bad, icmp_dgram_eopnotsupp)
{
	const char *range = "/proc/sys/net/ipv4/ping_group_range";
	struct sockaddr_storage ss;
	char saved[64] = "";
	int fd, rfd, n = 0;
	socklen_t sl;

	rfd = open(range, O_RDWR | O_CLOEXEC);
	if (rfd >= 0) {
		n = read(rfd, saved, sizeof(saved) - 1);
		if (pwrite(rfd, "0 0\n", 4, 0) != 4)
			n = 0;
	}
	fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	if (rfd >= 0) {
		if (n > 0 && pwrite(rfd, saved, n, 0) != n)
			TH_LOG("could not restore %s", range);
		close(rfd);
	}
	if (fd < 0)
		SKIP(return, "no ping socket: %s", strerror(errno));
	sl = zc_sockaddr(AF_INET, "127.0.0.1", 0, &ss);
	ASSERT_EQ(0, connect(fd, (struct sockaddr *)&ss, sl));
	self->s.sockfd = fd;
	EXPECT_EQ(EOPNOTSUPP, send_errno(self->t.zfd, &self->s));
	close(fd);
	bad_nothing_sent(_metadata, self, true);
}

/* kTLS encrypts into buffers of its own: no zero-copy from user pages. */
TEST_F(bad, ktls_eopnotsupp)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info.version = TLS_1_2_VERSION,
		.info.cipher_type = TLS_CIPHER_AES_GCM_128,
	};

	if (setsockopt(self->t.sock, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		SKIP(return, "no kTLS: %s", strerror(errno));
	/* gcm(aes) may be a module the VM does not have. */
	if (setsockopt(self->t.sock, SOL_TLS, TLS_TX, &ci, sizeof(ci)))
		SKIP(return, "no kTLS AES-GCM-128 transmit: %s", strerror(errno));
	EXPECT_EQ(EOPNOTSUPP, send_errno(self->t.zfd, &self->s));
	bad_nothing_sent(_metadata, self, false);
}

TEST_F(bad, tcp_unconnected_enotconn)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);

	ASSERT_LE(0, fd);
	self->s.sockfd = fd;
	EXPECT_EQ(ENOTCONN, send_errno(self->t.zfd, &self->s));
	close(fd);
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, tcp_listening_enotconn)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_storage ss;
	socklen_t sl;

	ASSERT_LE(0, fd);
	sl = zc_sockaddr(AF_INET, "127.0.0.1", 0, &ss);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&ss, sl));
	ASSERT_EQ(0, listen(fd, 1));
	self->s.sockfd = fd;
	EXPECT_EQ(ENOTCONN, send_errno(self->t.zfd, &self->s));
	close(fd);
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, udp_unconnected_enotconn)
{
	int families[] = { AF_INET, AF_INET6 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(families); i++) {
		int fd = socket(families[i], SOCK_DGRAM, 0);

		ASSERT_LE(0, fd);
		self->s.sockfd = fd;
		EXPECT_EQ(ENOTCONN, send_errno(self->t.zfd, &self->s))
			TH_LOG("%s", families[i] == AF_INET ? "IPv4" : "IPv6");
		close(fd);
	}
	bad_nothing_sent(_metadata, self, true);
}

/* After shutdown(SHUT_WR): the socket's own error, EPIPE, as send(2). */
TEST_F(bad, tcp_shutdown_wr_epipe)
{
	ASSERT_EQ(0, shutdown(self->t.sock, SHUT_WR));
	EXPECT_EQ(EPIPE, send_errno(self->t.zfd, &self->s));
	__bad_nothing_sent(_metadata, self, false, true);
}

/* An IPv6 socket connected to a v4-mapped address is TCP or UDP all right. */
static void bad_v4_mapped(struct __test_metadata *_metadata, FIXTURE_DATA(bad) * self,
			  int type)
{
	struct zc_net net = { ZC_LOOPBACK, AF_INET, type };
	struct zcopy_iovec iov = { (uintptr_t)self->buf + 3, 7000 };
	struct sockaddr_storage ss;
	struct zc_log log = { 0 };
	struct zcopy_send s = { 0 };
	struct zc_rx rx;
	char msg[512];
	socklen_t sl;
	int fd, ret;

	ASSERT_EQ(0, zc_rx_start(&rx, &net, NULL));
	fd = socket(AF_INET6, type, 0);
	ASSERT_LE(0, fd);
	sl = zc_sockaddr(AF_INET6, "::ffff:127.0.0.1", rx.port, &ss);
	ASSERT_EQ(0, connect(fd, (struct sockaddr *)&ss, sl));
	ret = zc_send(self->t.zfd, fd, &iov, 1, 0, 3, &s);
	ASSERT_EQ(0, ret) TH_LOG("%s", strerror(-ret));
	ASSERT_EQ(7000, s.bytes);
	zc_log_add(&log, &s, ZCOPY_COMPL_COPIED | ZCOPY_COPIED_LOOPBACK,
		   zc_iov_pages(&iov, 1, s.bytes));
	if (type == SOCK_STREAM)
		ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	ASSERT_EQ(0, zc_rx_finish(&rx, 1, 10000));
	EXPECT_EQ(7000, rx.sh->bytes);
	EXPECT_EQ(zc_fnv_iov(ZC_FNV_INIT, &iov, 1, 7000),
		  type == SOCK_STREAM ? rx.sh->hash : rx.sh->dgram[0].hash);
	ASSERT_EQ(0, zc_collect(self->t.zfd, &log, 10000));
	ASSERT_EQ(0, zc_check_records(&log, msg, sizeof(msg))) TH_LOG("%s", msg);
	close(fd);
	zc_rx_free(&rx);
	zc_log_free(&log);
}

TEST_F(bad, tcp_v4_mapped_works)
{
	bad_v4_mapped(_metadata, self, SOCK_STREAM);
}

TEST_F(bad, udp_v4_mapped_works)
{
	bad_v4_mapped(_metadata, self, SOCK_DGRAM);
}

/* ---- the arguments ---- */

TEST_F(bad, send_arg_null_efault)
{
	EXPECT_EQ(-1, ioctl(self->t.zfd, ZCOPY_IOC_SEND, NULL));
	EXPECT_EQ(EFAULT, errno);
	bad_nothing_sent(_metadata, self, true);
}

/* Readable but not writable: the results cannot go back, so nothing goes. */
TEST_F(bad, send_arg_readonly_efault)
{
	struct zcopy_send *ro = ro_copy(&self->s, sizeof(self->s));

	ASSERT_NE(NULL, ro);
	EXPECT_EQ(EFAULT, send_errno(self->t.zfd, ro));
	munmap(ro, zc_page_size());
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, unknown_flags_einval)
{
	unsigned int bit;

	for (bit = 0; bit < 32; bit++) {
		if ((1U << bit) & (ZCOPY_SEND_FLAGS | ZCOPY_SEND_FIXED))
			continue;
		self->s.flags = 1U << bit;
		EXPECT_EQ(EINVAL, send_errno(self->t.zfd, &self->s)) TH_LOG("flag %#x", 1U << bit);
	}
	bad_nothing_sent(_metadata, self, true);
}

/* buf_index means something only with ZCOPY_SEND_FIXED. */
TEST_F(bad, buf_index_without_fixed_einval)
{
	self->s.buf_index = 1;
	EXPECT_EQ(EINVAL, send_errno(self->t.zfd, &self->s));
	self->s.buf_index = 1U << 31;
	EXPECT_EQ(EINVAL, send_errno(self->t.zfd, &self->s));
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, reserved_nonzero_einval)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(self->s.reserved); i++) {
		self->s.reserved[i] = 1ULL << (i * 13 % 64);
		EXPECT_EQ(EINVAL, send_errno(self->t.zfd, &self->s)) TH_LOG("reserved[%u]", i);
		self->s.reserved[i] = 0;
	}
	bad_nothing_sent(_metadata, self, true);
}

/* ---- batches ---- */

static int batch_errno(int zfd, struct zcopy_send_batch *b)
{
	return ioctl(zfd, ZCOPY_IOC_SEND_BATCH, b) ? errno : 0;
}

/* ZCOPY_IOC_SEND_BATCH refused as a whole: each its errno, nothing sent. */
TEST_F(bad, batch_rejected)
{
	struct zcopy_send two[2] = { self->s, self->s }, first_bad[2] = { self->s, self->s };
	uint64_t good = (uintptr_t)two, fb = (uintptr_t)first_bad;
	struct {
		const char *what;
		int err;
		struct zcopy_send_batch b;
	} cases[] = {
		{ "a flag", EINVAL, { .sends = good, .count = 2, .flags = 1 } },
		{ "__pad", EINVAL, { .sends = good, .count = 2, .__pad = 1 } },
		{ "reserved[1]", EINVAL, { .sends = good, .count = 2, .reserved = { 0, 1 } } },
		{ "no entries", EINVAL, { .sends = good, .count = 0 } },
		{ "past ZCOPY_MAX_BATCH", EINVAL, { .sends = good, .count = ZCOPY_MAX_BATCH + 1 } },
		{ "entries at NULL", EFAULT, { .sends = 0, .count = 2 } },
		{ "the first entry refused", EINVAL, { .sends = fb, .count = 2 } },
	};
	size_t ps = zc_page_size();
	struct zcopy_send_batch *ro;
	const char *what;
	unsigned int i;

	first_bad[0].reserved[2] = 1;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		what = cases[i].what;
		EXPECT_EQ(cases[i].err, batch_errno(self->t.zfd, &cases[i].b)) TH_LOG("%s", what);
	}
	EXPECT_EQ(EFAULT, batch_errno(self->t.zfd, NULL)) TH_LOG("a NULL argument");
	/* The count cannot be written back: nothing is sent. */
	ro = ro_copy(&(struct zcopy_send_batch){ .sends = good, .count = 2 }, sizeof(*ro));
	ASSERT_NE(NULL, ro);
	EXPECT_EQ(EFAULT, batch_errno(self->t.zfd, ro)) TH_LOG("a read-only argument");
	munmap(ro, ps);
	bad_nothing_sent(_metadata, self, true);
}

/*
 * A batch ends before its first refused entry: those before it are sent
 * (and counted in done), it and those after are not; sent on their own,
 * the refused one says why.
 */
TEST_F(bad, batch_stops_at_refused_entry)
{
	struct zc_tx *t = &self->t;
	struct zcopy_iovec iov[3] = {
		{ (uintptr_t)self->buf, 1000 },
		{ (uintptr_t)self->buf + 1000, 2000 },
		{ (uintptr_t)self->buf + 3000, 3000 },
	};
	struct zcopy_send s[3];
	struct zcopy_stats st;
	unsigned int i;

	for (i = 0; i < 3; i++)
		s[i] = (struct zcopy_send){ .sockfd = t->sock, .iov = (uintptr_t)&iov[i],
					    .iov_count = 1, .cookie = i };
	s[1].reserved[0] = 1;
	ASSERT_EQ(1, zc_send_batch(t->zfd, s, 3));
	EXPECT_EQ(1000, s[0].bytes);
	EXPECT_EQ(0, s[0].seq);
	EXPECT_EQ(0, s[1].bytes) TH_LOG("the refused entry was written to");
	EXPECT_EQ(0, s[2].bytes) TH_LOG("an entry after the refused one was written to");
	zc_tx_log_sent(t, &iov[0], &s[0]);
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	EXPECT_EQ(1, st.sends);
	EXPECT_EQ(1000, st.send_bytes);

	EXPECT_EQ(-EINVAL, zc_send_batch(t->zfd, &s[1], 2)) TH_LOG("the refused one first");
	s[1].reserved[0] = 0;
	ASSERT_EQ(2, zc_send_batch(t->zfd, &s[1], 2));
	EXPECT_EQ(1, s[1].seq);
	EXPECT_EQ(1000, s[1].offset);
	zc_tx_log_sent(t, &iov[1], &s[1]);
	zc_tx_log_sent(t, &iov[2], &s[2]);
	zc_tx_verify(_metadata, t);
}

/*
 * A batch ends before an entry whose socket was reset, and leaves the
 * socket's error for that entry sent again to report (ECONNRESET, not
 * the EPIPE that follows it), as the first entry of a batch or a single
 * send would report it.
 */
TEST_F(bad, batch_stops_at_reset_socket_keeps_its_error)
{
	struct zcopy_iovec iov[2] = {
		{ (uintptr_t)self->buf, 3000 }, { (uintptr_t)self->buf + 3000, 3000 },
	};
	struct linger lg = { 1, 0 };
	struct zc_tx *t = &self->t;
	struct zcopy_send s[2], one;
	struct pollfd p;
	int cli, srv, ret;

	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &cli, &srv));
	ASSERT_EQ(0, setsockopt(srv, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	ASSERT_EQ(0, close(srv));
	p = (struct pollfd){ .fd = cli, .events = POLLIN };
	ASSERT_EQ(1, poll(&p, 1, 5000)) TH_LOG("the reset did not arrive");
	s[0] = (struct zcopy_send){ .sockfd = t->sock, .iov = (uintptr_t)&iov[0], .iov_count = 1 };
	s[1] = (struct zcopy_send){ .sockfd = cli, .iov = (uintptr_t)&iov[1], .iov_count = 1,
				    .cookie = 1 };
	ASSERT_EQ(1, zc_send_batch(t->zfd, s, 2));
	EXPECT_EQ(3000, s[0].bytes);
	EXPECT_EQ(0, s[1].bytes) TH_LOG("the entry on the reset socket was written to");
	zc_tx_log_sent(t, &iov[0], &s[0]);
	ret = zc_send(t->zfd, cli, &iov[1], 1, 0, 1, &one);
	EXPECT_EQ(-ECONNRESET, ret) TH_LOG("sent again: %s", ret ? strerror(-ret) : "sent");
	close(cli);
	zc_tx_verify(_metadata, t);
}

/*
 * Three sends of @flags (from registered buffer @idx with ZCOPY_SEND_FIXED)
 * that a batch would make one run of, the first and third of @len bytes,
 * the second of which, @refused bytes at @bad, is refused with EFAULT: the
 * batch makes the first and ends before the second, which sent first says
 * EFAULT; the third then goes.
 */
static void batch_second_refused(struct __test_metadata *_metadata, struct zc_tx *t,
				 char *buf, size_t len, uint32_t flags, uint32_t idx,
				 uintptr_t bad, size_t refused)
{
	struct zcopy_iovec iov[3] = {
		{ (uintptr_t)buf, len }, { bad, refused }, { (uintptr_t)buf + len, len },
	};
	struct zcopy_send s[3];
	unsigned int i;

	for (i = 0; i < 3; i++)
		s[i] = (struct zcopy_send){ .sockfd = t->sock, .flags = flags,
					    .iov = (uintptr_t)&iov[i], .iov_count = 1,
					    .buf_index = idx, .cookie = i };
	ASSERT_EQ(1, zc_send_batch(t->zfd, s, 3));
	EXPECT_EQ(len, s[0].bytes);
	EXPECT_EQ(0, s[1].bytes) TH_LOG("the refused entry was written to");
	EXPECT_EQ(0, s[2].bytes) TH_LOG("an entry after the refused one was written to");
	zc_tx_log_sent(t, &iov[0], &s[0]);

	EXPECT_EQ(-EFAULT, zc_send_batch(t->zfd, &s[1], 2)) TH_LOG("the refused one first");
	ASSERT_EQ(1, zc_send_batch(t->zfd, &s[2], 1));
	EXPECT_EQ(1, s[2].seq);
	EXPECT_EQ(len, s[2].offset);
	zc_tx_log_sent(t, &iov[2], &s[2]);
}

/*
 * Pinned sends in a row go as one, but a refused pin refuses only its own
 * send: the second naming unmapped memory; nothing of it stays pinned.
 */
TEST_F(bad, batch_stops_at_unpinnable_entry)
{
	size_t ps = zc_page_size();
	char *hole;

	hole = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, ps));
	batch_second_refused(_metadata, &self->t, self->buf, 5000, 0, 0, (uintptr_t)hole, ps);
	zc_tx_verify(_metadata, &self->t);
}

/*
 * Copied sends in a row go as one sendmsg, whose copy fails whole at a
 * fault: the second naming unmapped memory still refuses only its own.
 */
TEST_F(bad, batch_copied_stops_at_unmapped_entry)
{
	size_t ps = zc_page_size();
	char *hole;

	ASSERT_EQ(0, zc_param_read("copy_below", &self->saved_copy_below));
	ASSERT_EQ(0, zc_param_write("copy_below", 2048));
	hole = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, ps));
	batch_second_refused(_metadata, &self->t, self->buf, 1000, 0, 0, (uintptr_t)hole, 1000);
	zc_tx_verify(_metadata, &self->t);
}

/*
 * Sends from a registered buffer in a row go as one, but a vector outside
 * the buffer refuses only its own send: the second reaching past its end.
 */
TEST_F(bad, batch_fixed_stops_at_entry_outside)
{
	struct zc_tx *t = &self->t;
	int idx;

	idx = zc_register(t->zfd, self->buf, 32 * KB);
	ASSERT_LE(0, idx) TH_LOG("ZCOPY_IOC_REGISTER: %s", strerror(-idx));
	batch_second_refused(_metadata, t, self->buf, 5000, ZCOPY_SEND_FIXED, idx,
			     (uintptr_t)self->buf + 30 * KB, 5000);
	ASSERT_EQ(0, zc_unregister(t->zfd, idx));
	zc_tx_verify(_metadata, t);
}

/* ---- registered buffers ---- */

static int reg_errno(int zfd, struct zcopy_register *r)
{
	return ioctl(zfd, ZCOPY_IOC_REGISTER, r) ? errno : 0;
}

static int unreg_errno(int zfd, struct zcopy_unregister *u)
{
	return ioctl(zfd, ZCOPY_IOC_UNREGISTER, u) ? errno : 0;
}

/* Nothing registered nor pinned by @zfd, ever. */
static void bad_nothing_pinned(struct __test_metadata *_metadata, int zfd)
{
	struct zcopy_stats st;

	ASSERT_EQ(0, zc_stats(zfd, 0, &st));
	EXPECT_EQ(0, st.pages_pinned);
	EXPECT_EQ(0, st.pages_pinned_total);
}

/*
 * ZCOPY_IOC_REGISTER, a good call spoiled one way at a time: each its errno,
 * nothing pinned; then the good call gets index 0, so no refused call kept
 * one.
 */
TEST_F(bad, register_rejected)
{
	size_t ps = zc_page_size();
	char *mem = zc_map(2 * ps), *hole = mem + ps, *none, *pool;
	struct zcopy_register good = { .addr = (uintptr_t)self->buf, .len = 64 * KB };
	struct zcopy_register *ro;
	struct {
		const char *what;
		int err;
		struct zcopy_register r;
	} cases[] = {
		{ "a flag", EINVAL, { .addr = good.addr, .len = good.len, .flags = 1 } },
		{ "the top flag", EINVAL, { .addr = good.addr, .len = good.len, .flags = 1U << 31 } },
		{ "reserved[0]", EINVAL, { .addr = good.addr, .len = good.len, .reserved = { 1 } } },
		{ "reserved[1]", EINVAL, { .addr = good.addr, .len = good.len,
					   .reserved = { 0, 1ULL << 63 } } },
		{ "no bytes", EINVAL, { .addr = good.addr } },
		{ "past ZCOPY_MAX_REGISTER_LEN", EINVAL,
		  { .addr = good.addr, .len = ZCOPY_MAX_REGISTER_LEN + 1 } },
		{ "wrapping past 2^64", EINVAL, { .addr = ~0ULL - 100, .len = 4096 } },
		{ "a kernel address", EFAULT, { .addr = 0xffff888000000000ULL, .len = 4096 } },
		{ "unmapped memory", EFAULT, { .addr = (uintptr_t)hole, .len = ps } },
		{ "PROT_NONE memory", EFAULT, { .len = ps } },
		{ "the send pool", EFAULT, { .len = ps } },
		{ "memory then a hole", EFAULT, { .addr = (uintptr_t)mem, .len = 2 * ps } },
	};
	unsigned int i;

	ASSERT_NE(NULL, mem);
	ASSERT_EQ(0, munmap(hole, ps));
	none = mmap(NULL, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	pool = zc_pool_map(self->t.zfd, ps);
	ASSERT_NE(MAP_FAILED, pool);
	cases[9].r.addr = (uintptr_t)none;
	cases[10].r.addr = (uintptr_t)pool;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *what = cases[i].what;

		EXPECT_EQ(cases[i].err, reg_errno(self->t.zfd, &cases[i].r)) TH_LOG("%s", what);
	}
	EXPECT_EQ(EFAULT, reg_errno(self->t.zfd, NULL)) TH_LOG("a NULL argument");
	/* The index cannot be written back: nothing is registered. */
	ro = ro_copy(&good, sizeof(good));
	ASSERT_NE(NULL, ro);
	EXPECT_EQ(EFAULT, reg_errno(self->t.zfd, ro)) TH_LOG("a read-only argument");
	munmap(ro, ps);
	bad_nothing_pinned(_metadata, self->t.zfd);

	good.index = 77;	/* an output: ignored */
	ASSERT_EQ(0, reg_errno(self->t.zfd, &good));
	EXPECT_EQ(0, good.index);
	munmap(none, ps);
	munmap(pool, ps);
	zc_unmap(mem, 2 * ps);
}

/* ZCOPY_IOC_UNREGISTER of what is not there, or spoiled: each its errno. */
TEST_F(bad, unregister_rejected)
{
	struct zcopy_register r = { .addr = (uintptr_t)self->buf, .len = 4096 };
	struct zcopy_unregister u = { 0 };
	struct zcopy_stats st;

	EXPECT_EQ(ENOENT, unreg_errno(self->t.zfd, &u)) TH_LOG("nothing registered");
	u.index = ZCOPY_MAX_REGISTERED;
	EXPECT_EQ(ENOENT, unreg_errno(self->t.zfd, &u)) TH_LOG("past the last index");
	u.index = ~0U;
	EXPECT_EQ(ENOENT, unreg_errno(self->t.zfd, &u)) TH_LOG("index 2^32 - 1");
	EXPECT_EQ(EFAULT, unreg_errno(self->t.zfd, NULL)) TH_LOG("a NULL argument");

	ASSERT_EQ(0, reg_errno(self->t.zfd, &r));
	u = (struct zcopy_unregister){ .index = r.index, .flags = 1 };
	EXPECT_EQ(EINVAL, unreg_errno(self->t.zfd, &u)) TH_LOG("a flag");
	u = (struct zcopy_unregister){ .index = r.index, .reserved = { 0, 1 } };
	EXPECT_EQ(EINVAL, unreg_errno(self->t.zfd, &u)) TH_LOG("reserved[1]");
	u = (struct zcopy_unregister){ .index = r.index };
	EXPECT_EQ(0, unreg_errno(self->t.zfd, &u));
	EXPECT_EQ(ENOENT, unreg_errno(self->t.zfd, &u)) TH_LOG("twice");
	ASSERT_EQ(0, zc_stats(self->t.zfd, 0, &st));
	EXPECT_EQ(0, st.pages_pinned);
}

/*
 * ZCOPY_SEND_FIXED refused: no such buffer, or a vector entry (any of them)
 * reaching outside it. Each its errno; no send, no record, nothing pinned
 * but the buffer; then a good send from it arrives intact.
 */
TEST_F(bad, fixed_send_rejected)
{
	uintptr_t b = (uintptr_t)self->buf + 4096;
	size_t len = 32 * KB;
	struct {
		const char *what;
		int err;
		int index_delta;
		struct zcopy_iovec iov[2];
	} cases[] = {
		{ "no buffer at the index", ENOENT, 1, { { b, 100 } } },
		{ "no buffer at index 2^32 - 1", ENOENT, -1, { { b, 100 } } },
		{ "one byte before the buffer", EFAULT, 0, { { b - 1, 100 } } },
		{ "one byte past its end", EFAULT, 0, { { b + len - 99, 100 } } },
		{ "all of it past the end", EFAULT, 0, { { b + len, 100 } } },
		{ "longer than the buffer", EFAULT, 0, { { b, len + 1 } } },
		{ "the second entry outside", EFAULT, 0, { { b, 100 }, { b + 2 * len, 100 } } },
	};
	struct zc_tx *t = &self->t;
	struct zcopy_register r = { .addr = b, .len = len };
	struct zcopy_unregister u;
	struct zcopy_stats st;
	const char *what;
	unsigned int i;

	ASSERT_EQ(0, reg_errno(t->zfd, &r));
	ASSERT_EQ(0, r.index) TH_LOG("index - 1 is to be 2^32 - 1");
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		self->s.flags = ZCOPY_SEND_FIXED;
		self->s.buf_index = r.index + cases[i].index_delta;
		self->s.iov = (uintptr_t)cases[i].iov;
		self->s.iov_count = 1 + !!cases[i].iov[1].len;
		what = cases[i].what;
		EXPECT_EQ(cases[i].err, send_errno(t->zfd, &self->s)) TH_LOG("%s", what);
	}
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	EXPECT_EQ(len / 4096, st.pages_pinned) TH_LOG("the buffer's pages, no more");
	EXPECT_EQ(len / 4096, st.pages_pinned_total);
	u = (struct zcopy_unregister){ .index = r.index };
	ASSERT_EQ(0, unreg_errno(t->zfd, &u));
	__bad_nothing_sent(_metadata, self, true, true);
}

/*
 * ZCOPY_MAX_REGISTERED buffers per fd, then ENOSPC; a freed index is taken
 * again. max_fd_pages bounds the pages registered: ENOBUFS past it.
 */
TEST_F(bad, register_limits)
{
	struct zcopy_register r = { .addr = (uintptr_t)self->buf, .len = 4096 };
	struct zcopy_unregister u = { .index = 5 };
	struct zcopy_stats st;
	long saved;
	unsigned int i;

	for (i = 0; i < ZCOPY_MAX_REGISTERED; i++) {
		ASSERT_EQ(0, reg_errno(self->t.zfd, &r)) TH_LOG("buffer %u", i);
		EXPECT_EQ(i, r.index);
	}
	EXPECT_EQ(ENOSPC, reg_errno(self->t.zfd, &r));
	ASSERT_EQ(0, unreg_errno(self->t.zfd, &u));
	ASSERT_EQ(0, reg_errno(self->t.zfd, &r));
	EXPECT_EQ(5, r.index);
	for (i = 0; i < ZCOPY_MAX_REGISTERED; i++) {
		u.index = i;
		ASSERT_EQ(0, unreg_errno(self->t.zfd, &u)) TH_LOG("buffer %u", i);
	}

	ASSERT_EQ(0, zc_param_read("max_fd_pages", &saved));
	ASSERT_EQ(0, zc_param_write("max_fd_pages", 8));
	r.len = 9 * 4096;
	EXPECT_EQ(ENOBUFS, reg_errno(self->t.zfd, &r)) TH_LOG("9 pages past max_fd_pages 8");
	r.len = 8 * 4096;
	EXPECT_EQ(0, reg_errno(self->t.zfd, &r)) TH_LOG("8 pages at max_fd_pages 8");
	ASSERT_EQ(0, zc_param_write("max_fd_pages", saved));
	u.index = r.index;
	ASSERT_EQ(0, unreg_errno(self->t.zfd, &u));
	ASSERT_EQ(0, zc_stats(self->t.zfd, 0, &st));
	EXPECT_EQ(0, st.pages_pinned);
}

/* bytes, seq and offset are outputs: whatever they held is overwritten. */
TEST_F(bad, out_fields_ignored_on_input)
{
	struct zc_tx *t = &self->t;

	self->s.bytes = ~0ULL;
	self->s.seq = 77;
	self->s.offset = 1ULL << 40;
	ASSERT_EQ(0, send_errno(t->zfd, &self->s));
	EXPECT_EQ(4096, self->s.bytes);
	EXPECT_EQ(0, self->s.seq);
	EXPECT_EQ(0, self->s.offset);
	/* The same structure again, as a program would reuse it. */
	ASSERT_EQ(0, send_errno(t->zfd, &self->s));
	EXPECT_EQ(4096, self->s.bytes);
	EXPECT_EQ(1, self->s.seq);
	EXPECT_EQ(4096, self->s.offset);
	zc_log_add(&t->log, &(struct zcopy_send){ .bytes = 4096, .cookie = 1 },
		   ZCOPY_COMPL_COPIED | ZCOPY_COPIED_LOOPBACK, 1);
	zc_log_add(&t->log, &(struct zcopy_send){ .bytes = 4096, .seq = 1, .offset = 4096,
						  .cookie = 1 },
		   ZCOPY_COMPL_COPIED | ZCOPY_COPIED_LOOPBACK, 1);
	t->hash = zc_fnv(zc_fnv(t->hash, self->buf, 4096), self->buf, 4096);
	t->bytes = 8192;
	zc_tx_verify(_metadata, t);
}

TEST_F(bad, iov_count_zero_einval)
{
	self->s.iov_count = 0;
	EXPECT_EQ(EINVAL, send_errno(self->t.zfd, &self->s));
	bad_nothing_sent(_metadata, self, true);
}

/* ZCOPY_MAX_IOV + 1 good entries: too many all the same. */
TEST_F(bad, iov_count_over_max_einval)
{
	unsigned int n = ZCOPY_MAX_IOV + 1, i;
	struct zcopy_iovec *iov = calloc(n, sizeof(*iov));

	ASSERT_NE(NULL, iov);
	for (i = 0; i < n; i++)
		iov[i] = (struct zcopy_iovec){ (uintptr_t)self->buf + i * 8, 8 };
	self->s.iov = (uintptr_t)iov;
	self->s.iov_count = n;
	EXPECT_EQ(EINVAL, send_errno(self->t.zfd, &self->s));
	self->s.iov_count = ~0U;
	EXPECT_EQ(EINVAL, send_errno(self->t.zfd, &self->s));
	free(iov);
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, all_lengths_zero_einval)
{
	struct zcopy_iovec iov[3] = {
		{ (uintptr_t)self->buf, 0 },
		{ (uintptr_t)self->buf + 4096, 0 },
		{ 0, 0 },
	};
	unsigned int n;

	self->s.iov = (uintptr_t)iov;
	for (n = 1; n <= ARRAY_SIZE(iov); n++) {
		self->s.iov_count = n;
		EXPECT_EQ(EINVAL, send_errno(self->t.zfd, &self->s)) TH_LOG("%u entries", n);
	}
	bad_nothing_sent(_metadata, self, true);
}

/*
 * Lengths whose sum does not fit ssize_t, whether or not it wraps in 64
 * bits, from a good base: EINVAL, before any address is looked at.
 */
TEST_F(bad, len_sum_overflow_einval)
{
	uint64_t b = (uintptr_t)self->buf, q = 1ULL << 62, h = 1ULL << 63;
	uint64_t smax = ~0ULL >> 1;
	struct {
		const char *what;
		unsigned int n;
		struct zcopy_iovec iov[5];
	} cases[] = {
		{ "3 x 2^62", 3, { { b, q }, { b, q }, { b, q } } },
		{ "2 x 2^62 + 4096", 3, { { b, q }, { b, q }, { b, 4096 } } },
		{ "SSIZE_MAX + 1", 2, { { b, smax }, { b, 1 } } },
		{ "1 + SSIZE_MAX", 2, { { b, 1 }, { b, smax } } },
		{ "2^63", 1, { { b, h } } },
		{ "~0", 1, { { b, ~0ULL } } },
		{ "2^63 + 2^63 + 4096 (wraps to 4096)", 3, { { b, h }, { b, h }, { b, 4096 } } },
		{ "4 x 2^62 + 4096 (wraps to 4096)", 5,
		  { { b, q }, { b, q }, { b, q }, { b, q }, { b, 4096 } } },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		self->s.iov = (uintptr_t)cases[i].iov;
		self->s.iov_count = cases[i].n;
		EXPECT_EQ(EINVAL, send_errno(self->t.zfd, &self->s)) TH_LOG("%s", cases[i].what);
	}
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, iov_null_efault)
{
	self->s.iov = 0;
	EXPECT_EQ(EFAULT, send_errno(self->t.zfd, &self->s));
	bad_nothing_sent(_metadata, self, true);
}

/* The vector array unmapped, PROT_NONE, or running into a guard page. */
TEST_F(bad, iov_unmapped_efault)
{
	size_t ps = zc_page_size();
	char *p = zc_map(ps);
	struct zcopy_iovec *last;
	void *none;

	ASSERT_NE(NULL, p);
	none = mmap(NULL, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	self->s.iov = (uintptr_t)none;
	EXPECT_EQ(EFAULT, send_errno(self->t.zfd, &self->s)) TH_LOG("PROT_NONE");
	munmap(none, ps);
	EXPECT_EQ(EFAULT, send_errno(self->t.zfd, &self->s)) TH_LOG("unmapped");
	/* A good entry that ends the page, a second one past it. */
	last = (struct zcopy_iovec *)(p + ps) - 1;
	*last = self->iov;
	self->s.iov = (uintptr_t)last;
	self->s.iov_count = 2;
	EXPECT_EQ(EFAULT, send_errno(self->t.zfd, &self->s)) TH_LOG("array into a guard page");
	zc_unmap(p, ps);
	bad_nothing_sent(_metadata, self, true);
}

/*
 * A base unmapped, PROT_NONE, or a good first vector and a bad second one,
 * or a length running into a guard page: EFAULT, and nothing is sent.
 */
TEST_F(bad, iov_base_unmapped_efault)
{
	size_t ps = zc_page_size();
	char *p = zc_map(4 * ps);
	struct zcopy_iovec iov[2];
	void *none;

	ASSERT_NE(NULL, p);
	memset(p, 1, 4 * ps);
	none = mmap(NULL, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	self->s.iov = (uintptr_t)iov;

	iov[0] = (struct zcopy_iovec){ (uintptr_t)none, 100 };
	self->s.iov_count = 1;
	EXPECT_EQ(EFAULT, send_errno(self->t.zfd, &self->s)) TH_LOG("PROT_NONE");
	iov[0] = (struct zcopy_iovec){ (uintptr_t)p - ps, 100 };
	EXPECT_EQ(EFAULT, send_errno(self->t.zfd, &self->s)) TH_LOG("guard page");
	iov[0] = (struct zcopy_iovec){ (uintptr_t)p + 2 * ps, 2 * ps + 1 };
	EXPECT_EQ(EFAULT, send_errno(self->t.zfd, &self->s)) TH_LOG("one byte past the end");
	iov[0] = (struct zcopy_iovec){ (uintptr_t)p, 3 * ps };
	iov[1] = (struct zcopy_iovec){ (uintptr_t)none, 1 };
	self->s.iov_count = 2;
	EXPECT_EQ(EFAULT, send_errno(self->t.zfd, &self->s)) TH_LOG("good, then PROT_NONE");
	munmap(none, ps);
	EXPECT_EQ(EFAULT, send_errno(self->t.zfd, &self->s)) TH_LOG("good, then unmapped");
	zc_unmap(p, 4 * ps);
	bad_nothing_sent(_metadata, self, true);
}

TEST_F(bad, iov_base_kernel_efault)
{
	uint64_t kaddrs[] = { 0xffff888000000000ULL, 0xffffffff81000000ULL, 1ULL << 63 };
	struct zcopy_iovec iov;
	unsigned int i;

	self->s.iov = (uintptr_t)&iov;
	for (i = 0; i < ARRAY_SIZE(kaddrs); i++) {
		iov = (struct zcopy_iovec){ kaddrs[i], 4096 };
		EXPECT_EQ(EFAULT, send_errno(self->t.zfd, &self->s))
			TH_LOG("base %#llx", ZC_U64(kaddrs[i]));
	}
	bad_nothing_sent(_metadata, self, true);
}

/* base + len past 2^64, or across the top of user space. */
TEST_F(bad, iov_base_wrap_efault)
{
	struct zcopy_iovec cases[] = {
		{ 0xfffffffffffff000ULL, 0x2000 },
		{ ~0ULL, 2 },
		{ 0x00007ffffffff000ULL - 0x1000, 0x3000 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		self->s.iov = (uintptr_t)&cases[i];
		EXPECT_EQ(EFAULT, send_errno(self->t.zfd, &self->s))
			TH_LOG("base %#llx len %#llx", ZC_U64(cases[i].base), ZC_U64(cases[i].len));
	}
	bad_nothing_sent(_metadata, self, true);
}

/* ---- ZCOPY_IOC_STATS ---- */

FIXTURE(stats)
{
	int zfd;
	struct zcopy_stats st;
};

FIXTURE_SETUP(stats)
{
	self->zfd = zc_open();
	if (self->zfd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, self->zfd);
	if (!(zc_features(self->zfd) & ZCOPY_FEAT_STATS))
		SKIP(return, "the module has no ZCOPY_FEAT_STATS");
	memset(&self->st, 0, sizeof(self->st));
}

FIXTURE_TEARDOWN(stats)
{
	if (self->zfd >= 0)
		close(self->zfd);
}

TEST_F(stats, fresh_fd_zero)
{
	struct zcopy_stats zero = { 0 };

	ASSERT_EQ(0, ioctl(self->zfd, ZCOPY_IOC_STATS, &self->st));
	EXPECT_EQ(0, memcmp(&zero, &self->st, sizeof(zero))) TH_LOG("a new fd has counts");
}

TEST_F(stats, module_flag_works)
{
	self->st.flags = ZCOPY_STATS_MODULE;
	ASSERT_EQ(0, ioctl(self->zfd, ZCOPY_IOC_STATS, &self->st));
	EXPECT_LE(self->st.pages_pinned_peak, self->st.pages_pinned_total);
}

TEST_F(stats, unknown_flags_einval)
{
	unsigned int bit;

	for (bit = 1; bit < 32; bit++) {
		self->st.flags = 1U << bit;
		EXPECT_EQ(-1, ioctl(self->zfd, ZCOPY_IOC_STATS, &self->st)) TH_LOG("bit %u", bit);
		EXPECT_EQ(EINVAL, errno) TH_LOG("bit %u", bit);
	}
}

TEST_F(stats, pad_einval)
{
	self->st.__pad = 1;
	EXPECT_EQ(-1, ioctl(self->zfd, ZCOPY_IOC_STATS, &self->st));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(stats, reserved_einval)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(self->st.reserved); i++) {
		memset(&self->st, 0, sizeof(self->st));
		self->st.reserved[i] = 1;
		EXPECT_EQ(-1, ioctl(self->zfd, ZCOPY_IOC_STATS, &self->st)) TH_LOG("reserved[%u]", i);
		EXPECT_EQ(EINVAL, errno) TH_LOG("reserved[%u]", i);
	}
}

TEST_F(stats, null_efault)
{
	EXPECT_EQ(-1, ioctl(self->zfd, ZCOPY_IOC_STATS, NULL));
	EXPECT_EQ(EFAULT, errno);
}

/* The counters are outputs: garbage in them is overwritten. */
TEST_F(stats, counters_ignored_on_input)
{
	self->st.sends = 123;
	self->st.pages_pinned = ~0ULL;
	self->st.records_queued = 5;
	ASSERT_EQ(0, ioctl(self->zfd, ZCOPY_IOC_STATS, &self->st));
	EXPECT_EQ(0, self->st.sends);
	EXPECT_EQ(0, self->st.pages_pinned);
	EXPECT_EQ(0, self->st.records_queued);
}

/* ---- in flight when things go away ---- */

FIXTURE(life)
{
	struct zc_tx t;
	char *buf;
};

#define LIFE_BUF	(8 * MB)

FIXTURE_SETUP(life)
{
	const char *why = zc_tx_init(_metadata, &self->t, ZC_LOOPBACK, AF_INET, SOCK_STREAM);

	if (why)
		SKIP(return, "%s", why);
	ASSERT_LE(0, self->t.zfd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
	if (!self->t.stats)
		SKIP(return, "the module has no ZCOPY_FEAT_STATS");
	self->buf = zc_map(LIFE_BUF);
	ASSERT_NE(NULL, self->buf);
	zc_fill(self->buf, ZC_SEED(101), LIFE_BUF);
}

FIXTURE_TEARDOWN(life)
{
	zc_tx_fini(&self->t);
	zc_unmap(self->buf, LIFE_BUF);
}

/* A holding receiver, data in flight: sends the socket has not sent. */
static void life_fill(struct __test_metadata *_metadata, struct zc_tx *t, char *buf)
{
	struct zcopy_stats st;
	unsigned int n;
	int err;

	zc_tx_start(_metadata, t, true, 4096, 64 * KB, false);
	n = zc_tx_fill(t, buf, MB, 16 * KB, 0, &err);
	ASSERT_EQ(EAGAIN, err) TH_LOG("after %u sends: %s", n, strerror(err));
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	ASSERT_LT(0, st.sends_in_flight);
	ASSERT_LT(0, st.pages_pinned);
	TH_LOG("%u sends, %llu in flight, %llu pages pinned", n,
	       ZC_U64(st.sends_in_flight), ZC_U64(st.pages_pinned));
}

/* Nothing of the module's stays pinned or in flight. */
static void life_module_idle(struct __test_metadata *_metadata)
{
	struct zcopy_stats st;
	int ret;

	ret = zc_wait_idle(-1, ZCOPY_STATS_MODULE, 5000, &st);
	EXPECT_EQ(0, ret) TH_LOG("module: %llu sends in flight, %llu pages pinned after 5 s",
				 ZC_U64(st.sends_in_flight), ZC_U64(st.pages_pinned));
	EXPECT_EQ(0, st.pages_pinned);
	EXPECT_EQ(0, st.sends_in_flight);
	/* No fd holds unread records now; every send has completed. */
	EXPECT_EQ(0, st.records_queued);
	EXPECT_EQ(st.sends, st.send_completions);
	EXPECT_EQ(st.send_bytes, st.tx_zerocopy_bytes + st.tx_copied_bytes);
	EXPECT_EQ(st.tx_copied_bytes,
		  st.tx_copied_not_offloaded + st.tx_copied_loopback + st.tx_copied_stack +
		  st.tx_copied_small);
}

/*
 * A send the socket refuses (EAGAIN: its send buffer is full) holds
 * nothing once the call returns: not its pages until the sends in flight
 * before it complete, though (before 6.10) it joined their skb to be sent:
 * 12 KiB sends leave that skb's chain room for a 4 KiB one.
 */
TEST_F(life, refused_send_holds_nothing)
{
	struct zcopy_iovec iov = { (uintptr_t)self->buf + 2 * MB, 4 * KB };
	struct zc_tx *t = &self->t;
	struct zcopy_stats st0, st1;
	unsigned int n;
	int i, ret, refused;

	zc_tx_start(_metadata, t, true, 4096, 64 * KB, false);
	n = zc_tx_fill(t, self->buf, MB, 12 * KB, 0, &ret);
	ASSERT_EQ(EAGAIN, ret) TH_LOG("after %u sends: %s", n, strerror(ret));
	/* The socket may find room again meanwhile: such a send just goes. */
	for (i = 0, refused = 0; i < 64 && refused < 4; i++) {
		ASSERT_EQ(0, zc_stats(t->zfd, 0, &st0));
		ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1,
				      ZCOPY_SEND_DONTWAIT, i, NULL);
		if (!ret)
			continue;
		ASSERT_EQ(-EAGAIN, ret) TH_LOG("a send to a full socket: %s", strerror(-ret));
		ASSERT_EQ(0, zc_stats(t->zfd, 0, &st1));
		EXPECT_EQ(st0.pages_pinned, st1.pages_pinned)
			TH_LOG("refused send %d holds %lld pages", refused,
			       (long long)(st1.pages_pinned - st0.pages_pinned));
		refused++;
	}
	ASSERT_LT(0, refused) TH_LOG("no send was refused");
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	zc_tx_verify(_metadata, t);
	life_module_idle(_metadata);
}

/*
 * The same, for a send that TCP links into the chain of the skb at the
 * tail of the queue (6.10 on; zcopy joins it itself before) and then
 * refuses: that skb's frags are full, below its size goal, and with
 * TCP_NOTSENT_LOWAT at 1 the socket has no room for another. 17 corked
 * sends of 3000 bytes from pages apart fill MAX_SKB_FRAGS (17 in both
 * kernels' configs) of one skb, once the window lets it take 64 KiB.
 */
TEST_F(life, refused_linked_send_holds_nothing)
{
	struct zc_tx *t = &self->t;
	struct zcopy_stats st0, st1;
	struct zcopy_iovec iov;
	size_t ps = zc_page_size();
	int one = 1, zero = 0, i, ret;

	zc_tx_start(_metadata, t, false, 0, 0, false);
	/* TCP's size goal is half the largest window seen: grow it past 128 KiB. */
	for (i = 0; i < 32; i++) {
		iov = (struct zcopy_iovec){ (uintptr_t)self->buf + 4 * MB + i * 64 * KB, 64 * KB };
		ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1, 0, i, NULL);
		ASSERT_EQ(0, ret) TH_LOG("warm-up send %d: %s", i, strerror(-ret));
	}
	ASSERT_EQ(0, zc_wait_idle(t->zfd, 0, 5000, NULL));
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)));
	for (i = 0; i <= 17; i++) {
		if (i == 17) {
			ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &one,
						sizeof(one)));
			ASSERT_EQ(0, zc_stats(t->zfd, 0, &st0));
		}
		iov = (struct zcopy_iovec){ (uintptr_t)self->buf + 2 * i * ps, 3000 };
		ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1,
				      ZCOPY_SEND_DONTWAIT, i, NULL);
		if (i < 17)
			ASSERT_EQ(0, ret) TH_LOG("send %d: %s", i, strerror(-ret));
	}
	EXPECT_EQ(-EAGAIN, ret) TH_LOG("a send past full frags and TCP_NOTSENT_LOWAT: %s",
				       ret ? strerror(-ret) : "sent");
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st1));
	EXPECT_EQ(st0.pages_pinned, st1.pages_pinned)
		TH_LOG("the refused send holds %lld pages",
		       (long long)(st1.pages_pinned - st0.pages_pinned));
	EXPECT_EQ(st0.sends_in_flight, st1.sends_in_flight);
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &zero, sizeof(zero)));
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero)));
	zc_tx_verify(_metadata, t);
	life_module_idle(_metadata);
}

/* Close the zcopy fd with sends in flight: they still arrive intact. */
TEST_F(life, close_zfd_in_flight)
{
	struct zc_tx *t = &self->t;

	life_fill(_metadata, t, self->buf);
	ASSERT_EQ(0, close(t->zfd));
	t->zfd = -1;
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	zc_tx_check_data(_metadata, t);
	life_module_idle(_metadata);
}

/* Reset the socket with sends in flight: the pages come back, records too. */
TEST_F(life, close_socket_reset_in_flight)
{
	struct zc_tx *t = &self->t;
	struct linger lg = { 1, 0 };
	struct zcopy_stats st;
	char msg[512];
	size_t i;
	int ret;

	life_fill(_metadata, t, self->buf);
	ASSERT_EQ(0, setsockopt(t->sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	ASSERT_EQ(0, close(t->sock));
	t->sock = -1;
	ret = zc_wait_idle(t->zfd, 0, 5000, &st);
	EXPECT_EQ(0, ret) TH_LOG("fd: %llu sends in flight, %llu pages pinned after the reset",
				 ZC_U64(st.sends_in_flight), ZC_U64(st.pages_pinned));
	/* Records for every send, however its bytes went. */
	for (i = 0; i < t->log.nsent; i++)
		t->log.sent[i].eflags = 0;
	ret = zc_collect(t->zfd, &t->log, 5000);
	ASSERT_EQ(0, ret) TH_LOG("records cover %llu of %zu sends",
				 ZC_U64(t->log.covered), t->log.nsent);
	ASSERT_EQ(0, zc_check_records(&t->log, msg, sizeof(msg))) TH_LOG("%s", msg);
	life_module_idle(_metadata);
}

/* close() with sends in flight: the socket sends them, their records come. */
TEST_F(life, close_socket_records_still_arrive)
{
	struct zc_tx *t = &self->t;

	life_fill(_metadata, t, self->buf);
	ASSERT_EQ(0, close(t->sock));
	t->sock = -1;
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	zc_tx_verify(_metadata, t);
	life_module_idle(_metadata);
}

/* A child with sends in flight exits; they arrive, its pages are let go. */
TEST_F(life, forked_sender_exits_in_flight)
{
	struct zc_tx *t = &self->t;
	struct zc_rx_shared *sh;
	int status;
	pid_t pid;

	zc_tx_start(_metadata, t, true, 4096, 64 * KB, false);
	sh = t->rx.sh;
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zcopy_stats st;
		char *buf = zc_map(MB);
		int err;

		/* A zcopy file and a buffer of the child's own. */
		t->zfd = zc_open();
		if (t->zfd < 0 || !buf)
			_exit(2);
		zc_fill(buf, ZC_SEED(103), MB);
		zc_tx_fill(t, buf, MB, 16 * KB, 0, &err);
		if (err != EAGAIN || zc_stats(t->zfd, 0, &st))
			_exit(3);
		sh->extra[0] = t->bytes;
		sh->extra[1] = t->hash;
		sh->extra[2] = st.sends_in_flight;
		_exit(0);
	}
	status = zc_wait_child(pid, 20000);
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("child status %#x", status);
	ASSERT_LT(0, sh->extra[2]) TH_LOG("the child had nothing in flight");
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	ASSERT_EQ(0, shutdown(t->sock, SHUT_WR));
	ASSERT_EQ(0, zc_rx_finish(&t->rx, 0, 20000));
	EXPECT_EQ(0, sh->err);
	EXPECT_EQ(sh->extra[0], sh->bytes);
	EXPECT_EQ(sh->extra[1], sh->hash);
	life_module_idle(_metadata);
}

static void __noreturn __printf(1, 2) child_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "# memlock child: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	_exit(1);
}

/*
 * In a child: open t->zfd as root, give it @sndbuf of send buffer (0:
 * leave it), then become nobody with 64 KiB of RLIMIT_MEMLOCK.
 */
static void memlock_child_init(struct zc_tx *t, int sndbuf)
{
	struct rlimit rl = { 64 * KB, 64 * KB };

	t->zfd = zc_open();
	if (t->zfd < 0)
		child_fail("open: %s", strerror(errno));
	if (sndbuf && zc_set_buf(t->sock, SO_SNDBUF, sndbuf))
		child_fail("SO_SNDBUFFORCE: %s", strerror(errno));
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
	    setresuid(65534, 65534, 65534))
		child_fail("dropping root: %s", strerror(errno));
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		child_fail("RLIMIT_MEMLOCK: %s", strerror(errno));
}

/*
 * The unprivileged sender: ENOBUFS once the sends in flight hold its
 * RLIMIT_MEMLOCK, then, the receiver drained and the records read, sends
 * again. Its stream's length and checksum go to extra[0] and [1].
 */
static void __noreturn memlock_child(struct zc_tx *t, char *buf)
{
	struct zcopy_iovec iov;
	struct zcopy_stats st;
	struct zcopy_send s;
	unsigned int n;
	int64_t deadline;
	char msg[512];
	int err, ret;

	memlock_child_init(t, MB);
	n = zc_tx_fill(t, buf, LIFE_BUF, 16 * KB, 512, &err);
	if (err != ENOBUFS)
		child_fail("after %u sends of 16 KiB: %s, expected ENOBUFS", n,
			   err ? strerror(err) : "no error");
	if (zc_stats(t->zfd, 0, &st) || !st.pages_pinned)
		child_fail("ENOBUFS with nothing pinned");
	fprintf(stderr, "# memlock child: ENOBUFS after %u sends, %llu in flight\n", n,
		ZC_U64(st.sends_in_flight));

	if (zc_rx_release(&t->rx))
		child_fail("releasing the receiver");
	ret = zc_collect(t->zfd, &t->log, 20000);
	if (ret)
		child_fail("records cover %llu of %zu sends: %s", ZC_U64(t->log.covered),
			   t->log.nsent, strerror(-ret));
	if (zc_wait_idle(t->zfd, 0, 5000, &st))
		child_fail("%llu pages still pinned", ZC_U64(st.pages_pinned));

	/* The charge is back: the same send goes now. */
	deadline = zc_now_ms() + 10000;
	iov = (struct zcopy_iovec){ (uintptr_t)buf + t->bytes, 16 * KB };
	do {
		struct pollfd p = { t->sock, POLLOUT, 0 };

		ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1,
				      ZCOPY_SEND_DONTWAIT, 1, &s);
		if (ret == -EAGAIN)
			poll(&p, 1, 100);
	} while (ret == -EAGAIN && zc_now_ms() < deadline);
	if (ret)
		child_fail("send after the completions: %s", strerror(-ret));
	ret = zc_collect(t->zfd, &t->log, 20000);
	if (ret || zc_check_records(&t->log, msg, sizeof(msg)))
		child_fail("records: %s", ret ? strerror(-ret) : msg);
	t->rx.sh->extra[0] = t->bytes;
	t->rx.sh->extra[1] = t->hash;
	_exit(0);
}

TEST_F_TIMEOUT(life, memlock_enobufs_then_recovers, 90)
{
	struct zc_tx *t = &self->t;
	struct zc_rx_shared *sh;
	int status;
	pid_t pid;

	zc_tx_start(_metadata, t, true, 4096, 0, false);
	sh = t->rx.sh;
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		memlock_child(t, self->buf);
	status = zc_wait_child(pid, 60000);
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("child status %#x", status);
	ASSERT_EQ(0, shutdown(t->sock, SHUT_WR));
	ASSERT_EQ(0, zc_rx_finish(&t->rx, 0, 20000));
	EXPECT_EQ(0, sh->err);
	EXPECT_EQ(sh->extra[0], sh->bytes);
	EXPECT_EQ(sh->extra[1], sh->hash);
	life_module_idle(_metadata);
}

/*
 * RLIMIT_MEMLOCK is charged the pages a send pins, not its bytes: 256
 * pieces of 8 bytes, each across a page boundary, are 2048 bytes (not
 * copied) and pin 512 pages. Unprivileged with 16 pages of RLIMIT_MEMLOCK,
 * the send fails with ENOBUFS and pins nothing.
 */
static void __noreturn memlock_pages_child(struct zc_tx *t, char *buf)
{
	struct zcopy_iovec iov[256];
	struct zcopy_stats st;
	struct zcopy_send s;
	size_t ps = zc_page_size();
	unsigned int i;
	int ret;

	memlock_child_init(t, 0);
	for (i = 0; i < ARRAY_SIZE(iov); i++)
		iov[i] = (struct zcopy_iovec){ (uintptr_t)buf + (2 * i + 1) * ps - 4, 8 };
	ret = zc_send(t->zfd, t->sock, iov, ARRAY_SIZE(iov), ZCOPY_SEND_DONTWAIT, 1, &s);
	if (ret != -ENOBUFS) {
		zc_stats(t->zfd, 0, &st);
		child_fail("a send pinning 512 pages under 16 of RLIMIT_MEMLOCK: %s, %llu bytes, %llu pages pinned",
			   ret ? strerror(-ret) : "sent", ZC_U64(ret ? 0 : s.bytes),
			   ZC_U64(st.pages_pinned_total));
	}
	_exit(0);
}

TEST_F(life, memlock_charges_pages_not_bytes)
{
	struct zc_tx *t = &self->t;
	int status;
	pid_t pid;

	zc_tx_start(_metadata, t, false, 0, 0, false);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		memlock_pages_child(t, self->buf);
	status = zc_wait_child(pid, 20000);
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("child status %#x", status);
	ASSERT_EQ(0, shutdown(t->sock, SHUT_WR));
	ASSERT_EQ(0, zc_rx_finish(&t->rx, 0, 20000));
	life_module_idle(_metadata);
}

/* ---- the module's parameters: each test restores what it changes ---- */

FIXTURE(param)
{
	struct zc_tx t;
	char *buf;
	const char *name;
	long saved;
};

FIXTURE_SETUP(param)
{
	const char *why = zc_tx_init(_metadata, &self->t, ZC_LOOPBACK, AF_INET, SOCK_STREAM);

	if (why)
		SKIP(return, "%s", why);
	ASSERT_LE(0, self->t.zfd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
	if (!self->t.stats)
		SKIP(return, "the module has no ZCOPY_FEAT_STATS");
	self->buf = zc_map(LIFE_BUF);
	ASSERT_NE(NULL, self->buf);
	zc_fill(self->buf, ZC_SEED(107), LIFE_BUF);
}

FIXTURE_TEARDOWN(param)
{
	if (self->name && zc_param_write(self->name, self->saved))
		TH_LOG("could not restore %s to %ld", self->name, self->saved);
	zc_tx_fini(&self->t);
	zc_unmap(self->buf, LIFE_BUF);
}

/* Set a parameter for the test; false when the module has none by that name. */
static bool param_set(struct __test_metadata *_metadata, FIXTURE_DATA(param) * self,
		      const char *name, long val)
{
	if (zc_param_read(name, &self->saved))
		return false;
	self->name = name;
	EXPECT_EQ(0, zc_param_write(name, val)) TH_LOG("writing %s", name);
	return true;
}

/* One send pins at most max_send_pages: a longer one is cut short. */
TEST_F(param, max_send_pages_truncates)
{
	struct zc_tx *t = &self->t;
	size_t ps = zc_page_size();
	char *b = self->buf;
	struct {
		unsigned int n;
		struct zcopy_iovec iov[3];
		uint64_t expect;
	} cases[] = {
		{ 1, { { (uintptr_t)b, MB } }, 4 * ps },
		{ 1, { { (uintptr_t)b + 100, MB } }, 4 * ps - 100 },
		{ 3, { { (uintptr_t)b + ps - 100, 100 }, { (uintptr_t)b + 10 * ps, 3 * ps },
		       { (uintptr_t)b + 20 * ps, 3 * ps } }, 100 + 3 * ps },
		{ 2, { { (uintptr_t)b + 30 * ps, 2 * ps + 1 }, { (uintptr_t)b + 40 * ps, 3 * ps } },
		  2 * ps + 1 + ps },
	};
	unsigned int i;

	if (!param_set(_metadata, self, "max_send_pages", 4))
		SKIP(return, "no parameter max_send_pages");
	zc_tx_start(_metadata, t, false, 0, 0, false);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct zcopy_send s;
		int ret;

		ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, cases[i].iov, cases[i].n,
				      0, i, &s);
		ASSERT_EQ(0, ret) TH_LOG("case %u: %s", i, strerror(-ret));
		EXPECT_EQ(cases[i].expect, s.bytes) TH_LOG("case %u", i);
	}
	zc_tx_verify(_metadata, t);
}

/* Past max_fd_pages pinned: ENOBUFS; once the records are in, sends go. */
TEST_F(param, max_fd_pages_enobufs)
{
	struct zc_tx *t = &self->t;
	struct zcopy_stats st;
	struct zcopy_iovec iov;
	unsigned int i;
	int ret = 0;

	if (!param_set(_metadata, self, "max_fd_pages", 16))
		SKIP(return, "no parameter max_fd_pages");
	zc_tx_start(_metadata, t, true, 4096, MB, false);
	for (i = 0; i < 256 && !ret; i++) {
		iov = (struct zcopy_iovec){ (uintptr_t)self->buf + i * 16 * KB, 16 * KB };
		ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1,
				      ZCOPY_SEND_DONTWAIT, i, NULL);
		ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
		EXPECT_GE(16, st.pages_pinned) TH_LOG("after send %u", i);
	}
	ASSERT_EQ(-ENOBUFS, ret) TH_LOG("after %u sends: %s", i, strerror(-ret));
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	ASSERT_EQ(0, zc_collect(t->zfd, &t->log, 20000));
	ASSERT_EQ(0, zc_wait_idle(t->zfd, 0, 5000, &st));
	ret = zc_tx_sendv(t, &iov, 1, 0, 1000);
	ASSERT_EQ(0, ret) TH_LOG("after the completions: %s", strerror(-ret));
	zc_tx_verify(_metadata, t);
}

/* Past max_records sends in flight and records unread: ENOSPC, none lost. */
TEST_F(param, max_records_enospc)
{
	struct zc_tx *t = &self->t;
	struct zcopy_stats st;
	struct zcopy_iovec iov;
	unsigned int i;
	int ret = 0;

	if (!param_set(_metadata, self, "max_records", 8))
		SKIP(return, "no parameter max_records");
	zc_tx_start(_metadata, t, true, 4096, MB, false);
	for (i = 0; i < 512 && !ret; i++) {
		iov = (struct zcopy_iovec){ (uintptr_t)self->buf + i * 4 * KB, 4 * KB };
		ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1,
				      ZCOPY_SEND_DONTWAIT, i, NULL);
		ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
		EXPECT_GE(8, st.sends_in_flight + st.records_queued) TH_LOG("after send %u", i);
	}
	ASSERT_EQ(-ENOSPC, ret) TH_LOG("after %u sends: %s", i, strerror(-ret));
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	ASSERT_EQ(0, zc_collect(t->zfd, &t->log, 20000));
	ASSERT_EQ(0, zc_wait_idle(t->zfd, 0, 5000, &st));
	ret = zc_tx_sendv(t, &iov, 1, 0, 1000);
	ASSERT_EQ(0, ret) TH_LOG("after reading the records: %s", strerror(-ret));
	zc_tx_verify(_metadata, t);
}

TEST_HARNESS_MAIN
