// SPDX-License-Identifier: GPL-2.0
/*
 * Zero-copy send (ZCOPY_IOC_SEND): every byte arrives, checksummed end to
 * end by a receiver in a forked child; the completion records cover each
 * send exactly once and say how its bytes left; the ledger agrees.
 *
 * Paths: loopback (copied: LOOPBACK), the e1000e pair eth0 -> eth1 in netns
 * "peer" (TCP and UDP datagrams that fit the MTU leave zero-copy, bigger
 * datagrams are fragmented: NOT_OFFLOADED), and the veth pair to netns
 * "vpeer" (copied on local delivery: STACK); TCP and UDP, IPv4 and IPv6.
 */
#include <net/if.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/tcp.h>
#include <linux/userfaultfd.h>

#include <linux/zcopy.h>

#include "kselftest_harness.h"
#include "zcopy_test_util.h"

#define KB	1024UL
#define MB	(1024 * KB)

FIXTURE(tx)
{
	struct zc_tx t;
	long saved_copy_below;	/* >= 0: restore at teardown */
	long saved_fastopen;	/* net.ipv4.tcp_fastopen, likewise */
};

FIXTURE_VARIANT(tx)
{
	enum zc_path path;
	int type;
	int family;
};

#define TX_VARIANT(p, P, proto, TYPE, fam, FAM)				\
	FIXTURE_VARIANT_ADD(tx, p##_##proto##_##fam)			\
	{								\
		.path = P, .type = TYPE, .family = FAM,			\
	}

TX_VARIANT(loopback, ZC_LOOPBACK, tcp, SOCK_STREAM, v4, AF_INET);
TX_VARIANT(loopback, ZC_LOOPBACK, tcp, SOCK_STREAM, v6, AF_INET6);
TX_VARIANT(loopback, ZC_LOOPBACK, udp, SOCK_DGRAM, v4, AF_INET);
TX_VARIANT(loopback, ZC_LOOPBACK, udp, SOCK_DGRAM, v6, AF_INET6);
TX_VARIANT(nic, ZC_NIC, tcp, SOCK_STREAM, v4, AF_INET);
TX_VARIANT(nic, ZC_NIC, tcp, SOCK_STREAM, v6, AF_INET6);
TX_VARIANT(nic, ZC_NIC, udp, SOCK_DGRAM, v4, AF_INET);
TX_VARIANT(nic, ZC_NIC, udp, SOCK_DGRAM, v6, AF_INET6);
TX_VARIANT(veth, ZC_VETH, tcp, SOCK_STREAM, v4, AF_INET);
TX_VARIANT(veth, ZC_VETH, tcp, SOCK_STREAM, v6, AF_INET6);
TX_VARIANT(veth, ZC_VETH, udp, SOCK_DGRAM, v4, AF_INET);
TX_VARIANT(veth, ZC_VETH, udp, SOCK_DGRAM, v6, AF_INET6);

FIXTURE_SETUP(tx)
{
	const char *why = zc_tx_init(_metadata, &self->t, variant->path,
				     variant->family, variant->type);

	self->saved_copy_below = -1;
	self->saved_fastopen = -1;
	if (why)
		SKIP(return, "%s", why);
	ASSERT_LE(0, self->t.zfd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
}

FIXTURE_TEARDOWN(tx)
{
	zc_tx_fini(&self->t);
	if (self->saved_copy_below >= 0)
		zc_param_write("copy_below", self->saved_copy_below);
	if (self->saved_fastopen >= 0)
		zc_ipv4_sysctl_write("tcp_fastopen", self->saved_fastopen);
}

#define IS_UDP(t)	((t)->net.type == SOCK_DGRAM)

/* @len bytes from @off past a page boundary, in as few sends as it takes. */
static void tx_one_buffer(struct __test_metadata *_metadata, struct zc_tx *t,
			  size_t len, size_t off)
{
	char *buf = zc_map(off + len);
	int ret;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(len * 131 + off), off + len);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	ret = zc_tx_send_buf(t, buf + off, len);
	ASSERT_EQ(0, ret) TH_LOG("sending %zu bytes: %s", len, strerror(-ret));
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, off + len);
}

TEST_F(tx, size_1)
{
	tx_one_buffer(_metadata, &self->t, 1, 0);
}

TEST_F(tx, size_4095)
{
	tx_one_buffer(_metadata, &self->t, 4095, 0);
}

TEST_F(tx, size_4096)
{
	tx_one_buffer(_metadata, &self->t, 4096, 0);
}

TEST_F(tx, size_4097)
{
	tx_one_buffer(_metadata, &self->t, 4097, 0);
}

/*
 * Below copy_below the module copies the send, as write() would: verified
 * bytes, records that say COPIED, SMALL at once, nothing pinned; a send of
 * copy_below bytes is pinned as usual.
 */
TEST_F(tx, short_sends_copied)
{
	static const size_t lens[] = { 1, 4096, 8191, 8192 };
	struct zc_tx *t = &self->t;
	uint64_t small = 0;
	struct zcopy_stats st;
	size_t off = 0, i;
	char *buf = zc_map(32 * KB);
	int ret;

	if (!(zc_features(t->zfd) & ZCOPY_FEAT_COPY_SMALL))
		SKIP(return, "the module has no ZCOPY_FEAT_COPY_SMALL");
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, zc_param_read("copy_below", &self->saved_copy_below));
	ASSERT_EQ(0, zc_param_write("copy_below", 8192));
	zc_fill(buf, ZC_SEED(77), 32 * KB);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	for (i = 0; i < ARRAY_SIZE(lens); off += lens[i++]) {
		ret = zc_tx_send_buf(t, buf + off, lens[i]);
		ASSERT_EQ(0, ret) TH_LOG("sending %zu bytes: %s", lens[i], strerror(-ret));
		if (lens[i] < 8192)
			small += lens[i];
	}
	zc_tx_verify(_metadata, t);
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	EXPECT_EQ(small, st.tx_copied_small);
	EXPECT_EQ(zc_pages_spanned((uintptr_t)buf + off - 8192, 8192), st.pages_pinned_total);
	zc_unmap(buf, 32 * KB);
}

/*
 * A socket connected with TCP_FASTOPEN_CONNECT sends its first bytes in
 * the SYN, which TCP copies there while it keeps the send's pages as if it
 * took them: the module copies that send itself, and its record says so
 * (COPIED, NOT_OFFLOADED), not zero-copy. The next send is as any other.
 * The client's sysctl puts data in a SYN without a cookie; the server,
 * without fast open, takes it when the client sends it again.
 */
TEST_F(tx, fastopen_first_send_copied)
{
	struct zc_tx *t = &self->t;
	struct sockaddr_storage ss;
	struct zcopy_iovec iov;
	struct zc_sent *first;
	int one = 1, ret;
	char *buf;
	socklen_t sl;

	if (IS_UDP(t))
		SKIP(return, "TCP only");
	ASSERT_EQ(0, zc_ipv4_sysctl_read("tcp_fastopen", &self->saved_fastopen));
	/* TFO_CLIENT_ENABLE | TFO_CLIENT_NO_COOKIE */
	ASSERT_EQ(0, zc_ipv4_sysctl_write("tcp_fastopen", 0x1 | 0x4));
	buf = zc_map(16 * KB);
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(88), 16 * KB);
	ret = zc_rx_start(&t->rx, &t->net, NULL);
	ASSERT_EQ(0, ret) TH_LOG("receiver: %s", strerror(-ret));
	t->sock = socket(t->net.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, t->sock);
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)));
	sl = zc_sockaddr(t->net.family, zc_peer_ip(&t->net), t->rx.port, &ss);
	/* Deferred: nothing leaves until the first send. */
	ASSERT_EQ(0, connect(t->sock, (struct sockaddr *)&ss, sl)) TH_LOG("%s", strerror(errno));

	iov = (struct zcopy_iovec){ (uintptr_t)buf, 8 * KB };
	ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1, 0, 0, NULL);
	ASSERT_EQ(0, ret) TH_LOG("the first send: %s", strerror(-ret));
	first = &t->log.sent[t->log.nsent - 1];
	first->eflags = ZCOPY_COMPL_COPIED | ZCOPY_COPIED_NOT_OFFLOADED;
	first->unpinned = true;
	iov.base += first->bytes;
	iov.len = 16 * KB - first->bytes;
	ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1, 0, 1, NULL);
	ASSERT_EQ(0, ret) TH_LOG("the second send: %s", strerror(-ret));
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, 16 * KB);
}

/* UDP: a datagram of the largest size and one of the rest. */
TEST_F(tx, size_65536)
{
	tx_one_buffer(_metadata, &self->t, 65536, 0);
}

TEST_F(tx, size_1m)
{
	tx_one_buffer(_metadata, &self->t, MB, 0);
}

/*
 * One send of 2048 pages, more than a completion lets go of in place
 * (1024): zcopy's worker releases it, its record as any other's.
 */
TEST_F(tx, size_8m)
{
	if (IS_UDP(&self->t))
		SKIP(return, "TCP only: a datagram is at most 64 KiB");
	tx_one_buffer(_metadata, &self->t, 8 * MB, 0);
}

TEST_F(tx, udp_max_datagram)
{
	if (!IS_UDP(&self->t))
		SKIP(return, "UDP only");
	tx_one_buffer(_metadata, &self->t, zc_udp_max(variant->family), 0);
}

/* Too big for a datagram: the socket's EMSGSIZE, no send, no record. */
TEST_F(tx, udp_oversize_emsgsize)
{
	struct zc_tx *t = &self->t;
	size_t max = zc_udp_max(variant->family);
	struct zcopy_iovec iov;
	struct zcopy_send s;
	char *buf;

	if (!IS_UDP(t))
		SKIP(return, "UDP only");
	buf = zc_map(max + 1);
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(7), max + 1);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	iov = (struct zcopy_iovec){ (uintptr_t)buf, max + 1 };
	EXPECT_EQ(-EMSGSIZE, zc_send(t->zfd, t->sock, &iov, 1, 0, 1, &s));
	/* The failed send took no sequence number and no bytes. */
	iov.len = max;
	ASSERT_EQ(0, zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1, 0, 2, &s));
	EXPECT_EQ(0, s.seq);
	EXPECT_EQ(0, s.offset);
	EXPECT_EQ(max, s.bytes);
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, max + 1);
}

/*
 * Datagrams around the path's MTU: the largest that fits leaves as the
 * path leaves it, one byte more is fragmented and copied (NOT_OFFLOADED).
 */
TEST_F(tx, udp_mtu_boundary)
{
	struct zc_tx *t = &self->t;
	size_t p = zc_udp_mtu_payload(&t->net), max = zc_udp_max(variant->family);
	size_t sizes[] = { 1, p - 1, p, p + 1, p + 2, p + 1000 };
	unsigned int i, n = 0;
	char *buf;

	if (!IS_UDP(t))
		SKIP(return, "UDP only");
	buf = zc_map(max);
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(11), max);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct zcopy_iovec iov = { (uintptr_t)buf, sizes[i] };

		if (sizes[i] > max)
			continue;
		ASSERT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, i)) TH_LOG("datagram of %zu", sizes[i]);
		n++;
	}
	TH_LOG("%u datagrams around %s's payload limit %zu", n,
	       zc_path_dev(t->net.path), p);
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, max);
}

/* Starts off page boundaries, ends on and off them. */
TEST_F(tx, unaligned_start)
{
	struct zc_tx *t = &self->t;
	size_t offs[] = { 1, 100, 2048, 4095 }, lens[] = { 2, 4096, 10001 };
	size_t slot = 16 * KB, i, j, k = 0;
	char *buf = zc_map(ARRAY_SIZE(offs) * ARRAY_SIZE(lens) * slot);

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(13), ARRAY_SIZE(offs) * ARRAY_SIZE(lens) * slot);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	for (i = 0; i < ARRAY_SIZE(offs); i++) {
		for (j = 0; j < ARRAY_SIZE(lens); j++, k++) {
			struct zcopy_iovec iov = { (uintptr_t)buf + k * slot + offs[i], lens[j] };

			ASSERT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, k))
				TH_LOG("offset %zu length %zu", offs[i], lens[j]);
		}
	}
	zc_tx_verify(_metadata, t);
}

/* Page-aligned starts, ends short of and past page boundaries. */
TEST_F(tx, unaligned_end)
{
	struct zc_tx *t = &self->t;
	size_t lens[] = { 1, 4095, 4097, 2 * 4096 - 1, 3 * 4096 + 1, 5 * 4096 - 3 };
	size_t slot = 32 * KB, i;
	char *buf = zc_map(ARRAY_SIZE(lens) * slot);

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(17), ARRAY_SIZE(lens) * slot);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		struct zcopy_iovec iov = { (uintptr_t)buf + i * slot, lens[i] };

		ASSERT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, i)) TH_LOG("length %zu", lens[i]);
	}
	zc_tx_verify(_metadata, t);
}

/*
 * @n vectors of random lengths up to @maxlen with random gaps, from a
 * random offset: @rounds sends (UDP: one datagram each).
 */
static void tx_vectors(struct __test_metadata *_metadata, struct zc_tx *t, unsigned int n,
		       size_t maxlen, size_t maxgap, unsigned int rounds, uint64_t seed)
{
	size_t size = n * (maxlen + maxgap) + 4096;
	struct zcopy_iovec *iov = calloc(n, sizeof(*iov));
	char *buf = zc_map(size);
	unsigned int r, i;

	ASSERT_NE(NULL, iov);
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(seed), size);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	for (r = 0; r < rounds; r++) {
		size_t pos = zc_rand_range(&seed, 0, 4095);
		int ret;

		for (i = 0; i < n; i++) {
			pos += zc_rand_range(&seed, 0, maxgap);
			iov[i].base = (uintptr_t)buf + pos;
			iov[i].len = zc_rand_range(&seed, 1, maxlen);
			pos += iov[i].len;
		}
		ret = zc_tx_sendv(t, iov, n, 0, r);
		ASSERT_EQ(0, ret) TH_LOG("round %u: %s", r, strerror(-ret));
	}
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, size);
	free(iov);
}

TEST_F(tx, many_vectors)
{
	/* UDP: 100 vectors of up to 600 bytes fit one datagram. */
	tx_vectors(_metadata, &self->t, 100, IS_UDP(&self->t) ? 600 : 8000, 200, 3, 19);
}

TEST_F(tx, max_vectors)
{
	size_t maxlen = IS_UDP(&self->t) ? zc_udp_max(variant->family) / ZCOPY_MAX_IOV : 256;

	tx_vectors(_metadata, &self->t, ZCOPY_MAX_IOV, maxlen, 16, 2, 23);
}

/*
 * A small message (it fits the MTU everywhere) in more pieces than an skb
 * has fragments (MAX_SKB_FRAGS, 17): one vector at the start of each page.
 */
TEST_F(tx, scattered_vectors)
{
	struct zc_tx *t = &self->t;
	size_t ps = zc_page_size(), n = 40, i;
	struct zcopy_iovec iov[40];
	char *buf = zc_map(n * ps);
	int ret;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(97), n * ps);
	for (i = 0; i < n; i++)
		iov[i] = (struct zcopy_iovec){ (uintptr_t)buf + i * ps, 8 + i % 17 };
	zc_tx_start(_metadata, t, false, 0, 0, false);
	ret = zc_tx_sendv(t, iov, n, 0, 0);
	ASSERT_EQ(0, ret) TH_LOG("%zu vectors: %s", n, strerror(-ret));
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, n * ps);
}

/* Zero-length entries are skipped, whatever their base. */
TEST_F(tx, zero_length_entries)
{
	struct zc_tx *t = &self->t;
	char *buf = zc_map(16 * KB);
	struct zcopy_iovec iov[] = {
		{ 0, 0 },
		{ (uintptr_t)buf + 10, 100 },
		{ (uintptr_t)buf + 200, 0 },
		{ (uintptr_t)buf + 300, 5000 },
		{ 0, 0 },
		{ (uintptr_t)buf + 9000, 1 },
		{ (uintptr_t)buf + 9001, 0 },
	};
	struct zcopy_send s;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(29), 16 * KB);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	ASSERT_EQ(0, zc_tx_send_once(t, t->zfd, t->sock, &t->log, iov, ARRAY_SIZE(iov),
				     0, 0, &s));
	EXPECT_EQ(5101, s.bytes);
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, 16 * KB);
}

/* The same bytes twice in one send, and overlapping. */
TEST_F(tx, same_buffer_twice)
{
	struct zc_tx *t = &self->t;
	char *buf = zc_map(16 * KB);
	struct zcopy_iovec iov[] = {
		{ (uintptr_t)buf, 3000 },
		{ (uintptr_t)buf, 3000 },
		{ (uintptr_t)buf + 1000, 5000 },
	};

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(31), 16 * KB);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	ASSERT_EQ(0, zc_tx_sendv(t, iov, ARRAY_SIZE(iov), 0, 0));
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, 16 * KB);
}

/*
 * write()s between sends on one TCP socket, corked, so that the two share
 * skbs both ways: a send that TCP appends to an skb of copied bytes takes
 * a reference to each page it adds, and a write() appended to an skb of a
 * send's makes that skb take them for the pages it has. The stream
 * arrives as written, and every page is let go of.
 */
TEST_F(tx, writes_between_sends)
{
	struct zc_tx *t = &self->t;
	char *buf = zc_map(64 * KB);
	char small[1000];
	int on = 1, off = 0;
	unsigned int i;

	if (IS_UDP(t))
		SKIP(return, "each datagram is an skb of its own");
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(41), 64 * KB);
	zc_fill(small, ZC_SEED(42), sizeof(small));
	zc_tx_start(_metadata, t, false, 0, 0, false);
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)));
	for (i = 0; i < 8; i++) {
		struct zcopy_iovec iov = { (uintptr_t)buf + i * 8 * KB + i * 100, 5000 };

		ASSERT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, i));
		ASSERT_EQ(sizeof(small), write(t->sock, small, sizeof(small)));
		t->hash = zc_fnv(t->hash, small, sizeof(small));
		t->bytes += sizeof(small);
	}
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &off, sizeof(off)));
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, 64 * KB);
}

/*
 * Free pages, counting those the page allocator keeps in per-CPU lists
 * (/proc/zoneinfo), which /proc/meminfo's MemFree leaves out: freeing a
 * file of a few MiB may leave most of it there. -1 if unreadable.
 */
static long tx_free_pages(void)
{
	char line[160];
	long n, total = 0;
	FILE *f = fopen("/proc/zoneinfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " pages free %ld", &n) == 1 || sscanf(line, " count: %ld", &n) == 1)
			total += n;
	fclose(f);
	return total;
}

#define TX_SENDFILE_PAGES	4096

/*
 * sendfile() after a send on one TCP socket, corked, so that TCP adds the
 * file's page to the send's skb. The skb drops every page reference it
 * took: once the file is gone, its pages are free again. Before 6.5 TCP's
 * sendpage adds a page with a reference that an skb of managed frags
 * (SKBFL_MANAGED_FRAG_REFS) never drops, so sends there must not make one;
 * a leak there keeps all of the file's 16 MiB. Its 4096 rounds of four
 * calls take the debug kernel (KASAN, lockdep) about 30 s over veth: the
 * harness's default timeout.
 */
TEST_F_TIMEOUT(tx, sendfile_after_send_frees_file_pages, 180)
{
	const size_t ps = zc_page_size(), flen = TX_SENDFILE_PAGES * ps;
	struct zc_tx *t = &self->t;
	char *buf = zc_map(ps), *file;
	long free0, free1;
	int on = 1, off = 0, mfd;
	unsigned int i;

	if (IS_UDP(t))
		SKIP(return, "sendfile() to a datagram socket is a datagram of its own");
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(43), ps);
	/* First: the receiver, a child, must not inherit the file. */
	zc_tx_start(_metadata, t, false, 0, 0, false);
	free0 = tx_free_pages();
	ASSERT_LT(0, free0);
	mfd = memfd_create("zcopy-sendfile", MFD_CLOEXEC);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, flen));
	file = mmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, file);
	zc_fill(file, ZC_SEED(44), flen);
	for (i = 0; i < TX_SENDFILE_PAGES; i++) {
		struct zcopy_iovec iov = { (uintptr_t)buf, ps };
		off_t pos = i * ps;

		ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)));
		ASSERT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, i));
		ASSERT_EQ((ssize_t)ps, sendfile(t->sock, mfd, &pos, ps));
		t->hash = zc_fnv(t->hash, file + i * ps, ps);
		t->bytes += ps;
		ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &off, sizeof(off)));
	}
	/* Every record back: the skbs that held the file's pages are gone. */
	zc_tx_verify(_metadata, t);
	munmap(file, flen);
	close(mfd);
	zc_unmap(buf, ps);
	free1 = tx_free_pages();
	EXPECT_LT(free0 - TX_SENDFILE_PAGES / 2, free1)
		TH_LOG("%ld pages free before the file, %ld after it is gone (%d sent from it)",
		       free0, free1, TX_SENDFILE_PAGES);
}

/* Pages are pinned for reading: a read-only file mapping is fine. */
TEST_F(tx, readonly_file_mapping)
{
	struct zc_tx *t = &self->t;
	size_t size = 64 * KB;
	char *src = malloc(size), *map;
	struct zcopy_iovec iov[2];
	int mfd;

	ASSERT_NE(NULL, src);
	zc_fill(src, ZC_SEED(37), size);
	mfd = memfd_create("zcopy-ro", MFD_CLOEXEC);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(size, pwrite(mfd, src, size, 0));
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, map);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	iov[0] = (struct zcopy_iovec){ (uintptr_t)map, 3 * 4096 };
	iov[1] = (struct zcopy_iovec){ (uintptr_t)map + 5000, 20000 };
	ASSERT_EQ(0, zc_tx_sendv(t, &iov[0], 1, 0, 0));
	ASSERT_EQ(0, zc_tx_sendv(t, &iov[1], 1, 0, 1));
	zc_tx_verify(_metadata, t);
	munmap(map, size);
	close(mfd);
	free(src);
}

/* Anonymous memory never written reads as zeroes, and sends as zeroes. */
TEST_F(tx, untouched_anonymous_memory)
{
	struct zc_tx *t = &self->t;
	size_t size = 64 * KB;
	char *buf = zc_map(size);
	uint64_t h = ZC_FNV_INIT;
	size_t i;

	ASSERT_NE(NULL, buf);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	ASSERT_EQ(0, zc_tx_send_buf(t, buf, size));
	for (i = 0; i < size; i++)
		h = zc_fnv(h, "", 1);
	if (!IS_UDP(t))
		EXPECT_EQ(h, t->hash) TH_LOG("the buffer changed under the send");
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, size);
}

/*
 * Put data in flight: the receiver holds, the socket's buffers are small,
 * non-blocking sends until the socket takes no more (UDP sends never wait:
 * a few datagrams).
 */
static void tx_fill(struct __test_metadata *_metadata, struct zc_tx *t,
		    char *buf, size_t size, size_t chunk)
{
	unsigned int n;
	int err;

	n = zc_tx_fill(t, buf, size, chunk, IS_UDP(t) ? 4 : 0, &err);
	if (!IS_UDP(t))
		EXPECT_EQ(EAGAIN, err) TH_LOG("filling the socket: %s", strerror(err));
	EXPECT_LT(0, n);
}

/* A held TCP receiver takes little; a UDP one must keep every datagram. */
static int tx_hold_rcvbuf(struct zc_tx *t)
{
	return IS_UDP(t) ? 0 : 4096;
}

static void tx_expect_in_flight(struct __test_metadata *_metadata, struct zc_tx *t)
{
	struct zcopy_stats st;

	if (!t->stats || IS_UDP(t))
		return;
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	ASSERT_LT(0, st.sends_in_flight) TH_LOG("nothing in flight: the test proves nothing");
	ASSERT_LT(0, st.pages_pinned);
}

/* Pinned pages outlive the mapping: unmapped in flight, sent intact. */
TEST_F(tx, munmap_in_flight)
{
	struct zc_tx *t = &self->t;
	size_t size = MB, chunk = IS_UDP(t) ? 1000 : 64 * KB;
	char *buf = zc_map(size);

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(41), size);
	zc_tx_start(_metadata, t, true, tx_hold_rcvbuf(t), 64 * KB, false);
	tx_fill(_metadata, t, buf, size, chunk);
	tx_expect_in_flight(_metadata, t);
	zc_unmap(buf, size);
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	zc_tx_verify(_metadata, t);
}

/* A child writing its copy of the buffer leaves the in-flight data alone. */
TEST_F(tx, fork_child_writes_in_flight)
{
	struct zc_tx *t = &self->t;
	size_t size = MB, chunk = IS_UDP(t) ? 1000 : 64 * KB;
	char *buf = zc_map(size);
	int status;
	pid_t pid;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(43), size);
	zc_tx_start(_metadata, t, true, tx_hold_rcvbuf(t), 64 * KB, false);
	tx_fill(_metadata, t, buf, size, chunk);
	tx_expect_in_flight(_metadata, t);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		memset(buf, 0xa5, size);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, size);
}

/*
 * Registered buffers (ZCOPY_SEND_FIXED): sends of many sizes and offsets
 * from one buffer registered once arrive intact, each covered by a record,
 * and pin nothing of their own: pages_pinned_total grows by the buffer's
 * pages at registration and not at all with the sends.
 */
TEST_F(tx, fixed_sends)
{
	static const struct { size_t off, len; } cases[] = {
		{ 0, 1 }, { 0, 4096 }, { 100, 4097 }, { 4095, 2 },
		{ 0, 64 * KB }, { 3, 200000 }, { 0, MB },
	};
	struct zc_tx *t = &self->t;
	size_t size = 2 * MB, pages = size / zc_page_size(), i;
	struct zcopy_stats st0, st1;
	char *buf = zc_map(size);
	int idx, ret;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(47), size);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st0));
	idx = zc_register(t->zfd, buf, size);
	ASSERT_LE(0, idx) TH_LOG("ZCOPY_IOC_REGISTER: %s", strerror(-idx));
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st1));
	EXPECT_EQ(pages, st1.pages_pinned - st0.pages_pinned);
	EXPECT_EQ(pages, st1.pages_pinned_total - st0.pages_pinned_total);

	t->fixed = idx;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		ret = zc_tx_send_buf(t, buf + cases[i].off, cases[i].len);
		ASSERT_EQ(0, ret) TH_LOG("%zu bytes at %zu: %s", cases[i].len, cases[i].off,
					 strerror(-ret));
	}
	t->fixed = -1;
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st1));
	EXPECT_EQ(pages, st1.pages_pinned_total - st0.pages_pinned_total)
		TH_LOG("the sends pinned pages of their own");
	ASSERT_EQ(0, zc_unregister(t->zfd, idx));
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, size);
}

/*
 * A buffer unregistered, or its fd closed, while sends from it are in
 * flight stays pinned until they complete; the data arrives intact.
 */
static void tx_fixed_gone_in_flight(struct __test_metadata *_metadata, struct zc_tx *t,
				    bool close_fd)
{
	size_t size = MB, chunk = IS_UDP(t) ? 1000 : 64 * KB;
	size_t pages = size / zc_page_size();
	struct zcopy_stats st;
	char *buf = zc_map(size);
	int idx;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(53), size);
	zc_tx_start(_metadata, t, true, tx_hold_rcvbuf(t), 64 * KB, false);
	idx = zc_register(t->zfd, buf, size);
	ASSERT_LE(0, idx) TH_LOG("ZCOPY_IOC_REGISTER: %s", strerror(-idx));
	t->fixed = idx;
	tx_fill(_metadata, t, buf, size, chunk);
	t->fixed = -1;
	tx_expect_in_flight(_metadata, t);
	if (close_fd) {
		ASSERT_EQ(0, close(t->zfd));
		t->zfd = -1;
		ASSERT_EQ(0, zc_rx_release(&t->rx));
		zc_tx_check_data(_metadata, t);
		/* Nothing left held once the sends complete. */
		zc_expect_module_idle(_metadata, -1, 10000, &st);
		zc_unmap(buf, size);
		return;
	}
	ASSERT_EQ(0, zc_unregister(t->zfd, idx));
	EXPECT_EQ(-ENOENT, zc_unregister(t->zfd, idx));
	if (!IS_UDP(t)) {
		ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
		EXPECT_LE(pages, st.pages_pinned) TH_LOG("unpinned under sends in flight");
	}
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	/* The last send's release unpins the buffer before its record comes. */
	ASSERT_EQ(0, zc_collect(t->zfd, &t->log, 20000));
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	EXPECT_EQ(0, st.pages_pinned) TH_LOG("pinned after the last record");
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, size);
}

TEST_F(tx, fixed_unregister_in_flight)
{
	tx_fixed_gone_in_flight(_metadata, &self->t, false);
}

TEST_F(tx, fixed_close_in_flight)
{
	tx_fixed_gone_in_flight(_metadata, &self->t, true);
}

/*
 * @n sends from one buffer (registered, with @fixed: ZCOPY_SEND_FIXED) in
 * ZCOPY_IOC_SEND_BATCH calls of @per_call (4 for UDP, which waits for its
 * receiver): of 1 to @max_len bytes, every @long_every-th of 20000, with
 * ZCOPY_SEND_MORE on every @more_every-th (TCP; 0: none). They arrive
 * intact and in order, each with its record and counted in the ledger, as
 * the same sends one by one.
 */
static void tx_batch(struct __test_metadata *_metadata, struct zc_tx *t, unsigned int n,
		     size_t max_len, unsigned int long_every, unsigned int more_every,
		     unsigned int per_call, uint64_t seed, bool fixed)
{
	size_t size = n * 20000, off = 0;
	struct zcopy_iovec *iov = calloc(n, sizeof(*iov));
	uint32_t *flags = calloc(n, sizeof(*flags));
	char *buf = zc_map(size);
	uint64_t rng = seed;
	unsigned int i;
	int ret, idx = -1;

	ASSERT_NE(NULL, iov);
	ASSERT_NE(NULL, flags);
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(seed), size);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	if (fixed) {
		idx = zc_register(t->zfd, buf, size);
		ASSERT_LE(0, idx) TH_LOG("ZCOPY_IOC_REGISTER: %s", strerror(-idx));
	}
	for (i = 0; i < n; i++) {
		iov[i].base = (uintptr_t)buf + off;
		iov[i].len = long_every && i % long_every == long_every - 1 ? 20000 :
			     zc_rand_range(&rng, 1, max_len);
		if (!IS_UDP(t) && more_every && i % more_every == more_every - 1)
			flags[i] = ZCOPY_SEND_MORE;
		off += iov[i].len;
	}
	t->fixed = idx;
	ret = zc_tx_send_batch(t, iov, flags, n, IS_UDP(t) ? 4 : per_call);
	t->fixed = -1;
	ASSERT_EQ(0, ret) TH_LOG("ZCOPY_IOC_SEND_BATCH: %s", strerror(-ret));
	if (fixed)
		ASSERT_EQ(0, zc_unregister(t->zfd, idx));
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, size);
	free(flags);
	free(iov);
}

/*
 * 48 sends of 1 to 20000 bytes, 16 to a call; on TCP, pinned ones in a row
 * (sharing pages where they meet) go as one.
 */
TEST_F(tx, batch_sends)
{
	tx_batch(_metadata, &self->t, 48, 20000, 0, 0, 16, 61, false);
}

/*
 * A batch's copied sends in a row to a stream socket go down in one
 * sendmsg: 96 sends of 1 to 1500 bytes, runs of them cut by a pinned
 * 20000-byte send every 13th (a run of its own), by ZCOPY_SEND_MORE on
 * every 7th (TCP) and by the 32 sends a run takes, 48 to a call; each
 * keeps its own sequence number and offset.
 */
TEST_F(tx, batch_short_runs)
{
	tx_batch(_metadata, &self->t, 96, 1500, 13, 7, 48, 67, false);
}

/*
 * The same from a registered buffer (ZCOPY_SEND_FIXED): runs of sends of
 * its pages, and runs of copied sends, each one send, pinning nothing.
 */
TEST_F(tx, batch_fixed_sends)
{
	tx_batch(_metadata, &self->t, 48, 20000, 0, 0, 16, 73, true);
}

TEST_F(tx, batch_fixed_short_runs)
{
	tx_batch(_metadata, &self->t, 96, 1500, 13, 7, 48, 79, true);
}

/*
 * Sends of @len bytes with ZCOPY_SEND_DONTWAIT into a socket that fills: a
 * batch stops at the send its run got in part or not at all, done and
 * that send's bytes say so, and later calls go on from there; the stream
 * has every byte once and the records cover every send.
 */
static void tx_batch_dontwait(struct __test_metadata *_metadata, struct zc_tx *t,
			      size_t len)
{
	size_t size = 1024 * len;
	struct zcopy_iovec iov[1024];
	struct zcopy_send s[256];
	struct zcopy_stats st;
	char *buf = zc_map(size);
	unsigned int i, first = 0, k, calls;
	bool stopped_short = false;
	int ret = 0;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(71), size);
	/* A window of some MSS, so that the stream drains in good time once released. */
	zc_tx_start(_metadata, t, true, 64 * KB, 16 * KB, false);
	for (i = 0; i < ARRAY_SIZE(iov); i++)
		iov[i] = (struct zcopy_iovec){ (uintptr_t)buf + i * len, len };
	for (calls = 0; calls < 1000 && first < ARRAY_SIZE(iov); calls++) {
		k = ARRAY_SIZE(iov) - first < ARRAY_SIZE(s) ? ARRAY_SIZE(iov) - first :
							      ARRAY_SIZE(s);
		for (i = 0; i < k; i++)
			s[i] = (struct zcopy_send){ .sockfd = t->sock,
						    .flags = ZCOPY_SEND_DONTWAIT,
						    .iov = (uintptr_t)&iov[first + i],
						    .iov_count = 1, .cookie = first + i };
		ret = zc_send_batch(t->zfd, s, k);
		if (ret < 0)
			break;
		ASSERT_LT(0, ret);
		ASSERT_GE(k, (unsigned int)ret);
		for (i = 0; i < (unsigned int)ret; i++) {
			ASSERT_LT(0, s[i].bytes) TH_LOG("entry %u counted, nothing sent", i);
			zc_tx_log_sent(t, &iov[first + i], &s[i]);
		}
		for (i = ret; i < k; i++)
			ASSERT_EQ(0, s[i].bytes) TH_LOG("entry %u after done was written", i);
		i = ret - 1;
		if ((unsigned int)ret < k || s[i].bytes < iov[first + i].len)
			stopped_short = true;
		if (s[i].bytes < iov[first + i].len) {
			iov[first + i].base += s[i].bytes;
			iov[first + i].len -= s[i].bytes;
			first += i;
		} else {
			first += ret;
		}
	}
	ASSERT_EQ(-EAGAIN, ret) TH_LOG("the socket buffers took %zu bytes: %s", size,
				       strerror(-ret));
	EXPECT_TRUE(stopped_short);
	/* In flight are sends, however many of them went as one. */
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	EXPECT_EQ(st.sends - st.send_completions, st.sends_in_flight);
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	ret = zc_tx_send_batch(t, iov + first, NULL, ARRAY_SIZE(iov) - first, 64);
	ASSERT_EQ(0, ret) TH_LOG("ZCOPY_IOC_SEND_BATCH: %s", strerror(-ret));
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, size);
}

/* Copied sends: a run is one sendmsg of their bytes. */
TEST_F(tx, batch_short_dontwait)
{
	if (IS_UDP(&self->t))
		SKIP(return, "TCP only: a datagram is a send of its own");
	tx_batch_dontwait(_metadata, &self->t, 1000);
}

/* Pinned sends: a run is one send of their pages, trimmed where it stopped. */
TEST_F(tx, batch_pinned_dontwait)
{
	if (IS_UDP(&self->t))
		SKIP(return, "TCP only: a datagram is a send of its own");
	tx_batch_dontwait(_metadata, &self->t, 4000);
}

/* SEND_MORE: TCP holds the bytes for the next send, UDP builds one datagram. */
TEST_F(tx, send_more_flag)
{
	struct zc_tx *t = &self->t;
	char *buf = zc_map(16 * KB);
	struct zcopy_iovec a, b;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(47), 16 * KB);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	a = (struct zcopy_iovec){ (uintptr_t)buf, 100 };
	b = (struct zcopy_iovec){ (uintptr_t)buf + 5000, 200 };
	ASSERT_EQ(0, zc_tx_sendv(t, &a, 1, ZCOPY_SEND_MORE, 1));
	ASSERT_EQ(0, zc_tx_sendv(t, &b, 1, 0, 2));
	if (IS_UDP(t))
		ASSERT_EQ(1, t->ndg);
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, 16 * KB);
}

/* How a test builds one UDP datagram from two sends. */
enum tx_cork {
	TX_CORK_MORE,		/* the first send with ZCOPY_SEND_MORE */
	TX_CORK_SOCKOPT,	/* both under UDP_CORK */
	TX_CORK_FIXED,		/* as TX_CORK_MORE, from a registered buffer */
	TX_CORK_USER,		/* the first a send(MSG_ZEROCOPY | MSG_MORE) of the user's */
};

/*
 * One datagram of two sends, 100 and 200 bytes, on a UDP socket with
 * UDP_SEGMENT: the stack would give the datagram's skb the first send's
 * ubuf, then refuse the second send's (EINVAL) and drop the datagram built
 * so far; a ubuf of the user's (SO_ZEROCOPY) is on it even without GSO.
 * The module copies a corked datagram's sends, as the stack copies them
 * without UDP_SEGMENT: the datagram arrives whole, and nothing is pinned.
 */
static void tx_corked_datagram(struct __test_metadata *_metadata, struct zc_tx *t,
			       enum tx_cork how)
{
	size_t size = 16 * KB, pages = size / zc_page_size();
	char *buf = zc_map(size);
	struct zcopy_iovec a, b;
	struct zcopy_stats st;
	int gso = 1000, one = 1, idx = -1;

	if (!IS_UDP(t))
		SKIP(return, "UDP only: TCP gives each skb its own ubuf");
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(48 + how), size);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_UDP, UDP_SEGMENT, &gso, sizeof(gso)));
	a = (struct zcopy_iovec){ (uintptr_t)buf, 100 };
	b = (struct zcopy_iovec){ (uintptr_t)buf + 5000, 200 };
	switch (how) {
	case TX_CORK_MORE:
		ASSERT_EQ(0, zc_tx_sendv(t, &a, 1, ZCOPY_SEND_MORE, 1));
		break;
	case TX_CORK_SOCKOPT:
		ASSERT_EQ(0, zc_tx_cork(t, true));
		ASSERT_EQ(0, zc_tx_sendv(t, &a, 1, 0, 1));
		break;
	case TX_CORK_FIXED:
		idx = zc_register(t->zfd, buf, size);
		ASSERT_LE(0, idx) TH_LOG("ZCOPY_IOC_REGISTER: %s", strerror(-idx));
		t->fixed = idx;
		ASSERT_EQ(0, zc_tx_sendv(t, &a, 1, ZCOPY_SEND_MORE, 1));
		break;
	case TX_CORK_USER:
		ASSERT_EQ(0, setsockopt(t->sock, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)));
		ASSERT_EQ(100, send(t->sock, buf, 100, MSG_ZEROCOPY | MSG_MORE));
		zc_tx_add_sent(t, &a);
		break;
	}
	ASSERT_EQ(0, zc_tx_sendv(t, &b, 1, 0, 2));
	if (how == TX_CORK_SOCKOPT)
		ASSERT_EQ(0, zc_tx_cork(t, false));
	t->fixed = -1;
	if (idx >= 0)
		ASSERT_EQ(0, zc_unregister(t->zfd, idx));
	ASSERT_EQ(1, t->ndg);
	zc_tx_verify(_metadata, t);
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	EXPECT_EQ(how == TX_CORK_USER ? 200 : 300, st.tx_copied_not_offloaded);
	EXPECT_EQ(0, st.tx_zerocopy_bytes);
	EXPECT_EQ(idx >= 0 ? pages : 0, st.pages_pinned_total);
	zc_unmap(buf, size);
}

TEST_F(tx, send_more_udp_gso)
{
	tx_corked_datagram(_metadata, &self->t, TX_CORK_MORE);
}

TEST_F(tx, udp_cork_gso)
{
	tx_corked_datagram(_metadata, &self->t, TX_CORK_SOCKOPT);
}

TEST_F(tx, send_more_udp_gso_fixed)
{
	tx_corked_datagram(_metadata, &self->t, TX_CORK_FIXED);
}

TEST_F(tx, udp_more_after_users_zerocopy)
{
	tx_corked_datagram(_metadata, &self->t, TX_CORK_USER);
}

/*
 * ZCOPY_SEND_DONTWAIT on a blocking socket: a short send, then EAGAIN,
 * which takes no sequence number and leaves no record; blocking sends then
 * carry on from where it stopped.
 */
TEST_F(tx, dontwait_partial_send)
{
	struct zc_tx *t = &self->t;
	size_t size = MB, off;
	char *buf = zc_map(size);
	struct zcopy_iovec iov;
	struct zcopy_send s;
	unsigned int i;
	int ret;

	if (IS_UDP(t))
		SKIP(return, "TCP only: a datagram is all or nothing");
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(53), size);
	zc_tx_start(_metadata, t, true, 4096, 64 * KB, false);
	iov = (struct zcopy_iovec){ (uintptr_t)buf, size };
	ASSERT_EQ(0, zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1,
				     ZCOPY_SEND_DONTWAIT, 0, &s));
	EXPECT_LT(0, s.bytes);
	EXPECT_GT(size, s.bytes) TH_LOG("a 64 KiB socket buffer took the whole MiB");
	off = s.bytes;
	for (i = 0, ret = 0; i < 1000 && !ret && off < size; i++) {
		iov = (struct zcopy_iovec){ (uintptr_t)buf + off, size - off };
		ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1,
				      ZCOPY_SEND_DONTWAIT, off, &s);
		if (!ret)
			off += s.bytes;
	}
	ASSERT_EQ(-EAGAIN, ret);
	/* Again: EAGAIN, or the socket drained a little; the records will tell. */
	ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1, ZCOPY_SEND_DONTWAIT, off, &s);
	if (ret != -EAGAIN) {
		ASSERT_EQ(0, ret) TH_LOG("%s", strerror(-ret));
		off += s.bytes;
	}
	EXPECT_LE(0, zc_log_records(t->zfd, &t->log, 0));
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	iov = (struct zcopy_iovec){ (uintptr_t)buf + off, size - off };
	ASSERT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, off));
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, size);
}

/* A non-blocking socket: short sends, EAGAIN, then the rest once it drains. */
TEST_F(tx, nonblocking_socket_eagain)
{
	struct zc_tx *t = &self->t;
	size_t size = MB, off = 0;
	char *buf = zc_map(size);
	unsigned int eagain = 0;
	int64_t deadline;

	if (IS_UDP(t))
		SKIP(return, "TCP only: a datagram is all or nothing");
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(59), size);
	zc_tx_start(_metadata, t, true, 4096, 64 * KB, true);
	deadline = zc_now_ms() + 20000;
	while (off < size) {
		struct zcopy_iovec iov = { (uintptr_t)buf + off, size - off };
		struct zcopy_send s;
		int ret;

		ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1, 0, off, &s);
		if (ret == -EAGAIN) {
			struct pollfd p = { t->sock, POLLOUT, 0 };

			/* The first time, let the receiver go. */
			if (!eagain++)
				ASSERT_EQ(0, zc_rx_release(&t->rx));
			ASSERT_GT(deadline, zc_now_ms()) TH_LOG("stuck at %zu bytes", off);
			poll(&p, 1, 1000);
			continue;
		}
		ASSERT_EQ(0, ret) TH_LOG("at %zu bytes: %s", off, strerror(-ret));
		off += s.bytes;
	}
	EXPECT_LT(0, eagain) TH_LOG("a held receiver never filled the socket");
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, size);
}

/* Many sends of random sizes and cookies: each covered once, in order. */
TEST_F(tx, records_cover_sends)
{
	struct zc_tx *t = &self->t;
	size_t size = 2 * MB, p = zc_udp_mtu_payload(&t->net);
	size_t max = zc_udp_max(variant->family);
	char *buf = zc_map(size);
	uint64_t seed = 61;
	unsigned int i;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(seed), size);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	for (i = 0; i < 48; i++) {
		struct zcopy_iovec iov;
		size_t len;

		if (!IS_UDP(t))
			len = zc_rand_range(&seed, 1, 40000);
		else if (p < max && zc_rand(&seed) & 1)	/* fragmented */
			len = zc_rand_range(&seed, p + 1, max);
		else
			len = zc_rand_range(&seed, 1, p < max ? p : max);
		iov.base = (uintptr_t)buf + zc_rand_range(&seed, 0, size - len);
		iov.len = len;
		ASSERT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, zc_rand(&seed)));
	}
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, size);
}

/* Sends completing one after the other, records unread: one record. */
TEST_F(tx, records_merge)
{
	struct zc_tx *t = &self->t;
	char *buf = zc_map(16 * KB);
	struct zcopy_stats st;
	unsigned int i, n = 8;
	int ret;

	if (!t->stats)
		SKIP(return, "the module has no ZCOPY_FEAT_STATS");
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(67), 16 * KB);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	for (i = 0; i < n; i++) {
		struct zcopy_iovec iov = { (uintptr_t)buf + i * 1000, 1000 };

		ASSERT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, 100 + i));
		ret = zc_wait_idle(t->zfd, 0, 10000, &st);
		ASSERT_EQ(0, ret) TH_LOG("send %u: %llu in flight", i,
					 ZC_U64(st.sends_in_flight));
	}
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	EXPECT_EQ(1, st.records_queued);
	ASSERT_LT(0, zc_log_records(t->zfd, &t->log, 5000));
	ASSERT_EQ(1, t->log.nrec);
	EXPECT_EQ(0, t->log.rec[0].seq);
	EXPECT_EQ(n, t->log.rec[0].sends);
	EXPECT_EQ(0, t->log.rec[0].offset);
	EXPECT_EQ(n * 1000, t->log.rec[0].bytes);
	EXPECT_EQ(100, t->log.rec[0].cookie);
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, 16 * KB);
}

/*
 * Sends completed before any record is read: one record, whatever order
 * they completed in. Sends that share an skb complete in reverse order.
 */
TEST_F(tx, records_merge_burst)
{
	struct zc_tx *t = &self->t;
	char *buf = zc_map(80 * KB);
	struct zcopy_stats st;
	unsigned int i, n = 20;

	if (IS_UDP(t))
		SKIP(return, "datagrams complete one by one");
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(68), 80 * KB);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	for (i = 0; i < n; i++) {
		struct zcopy_iovec iov = { (uintptr_t)buf + i * 4 * KB, 4 * KB };

		ASSERT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, 200 + i));
	}
	ASSERT_EQ(0, zc_wait_idle(t->zfd, 0, 10000, &st))
		TH_LOG("%llu sends in flight", ZC_U64(st.sends_in_flight));
	ASSERT_LT(0, zc_log_records(t->zfd, &t->log, 5000));
	EXPECT_EQ(1, t->log.nrec) TH_LOG("%u sends gave %zu records", n, t->log.nrec);
	EXPECT_EQ(0, t->log.rec[0].seq);
	EXPECT_EQ(200, t->log.rec[0].cookie);
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, 80 * KB);
}

#define HELD_JUNK	(256 * KB)

/*
 * Two loopback connections: @a, whose window 256 KiB unread close (what
 * is sent on a[0] next waits in its send queue until held_pair_drain()),
 * and @b. @junk: HELD_JUNK bytes to send and drain with. 0 or -errno.
 */
static int held_pair(int a[2], int b[2], char *junk)
{
	int ret;

	ret = zc_tcp_pair(AF_INET, 4096, &a[0], &a[1]);
	if (!ret)
		ret = zc_tcp_pair(AF_INET, 0, &b[0], &b[1]);
	if (!ret)
		ret = zc_set_buf(a[0], SO_SNDBUF, 4 << 20);
	if (!ret && send(a[0], junk, HELD_JUNK, 0) != HELD_JUNK)
		ret = -EAGAIN;
	return ret;
}

/* Read a[1] until @zfd has nothing in flight, for up to 10 s: 0 or -ETIMEDOUT. */
static int held_pair_drain(int zfd, int a[2], char *junk, struct zcopy_stats *st)
{
	int64_t deadline = zc_now_ms() + 10000;

	while (zc_wait_idle(zfd, 0, 0, st))
		if (zc_now_ms() > deadline)
			return -ETIMEDOUT;
		else if (recv(a[1], junk, HELD_JUNK, MSG_DONTWAIT) <= 0)
			zc_sleep_ms(5);
	return 0;
}

/*
 * Send 0 stays queued behind a closed window while sends 1-8, on another
 * socket, complete; then send 0 completes: the nine records merge into one,
 * as their byte ranges tile.
 */
TEST(records_merge_out_of_order)
{
	int zfd = zc_open(), a[2], b[2], i;
	char *buf = zc_map(64 * KB), *junk = calloc(1, HELD_JUNK);
	struct zcopy_completion rec[16];
	struct zcopy_stats st;
	struct zcopy_send s;
	ssize_t n;

	if (zfd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, zfd);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, junk);
	zc_fill(buf, ZC_SEED(69), 64 * KB);
	ASSERT_EQ(0, held_pair(a, b, junk));
	for (i = 0; i < 9; i++) {
		struct zcopy_iovec iov = { (uintptr_t)buf + i * 1000, 1000 };

		memset(&s, 0, sizeof(s));
		ASSERT_EQ(0, zc_send(zfd, i ? b[0] : a[0], &iov, 1, ZCOPY_SEND_DONTWAIT,
				     300 + i, &s)) TH_LOG("send %d", i);
		ASSERT_EQ(1000, s.bytes);
	}
	/* Sends 1-8 complete; send 0 cannot. */
	for (i = 0; i < 500; i++) {
		ASSERT_EQ(0, zc_stats(zfd, 0, &st));
		if (st.sends_in_flight == 1)
			break;
		zc_sleep_ms(10);
	}
	ASSERT_EQ(1, st.sends_in_flight);
	/* Let send 0 go. */
	ASSERT_EQ(0, held_pair_drain(zfd, a, junk, &st));
	ASSERT_EQ(0, st.sends_in_flight);
	n = read(zfd, rec, sizeof(rec));
	ASSERT_LT(0, n) TH_LOG("read: %s", strerror(errno));
	EXPECT_EQ(sizeof(rec[0]), n) TH_LOG("%zd records for sends completed out of order",
					    n / (ssize_t)sizeof(rec[0]));
	EXPECT_EQ(0, rec[0].seq);
	EXPECT_EQ(9, rec[0].sends);
	EXPECT_EQ(0, rec[0].offset);
	EXPECT_EQ(9000, rec[0].bytes);
	EXPECT_EQ(300, rec[0].cookie) TH_LOG("the first send's cookie");
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	close(zfd);
	free(junk);
	zc_unmap(buf, 64 * KB);
}

struct efault_reader {
	int zfd;
	char *buf;
	ssize_t ret;
	int err;
};

static void *efault_reader_main(void *arg)
{
	struct efault_reader *r = arg;

	r->ret = read(r->zfd, r->buf, 2 * sizeof(struct zcopy_completion));
	r->err = r->ret < 0 ? errno : 0;
	return NULL;
}

/*
 * A read() that fails to copy its second record puts that record back,
 * in order of sequence among those completed meanwhile. The second
 * record's place is a page under userfaultfd: the read waits there while
 * sends 0 and 2, held behind a closed window until then, complete; then
 * the page goes and the copy fails. Records of sends not in a row do not
 * merge.
 */
TEST(records_in_order_after_read_efault)
{
	struct zcopy_completion rec[8];
	struct efault_reader r = { 0 };
	size_t ps = zc_page_size();
	int a[2], b[2], i, uffd;
	char *buf, *junk, *two;
	struct zcopy_stats st;
	pthread_t th;
	ssize_t n;

	r.zfd = zc_open();
	if (r.zfd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, r.zfd);
	buf = zc_map(64 * KB);
	junk = calloc(1, HELD_JUNK);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, junk);
	zc_fill(buf, ZC_SEED(70), 64 * KB);
	ASSERT_EQ(0, held_pair(a, b, junk));

	/* Sends 0 and 2 held on a, 1 and 3 complete on b: four records. */
	for (i = 0; i < 4; i++) {
		struct zcopy_iovec iov = { (uintptr_t)buf + i * 8 * KB, 8 * KB };
		struct zcopy_send s;

		ASSERT_EQ(0, zc_send(r.zfd, i % 2 ? b[0] : a[0], &iov, 1, ZCOPY_SEND_DONTWAIT,
				     i, &s)) TH_LOG("send %d", i);
	}
	for (i = 0; i < 500; i++) {
		ASSERT_EQ(0, zc_stats(r.zfd, 0, &st));
		if (st.sends_in_flight == 2 && st.records_queued == 2)
			break;
		zc_sleep_ms(10);
	}
	ASSERT_EQ(2, st.sends_in_flight);
	ASSERT_EQ(2, st.records_queued);

	two = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	two[0] = 1;
	uffd = zc_uffd_open(two + ps, ps);
	if (uffd < 0)
		SKIP(return, "no userfaultfd: %s", strerror(-uffd));
	r.buf = two + ps - sizeof(rec[0]);
	ASSERT_EQ(0, pthread_create(&th, NULL, efault_reader_main, &r));
	ASSERT_EQ((uintptr_t)two + ps, zc_uffd_next_fault(uffd, -1))
		TH_LOG("the read did not reach its second record");

	/* Sends 0 and 2 complete while the second record is out. */
	ASSERT_EQ(0, held_pair_drain(r.zfd, a, junk, &st));
	ASSERT_EQ(0, munmap(two + ps, ps));
	close(uffd);
	pthread_join(th, NULL);
	ASSERT_EQ(sizeof(rec[0]), r.ret) TH_LOG("read: %s", strerror(r.err));
	memcpy(&rec[0], r.buf, sizeof(rec[0]));
	EXPECT_EQ(1, rec[0].seq);

	n = read(r.zfd, rec, sizeof(rec));
	ASSERT_EQ(3 * sizeof(rec[0]), n) TH_LOG("read: %zd", n);
	EXPECT_TRUE(rec[0].seq == 0 && rec[1].seq == 2 && rec[2].seq == 3)
		TH_LOG("records in the order of sequence %llu, %llu, %llu", ZC_U64(rec[0].seq),
		       ZC_U64(rec[1].seq), ZC_U64(rec[2].seq));
	munmap(two, ps);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	close(r.zfd);
	free(junk);
	zc_unmap(buf, 64 * KB);
}

struct lost_index {
	int zfd;
	struct zcopy_register *r;
	int err;
	int done;	/* an eventfd, written when the call returns */
};

static void *lost_index_main(void *arg)
{
	struct lost_index *l = arg;

	l->err = ioctl(l->zfd, ZCOPY_IOC_REGISTER, l->r) ? errno : 0;
	eventfd_write(l->done, 1);
	return NULL;
}

/*
 * One round of register_lost_index_spares_next: 1 if the buffer that @zfd
 * registered at index 0 while another REGISTER was failing is gone, 0 if
 * not; -1 if the other REGISTER's pin could not wait on userfaultfd.
 */
static int lost_index_round(struct __test_metadata *_metadata, int zfd, char *mem)
{
	struct zcopy_unregister u = { .index = 0 };
	struct zcopy_register next = { .addr = (uintptr_t)mem, .len = zc_page_size() };
	size_t ps = zc_page_size();
	struct uffdio_range range;
	struct uffdio_copy copy;
	struct lost_index l;
	pthread_t th;
	int uffd, lost;
	char *two;

	/* The argument on the first page, the buffer (never touched) on the second. */
	two = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	l = (struct lost_index){ .zfd = zfd, .r = (struct zcopy_register *)two,
				 .done = eventfd(0, EFD_CLOEXEC) };
	ASSERT_LE(0, l.done);
	*l.r = (struct zcopy_register){ .addr = (uintptr_t)two + ps, .len = ps };
	uffd = zc_uffd_open(two, 2 * ps);
	ASSERT_LE(0, uffd) TH_LOG("userfaultfd: %s", strerror(-uffd));
	ASSERT_EQ(0, pthread_create(&th, NULL, lost_index_main, &l));

	/*
	 * Pinning the buffer: the argument's page goes, to fault again. On 6.1
	 * a long-term pin may not let go of mmap_lock, so it cannot wait on
	 * userfaultfd: it fails at once.
	 */
	if (!zc_uffd_next_fault(uffd, l.done)) {
		pthread_join(th, NULL);
		ASSERT_EQ(EFAULT, l.err) TH_LOG("REGISTER neither pinned nor failed");
		lost = -1;
		goto out;
	}
	ASSERT_EQ(0, madvise(two, ps, MADV_DONTNEED));
	copy = (struct uffdio_copy){ .dst = (uintptr_t)two + ps, .src = (uintptr_t)mem,
				     .len = ps };
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_COPY, &copy));

	/* Writing the index back: it is unregistered, and taken again. */
	ASSERT_EQ((uintptr_t)two, zc_uffd_next_fault(uffd, l.done)) TH_LOG("no index written back");
	ASSERT_EQ(0, ioctl(zfd, ZCOPY_IOC_UNREGISTER, &u));
	ASSERT_EQ(0, ioctl(zfd, ZCOPY_IOC_REGISTER, &next));
	ASSERT_EQ(0, next.index);
	ASSERT_EQ(0, munmap(two, ps));
	range = (struct uffdio_range){ (uintptr_t)two, 2 * ps };
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_WAKE, &range));
	pthread_join(th, NULL);
	EXPECT_EQ(EFAULT, l.err);

	lost = ioctl(zfd, ZCOPY_IOC_UNREGISTER, &u) != 0;
out:
	close(uffd);
	close(l.done);
	munmap(two, 2 * ps);
	return lost;
}

/*
 * A REGISTER that cannot write its index back drops its buffer, and only
 * its buffer: not the one registered at the same index meanwhile, even at
 * the same address. The index's place is a page under userfaultfd, zapped
 * while the buffer is pinned; the write-back waits there while this
 * thread unregisters index 0 and registers anew (on the same CPU, so that
 * the slab hands out the memory just freed), then the page goes and the
 * write-back fails.
 */
TEST(register_lost_index_spares_next)
{
	struct zcopy_stats st;
	int zfd, i, ret, lost = 0;
	char *mem;

	zfd = zc_open();
	if (zfd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, zfd);
	i = syscall(__NR_userfaultfd, O_CLOEXEC);
	if (i < 0)
		SKIP(return, "no userfaultfd: %s", strerror(errno));
	close(i);
	ASSERT_EQ(0, zc_pin_cpu(sched_getcpu()));
	mem = zc_map(zc_page_size());
	ASSERT_NE(NULL, mem);
	memset(mem, 0x5a, zc_page_size());
	for (i = 0; i < 8; i++) {
		ret = lost_index_round(_metadata, zfd, mem);
		/* Only the first round may find it: a skip later would hide its failures. */
		if (ret < 0 && !i)
			SKIP(goto out, "a long-term pin cannot wait on userfaultfd here");
		ASSERT_LE(0, ret) TH_LOG("round %d: the pin no longer waited on userfaultfd", i);
		lost += ret;
	}
	EXPECT_EQ(0, lost) TH_LOG("%d of %d rounds lost the new buffer", lost, i);
	ASSERT_EQ(0, zc_stats(zfd, 0, &st));
	EXPECT_EQ(0, st.pages_pinned);
out:
	zc_unmap(mem, zc_page_size());
	close(zfd);
}

/*
 * The fd's ledger: vectors that share no page, so pages_pinned_total is
 * exactly the pages they span; the peak at least the largest send's.
 */
TEST_F(tx, ledger_fd)
{
	struct zc_tx *t = &self->t;
	size_t block = 4 * 4096, size = 32 * block;
	char *buf = zc_map(size);
	uint32_t pages = 0, peak = 0;
	struct zcopy_stats st;
	uint64_t seed = 71;
	unsigned int i, j, k = 0;

	if (!t->stats)
		SKIP(return, "the module has no ZCOPY_FEAT_STATS");
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(seed), size);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	for (i = 0; i < 8; i++) {
		struct zcopy_iovec iov[3];
		unsigned int n = zc_rand_range(&seed, 1, 3);
		uint32_t np;

		for (j = 0; j < n; j++, k++) {
			iov[j].base = (uintptr_t)buf + k * block + zc_rand_range(&seed, 0, 4095);
			iov[j].len = zc_rand_range(&seed, 1, 2 * 4096 + 1);
		}
		np = zc_iov_pages(iov, n, ~0ULL);
		pages += np;
		if (np > peak)
			peak = np;
		ASSERT_EQ(0, zc_tx_sendv(t, iov, n, 0, i));
	}
	ASSERT_EQ(8, t->log.nsent);
	zc_tx_verify(_metadata, t);
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	EXPECT_EQ(pages, st.pages_pinned_total);
	EXPECT_LE(peak, st.pages_pinned_peak);
	EXPECT_EQ(0, st.flags);
	EXPECT_EQ(0, st.__pad);
	zc_unmap(buf, size);
}

/* The module's totals grow by what the fd's ledger says, then idle. */
TEST_F(tx, ledger_module)
{
	struct zc_tx *t = &self->t;
	struct zcopy_stats a, b, f;
	size_t size = 256 * KB;
	char *buf = zc_map(size);
	int ret;

	if (!t->stats)
		SKIP(return, "the module has no ZCOPY_FEAT_STATS");
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(73), size);
	ret = zc_wait_idle(t->zfd, ZCOPY_STATS_MODULE, 5000, &a);
	ASSERT_EQ(0, ret) TH_LOG("module: %llu sends in flight, %llu pages pinned before the test",
				 ZC_U64(a.sends_in_flight), ZC_U64(a.pages_pinned));
	zc_tx_start(_metadata, t, false, 0, 0, false);
	ASSERT_EQ(0, zc_tx_send_buf(t, buf, size));
	ASSERT_EQ(0, zc_tx_send_buf(t, buf + 1, 3000));
	zc_tx_verify(_metadata, t);
	ret = zc_wait_idle(t->zfd, ZCOPY_STATS_MODULE, 5000, &b);
	EXPECT_EQ(0, ret) TH_LOG("module: %llu sends in flight, %llu pages pinned after",
				 ZC_U64(b.sends_in_flight), ZC_U64(b.pages_pinned));
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &f));
	EXPECT_EQ(f.sends, b.sends - a.sends);
	EXPECT_EQ(f.send_bytes, b.send_bytes - a.send_bytes);
	EXPECT_EQ(f.send_completions, b.send_completions - a.send_completions);
	EXPECT_EQ(f.tx_zerocopy_bytes, b.tx_zerocopy_bytes - a.tx_zerocopy_bytes);
	EXPECT_EQ(f.tx_copied_bytes, b.tx_copied_bytes - a.tx_copied_bytes);
	EXPECT_EQ(f.tx_copied_not_offloaded,
		  b.tx_copied_not_offloaded - a.tx_copied_not_offloaded);
	EXPECT_EQ(f.tx_copied_loopback, b.tx_copied_loopback - a.tx_copied_loopback);
	EXPECT_EQ(f.tx_copied_stack, b.tx_copied_stack - a.tx_copied_stack);
	EXPECT_EQ(f.tx_copied_small, b.tx_copied_small - a.tx_copied_small);
	EXPECT_EQ(f.pages_pinned_total, b.pages_pinned_total - a.pages_pinned_total);
	EXPECT_LE(f.pages_pinned_peak, b.pages_pinned_peak);
	EXPECT_EQ(0, b.records_queued);
	/* The module's own invariants, everything completed. */
	EXPECT_EQ(b.sends, b.send_completions);
	EXPECT_EQ(b.send_bytes, b.tx_zerocopy_bytes + b.tx_copied_bytes);
	EXPECT_EQ(b.tx_copied_bytes, b.tx_copied_not_offloaded + b.tx_copied_loopback +
		  b.tx_copied_stack + b.tx_copied_small);
	zc_unmap(buf, size);
}

/*
 * @n sends from each of two zcopy fds on @t's socket, alternately: @a[i]
 * from the first, @b[i] from the second, their bases offsets into a 64 KiB
 * buffer filled from @seed. Each fd numbers its own sends, and its records
 * cover them and say how their bytes left.
 */
static void two_fds_alternate(struct __test_metadata *_metadata, struct zc_tx *t,
			      uint64_t seed, const struct zcopy_iovec *a,
			      const struct zcopy_iovec *b, unsigned int n)
{
	struct zc_log log2 = { 0 };
	char *buf = zc_map(64 * KB);
	unsigned int i;
	int zfd2;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(seed), 64 * KB);
	zfd2 = zc_open();
	ASSERT_LE(0, zfd2);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	for (i = 0; i < n; i++) {
		struct zcopy_iovec ia = { (uintptr_t)buf + a[i].base, a[i].len };
		struct zcopy_iovec ib = { (uintptr_t)buf + b[i].base, b[i].len };
		struct zcopy_send s;

		ASSERT_EQ(0, zc_tx_send_once(t, t->zfd, t->sock, &t->log, &ia, 1, 0, i, &s));
		EXPECT_EQ(i, s.seq);
		ASSERT_EQ(0, zc_tx_send_once(t, zfd2, t->sock, &log2, &ib, 1, 0, 50 + i, &s));
		EXPECT_EQ(i, s.seq);
	}
	zc_tx_check_data(_metadata, t);
	zc_tx_check_records(_metadata, t, t->zfd, &t->log);
	zc_tx_check_records(_metadata, t, zfd2, &log2);
	close(zfd2);
	zc_log_free(&log2);
	zc_unmap(buf, 64 * KB);
}

/* Two zcopy fds on one socket: each its own seqs, offsets and records. */
TEST_F(tx, two_fds_independent)
{
	struct zcopy_iovec a[6], b[6];
	unsigned int i;

	for (i = 0; i < 6; i++) {
		a[i] = (struct zcopy_iovec){ i * 100, 1000 + i };
		b[i] = (struct zcopy_iovec){ 20000 + i * 7, 3000 - i };
	}
	two_fds_alternate(_metadata, &self->t, 79, a, b, 6);
}

/*
 * Two fds' pinned sends on one socket, alternately: sends of a few KiB
 * join the skb before them (short_sends_share_skbs), so the sends of both
 * share skbs and complete as one chain, and still each fd's records cover
 * their own sends and say how their bytes left.
 */
TEST_F(tx, two_fds_one_skb)
{
	struct zcopy_iovec a[8], b[8];
	unsigned int i;

	if (IS_UDP(&self->t))
		SKIP(return, "each datagram is an skb of its own");
	for (i = 0; i < 8; i++) {
		a[i] = (struct zcopy_iovec){ i * 4 * KB, 4 * KB };
		b[i] = (struct zcopy_iovec){ 32 * KB + i * 4 * KB + 100, 3000 };
	}
	two_fds_alternate(_metadata, &self->t, 90, a, b, 8);
}

/*
 * A packet tap on the sending device sees every packet: the stack copies
 * for it, whatever the path. The data still arrives, and the records and
 * the ledger stay consistent (which flags they get is the module's call).
 */
TEST_F(tx, packet_tap)
{
	struct zc_tx *t = &self->t;
	struct sockaddr_ll ll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = if_nametoindex(zc_path_dev(t->net.path)),
	};
	size_t size = 256 * KB, i;
	char *buf = zc_map(size), c;
	int tap;

	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(89), size);
	tap = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	ASSERT_LE(0, tap);
	ASSERT_NE(0, ll.sll_ifindex);
	ASSERT_EQ(0, bind(tap, (struct sockaddr *)&ll, sizeof(ll)));
	zc_set_buf(tap, SO_RCVBUF, 4 << 20);
	zc_tx_start(_metadata, t, false, 0, 0, false);
	ASSERT_EQ(0, zc_tx_send_buf(t, buf, size));
	EXPECT_LT(0, recv(tap, &c, 1, MSG_DONTWAIT | MSG_TRUNC)) TH_LOG("the tap saw nothing");
	for (i = 0; i < t->log.nsent; i++)
		t->log.sent[i].eflags = 0;
	zc_tx_verify(_metadata, t);
	close(tap);
	zc_unmap(buf, size);
}

/*
 * Reading records: loopback TCP over IPv4 is enough, what is read does not
 * depend on the path.
 */
struct compl_ctx {
	struct zc_tx t;
	char *buf;
};

FIXTURE(compl)
{
	struct compl_ctx c;
};

FIXTURE_SETUP(compl)
{
	const char *why = zc_tx_init(_metadata, &self->c.t, ZC_LOOPBACK, AF_INET, SOCK_STREAM);

	if (why)
		SKIP(return, "%s", why);
	ASSERT_LE(0, self->c.t.zfd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
	self->c.buf = zc_map(64 * KB);
	ASSERT_NE(NULL, self->c.buf);
	zc_fill(self->c.buf, ZC_SEED(83), 64 * KB);
	zc_tx_start(_metadata, &self->c.t, false, 0, 0, false);
}

FIXTURE_TEARDOWN(compl)
{
	zc_tx_fini(&self->c.t);
	zc_unmap(self->c.buf, 64 * KB);
}

/* One send, and wait until its record can be read. */
static void compl_send_wait(struct __test_metadata *_metadata, struct compl_ctx *c,
			    size_t len)
{
	struct zcopy_iovec iov = { (uintptr_t)c->buf, len };
	struct pollfd p = { c->t.zfd, POLLIN, 0 };

	ASSERT_EQ(0, zc_tx_sendv(&c->t, &iov, 1, 0, 0xc0ffee));
	ASSERT_EQ(1, poll(&p, 1, 10000)) TH_LOG("no record within 10 s");
	ASSERT_TRUE(p.revents & POLLIN);
}

TEST_F(compl, poll_pollin)
{
	struct pollfd p = { self->c.t.zfd, POLLIN, 0 };

	EXPECT_EQ(0, poll(&p, 1, 0)) TH_LOG("readable before any send");
	compl_send_wait(_metadata, &self->c, 1);
	ASSERT_EQ(1, zc_log_records(self->c.t.zfd, &self->c.t.log, 0));
	p.revents = 0;
	EXPECT_EQ(0, poll(&p, 1, 0)) TH_LOG("still readable after reading all");
	zc_tx_verify(_metadata, &self->c.t);
}

TEST_F(compl, read_nonblock_eagain)
{
	struct zcopy_completion r;

	ASSERT_EQ(0, fcntl(self->c.t.zfd, F_SETFL, O_NONBLOCK));
	EXPECT_EQ(-1, read(self->c.t.zfd, &r, sizeof(r)));
	EXPECT_EQ(EAGAIN, errno);
	compl_send_wait(_metadata, &self->c, 100);
	ASSERT_EQ(sizeof(r), read(self->c.t.zfd, &r, sizeof(r)));
	zc_log_add_rec(&self->c.t.log, &r);
	EXPECT_EQ(-1, read(self->c.t.zfd, &r, sizeof(r)));
	EXPECT_EQ(EAGAIN, errno);
	zc_tx_verify(_metadata, &self->c.t);
}

static void *compl_late_send(void *arg)
{
	struct compl_ctx *c = arg;
	struct zcopy_iovec iov = { (uintptr_t)c->buf, 333 };

	zc_sleep_ms(300);
	return (void *)(intptr_t)zc_tx_send_once(&c->t, c->t.zfd, c->t.sock,
						 &c->t.log, &iov, 1, 0, 5, NULL);
}

/* A blocking read waits for the record of a send made meanwhile. */
TEST_F(compl, read_blocks_until_record)
{
	struct zcopy_completion r[4];
	pthread_t th;
	int64_t t0;
	void *ret;
	ssize_t n;

	t0 = zc_now_ms();
	ASSERT_EQ(0, pthread_create(&th, NULL, compl_late_send, &self->c));
	n = read(self->c.t.zfd, r, sizeof(r));
	EXPECT_LE(250, zc_now_ms() - t0) TH_LOG("read returned before the send");
	ASSERT_EQ(0, pthread_join(th, &ret));
	ASSERT_EQ(NULL, ret);
	ASSERT_EQ(sizeof(r[0]), n);
	EXPECT_EQ(333, r[0].bytes);
	zc_log_add_rec(&self->c.t.log, &r[0]);
	zc_tx_verify(_metadata, &self->c.t);
}

/* Less than a record: EINVAL, and the record stays for the next read. */
TEST_F(compl, read_short_buffer_einval)
{
	struct zcopy_completion r[2];
	size_t sizes[] = { 0, 1, sizeof(r[0]) - 1 };
	unsigned int i;

	compl_send_wait(_metadata, &self->c, 10);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		errno = 0;
		EXPECT_EQ(-1, read(self->c.t.zfd, r, sizes[i])) TH_LOG("size %zu", sizes[i]);
		EXPECT_EQ(EINVAL, errno) TH_LOG("size %zu", sizes[i]);
	}
	ASSERT_EQ(sizeof(r[0]), read(self->c.t.zfd, r, sizeof(r)));
	zc_log_add_rec(&self->c.t.log, &r[0]);
	zc_tx_verify(_metadata, &self->c.t);
}

static void compl_alarm(int sig)
{
}

/* The size is checked before waiting: a short read does not block. */
TEST_F(compl, read_short_buffer_empty_einval)
{
	struct sigaction sa = { .sa_handler = compl_alarm };
	char c;

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	alarm(3);
	errno = 0;
	EXPECT_EQ(-1, read(self->c.t.zfd, &c, 1));
	alarm(0);
	EXPECT_EQ(EINVAL, errno) TH_LOG("%s", errno == EINTR ? "the read blocked" : "");
}

/* A buffer of one and a half records reads one. */
TEST_F(compl, read_whole_records_only)
{
	char raw[sizeof(struct zcopy_completion) * 3 / 2];
	struct zcopy_completion r;

	compl_send_wait(_metadata, &self->c, 4096);
	ASSERT_EQ(sizeof(r), read(self->c.t.zfd, raw, sizeof(raw)));
	memcpy(&r, raw, sizeof(r));
	zc_log_add_rec(&self->c.t.log, &r);
	zc_tx_verify(_metadata, &self->c.t);
}

/* A read into bad memory fails and loses no record. */
TEST_F(compl, read_efault_keeps_record)
{
	size_t ps = zc_page_size();
	struct zcopy_completion r;
	struct zcopy_stats st;
	void *bad;

	bad = mmap(NULL, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, bad);
	compl_send_wait(_metadata, &self->c, 5000);
	EXPECT_EQ(-1, read(self->c.t.zfd, bad, sizeof(r)));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, syscall(SYS_read, self->c.t.zfd, NULL, sizeof(r)));
	EXPECT_EQ(EFAULT, errno);
	if (self->c.t.stats) {
		ASSERT_EQ(0, zc_stats(self->c.t.zfd, 0, &st));
		EXPECT_EQ(1, st.records_queued);
	}
	ASSERT_EQ(sizeof(r), read(self->c.t.zfd, &r, sizeof(r)));
	zc_log_add_rec(&self->c.t.log, &r);
	zc_tx_verify(_metadata, &self->c.t);
	munmap(bad, ps);
}

/*
 * A registered buffer is the memory the application goes on writing: a
 * send from it carries what was written after it was registered, whether
 * its pages had never been touched (the shared zero page) or were a
 * private file mapping's (the page cache's). A shared read-only mapping
 * of a file carries what the file holds at each send. Before 6.2, where
 * only a writable pin follows the application's writes in a private
 * mapping, a private mapping the caller cannot write is refused.
 */
TEST_F(compl, fixed_written_after_register)
{
	struct zc_tx *t = &self->c.t;
	size_t len = 4 * zc_page_size(), i;
	char *bufs[3], *data = malloc(len), *ro;
	int mfd, idx;

	ASSERT_NE(NULL, data);
	mfd = memfd_create("zcopy-fixed", MFD_CLOEXEC);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, len));
	bufs[0] = zc_map(len);
	ASSERT_NE(NULL, bufs[0]);
	bufs[1] = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
	ASSERT_NE(MAP_FAILED, bufs[1]);
	bufs[2] = mmap(NULL, len, PROT_READ, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, bufs[2]);

	for (i = 0; i < 3; i++) {
		idx = zc_register(t->zfd, bufs[i], len);
		ASSERT_LE(0, idx) TH_LOG("ZCOPY_IOC_REGISTER of buffer %zu: %s", i,
					 strerror(-idx));
		zc_fill(data, ZC_SEED(97 + i), len);
		/* The read-only mapping is written through its file. */
		if (i < 2)
			memcpy(bufs[i], data, len);
		ASSERT_EQ(len, i < 2 ? len : pwrite(mfd, data, len, 0));
		t->fixed = idx;
		ASSERT_EQ(0, zc_tx_send_buf(t, bufs[i], len));
		t->fixed = -1;
		ASSERT_EQ(0, zc_unregister(t->zfd, idx));
	}
	if (zc_kernel_before(6, 2)) {
		ro = mmap(NULL, len, PROT_READ, MAP_PRIVATE, mfd, 0);
		ASSERT_NE(MAP_FAILED, ro);
		idx = zc_register(t->zfd, ro, len);
		EXPECT_EQ(-EFAULT, idx) TH_LOG("a read-only private mapping registered");
		if (idx >= 0)
			zc_unregister(t->zfd, idx);
		munmap(ro, len);
	}
	zc_tx_verify(_metadata, t);
	munmap(bufs[2], len);
	munmap(bufs[1], len);
	zc_unmap(bufs[0], len);
	close(mfd);
	free(data);
}

/*
 * Pinned sends of a few KiB in a row share skbs, as write()s do: TCP links
 * each into the skb before it (link_skb(), 6.10 on), and before that the
 * module joins the skb at the tail of the queue itself. Over loopback an
 * skb leaves as one segment, so eight corked 4 KiB sends leave as one, not
 * eight.
 */
TEST_F(compl, short_sends_share_skbs)
{
	struct zc_tx *t = &self->c.t;
	struct tcp_info before, after;
	socklen_t len = sizeof(before);
	int on = 1, off = 0;
	unsigned int i;

	if (zc_send_copies(4 * KB))
		SKIP(return, "copy_below copies 4 KiB sends");
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)));
	ASSERT_EQ(0, getsockopt(t->sock, IPPROTO_TCP, TCP_INFO, &before, &len));
	for (i = 0; i < 8; i++) {
		struct zcopy_iovec iov = { (uintptr_t)self->c.buf + i * 4 * KB, 4 * KB };

		ASSERT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, i));
	}
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &off, sizeof(off)));
	zc_tx_verify(_metadata, t);
	len = sizeof(after);
	ASSERT_EQ(0, getsockopt(t->sock, IPPROTO_TCP, TCP_INFO, &after, &len));
	EXPECT_GE(2, after.tcpi_data_segs_out - before.tcpi_data_segs_out)
		TH_LOG("8 sends of 4 KiB left in %u segments",
		       after.tcpi_data_segs_out - before.tcpi_data_segs_out);
}

/*
 * From 6.10 a send that TCP links into the skb of the send before it waits
 * for that send, never the other way round. Corked, a 4 KiB send and then
 * one of an MSS fill one skb, which leaves at once, and the last 4 KiB of
 * the second stay corked in the next, until TCP's probe timer sends them
 * (TCP_RTO_MIN, 200 ms, on): the first send's record comes back long
 * before, with the second still in flight. Sends that complete together
 * would queue both records at once. (Before 6.10 the module makes both
 * sends with one ubuf, so they do.)
 */
TEST_F(compl, linked_send_waits_for_the_one_before)
{
	struct zc_tx *t = &self->c.t;
	struct pollfd p = { t->zfd, POLLIN, 0 };
	struct zcopy_iovec iov[2];
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int on = 1, off = 0;
	struct zcopy_stats st;
	char *buf;

	if (zc_kernel_before(6, 10))
		SKIP(return, "before 6.10 TCP does not link sends: they share one ubuf");
	if (zc_send_copies(4 * KB))
		SKIP(return, "copy_below copies 4 KiB sends");
	ASSERT_EQ(0, getsockopt(t->sock, IPPROTO_TCP, TCP_INFO, &ti, &len));
	/* Over loopback an skb takes one MSS: no two of them fit the window's half. */
	buf = zc_map(4 * KB + ti.tcpi_snd_mss);
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(84), 4 * KB + ti.tcpi_snd_mss);
	iov[0] = (struct zcopy_iovec){ (uintptr_t)buf, 4 * KB };
	iov[1] = (struct zcopy_iovec){ (uintptr_t)buf + 4 * KB, ti.tcpi_snd_mss };

	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)));
	ASSERT_EQ(0, zc_tx_sendv(t, &iov[0], 1, 0, 1));
	ASSERT_EQ(0, zc_tx_sendv(t, &iov[1], 1, 0, 2));
	ASSERT_EQ(1, poll(&p, 1, 5000)) TH_LOG("no record within 5 s");
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	EXPECT_EQ(1, st.records_queued);
	EXPECT_EQ(1, st.sends_in_flight) TH_LOG("the second send completed with the first");
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &off, sizeof(off)));
	zc_tx_verify(_metadata, t);
	zc_unmap(buf, 4 * KB + ti.tcpi_snd_mss);
}

/*
 * The other half: a send whose bytes all went into the skb of the send
 * before it stays pinned, and in flight, while that skb is queued, though
 * no skb holds its own ubuf. Corked, two 4 KiB sends share one skb.
 */
TEST_F(compl, linked_send_held_by_the_skb_before)
{
	struct zc_tx *t = &self->c.t;
	struct zcopy_stats st0, st;
	struct zcopy_iovec iov;
	int on = 1, off = 0;
	unsigned int i;

	if (zc_send_copies(4 * KB))
		SKIP(return, "copy_below copies 4 KiB sends");
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st0));
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)));
	for (i = 0; i < 2; i++) {
		iov = (struct zcopy_iovec){ (uintptr_t)self->c.buf + i * 4 * KB, 4 * KB };
		ASSERT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, i));
	}
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	EXPECT_EQ(2, st.sends_in_flight);
	EXPECT_EQ(st0.pages_pinned + 2, st.pages_pinned);
	EXPECT_EQ(0, st.records_queued);
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &off, sizeof(off)));
	zc_tx_verify(_metadata, t);
}

/*
 * A send's ubuf takes at most 32 sends linked after it (6.10 on): 40
 * corked sends of 256 bytes, none copied (copy_below 0), fill one skb
 * with 33 sends, and the 34th starts another, which takes the rest.
 */
TEST_F(compl, successors_capped)
{
	struct zc_tx *t = &self->c.t;
	struct tcp_info before, after;
	socklen_t len = sizeof(before);
	struct zcopy_iovec iov;
	int on = 1, off = 0;
	unsigned int i;
	long saved;

	if (zc_kernel_before(6, 10))
		SKIP(return, "before 6.10 sends share skbs in chains of up to 64 KiB");
	ASSERT_EQ(0, zc_param_read("copy_below", &saved));
	ASSERT_EQ(0, zc_param_write("copy_below", 0));
	ASSERT_EQ(0, getsockopt(t->sock, IPPROTO_TCP, TCP_INFO, &before, &len));
	ASSERT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)));
	for (i = 0; i < 40; i++) {
		iov = (struct zcopy_iovec){ (uintptr_t)self->c.buf + i * 256, 256 };
		EXPECT_EQ(0, zc_tx_sendv(t, &iov, 1, 0, i));
	}
	EXPECT_EQ(0, setsockopt(t->sock, IPPROTO_TCP, TCP_CORK, &off, sizeof(off)));
	EXPECT_EQ(0, zc_param_write("copy_below", saved));
	zc_tx_verify(_metadata, t);
	len = sizeof(after);
	ASSERT_EQ(0, getsockopt(t->sock, IPPROTO_TCP, TCP_INFO, &after, &len));
	EXPECT_EQ(2, after.tcpi_data_segs_out - before.tcpi_data_segs_out);
}

struct follow_sender {
	pthread_t th;
	int zfd, sock;
	char *buf;
	size_t len;
	unsigned int sends;
	uint64_t bytes;
	int err;
};

static void *follow_sender_main(void *p)
{
	struct follow_sender *f = p;
	struct zcopy_iovec iov = { (uintptr_t)f->buf, f->len };
	struct zcopy_send out;
	unsigned int i;

	for (i = 0; i < f->sends && !f->err; i++) {
		f->err = zc_send(f->zfd, f->sock, &iov, 1, 0, i, &out);
		f->bytes += out.bytes;
	}
	return NULL;
}

/*
 * Two threads' sends on one socket, whose send buffer keeps filling: a
 * 256 KiB send that waits for room lets TCP link the other thread's 6 KiB
 * sends into its skbs (6.10 on), and must not then be linked into theirs:
 * two sends that each hold the other are never released. Every byte
 * arrives, and the fd ends with nothing in flight.
 */
FIXTURE(follow)
{
	int unused;
};

FIXTURE_SETUP(follow)
{
}

FIXTURE_TEARDOWN(follow)
{
}

TEST_F_TIMEOUT(follow, never_hold_each_other, 120)
{
	struct follow_sender f[3] = {
		{ .len = 256 * KB, .sends = 32 },
		{ .len = 40 * KB, .sends = 128 },
		{ .len = 56 * KB, .sends = 96 },
	};
	static char rbuf[64 * KB];
	uint64_t want, got = 0;
	struct zcopy_stats st;
	int zfd, cli, srv, i;
	ssize_t n;

	zfd = zc_open();
	if (zfd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, zfd);
	if (zc_send_copies(6 * KB))
		SKIP(return, "copy_below copies 6 KiB sends");
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 16 * KB, &cli, &srv));
	ASSERT_EQ(0, zc_set_buf(cli, SO_SNDBUF, 64 * KB));
	for (i = 0; i < 3; i++) {
		f[i].zfd = zfd;
		f[i].sock = cli;
		f[i].buf = zc_map(f[i].len);
		ASSERT_NE(NULL, f[i].buf);
		zc_fill(f[i].buf, ZC_SEED(90 + i), f[i].len);
		ASSERT_EQ(0, pthread_create(&f[i].th, NULL, follow_sender_main, &f[i]));
	}
	for (i = 0, want = 0; i < 3; i++)
		want += f[i].len * f[i].sends;
	while (got < want) {
		if (rt_wait_readable(srv, 1, 10000))
			break;
		n = recv(srv, rbuf, sizeof(rbuf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		got += n;
	}
	for (i = 0; i < 3; i++) {
		pthread_join(f[i].th, NULL);
		EXPECT_EQ(0, f[i].err) TH_LOG("thread %d: %s", i, strerror(-f[i].err));
		EXPECT_EQ(f[i].len * f[i].sends, f[i].bytes);
	}
	EXPECT_EQ(want, got);
	EXPECT_EQ(0, zc_wait_idle(zfd, 0, 10000, &st))
		TH_LOG("%llu sends still in flight, %llu pages pinned",
		       ZC_U64(st.sends_in_flight), ZC_U64(st.pages_pinned));
	for (i = 0; i < 3; i++)
		zc_unmap(f[i].buf, f[i].len);
	close(cli);
	close(srv);
	close(zfd);
}

/*
 * MTU probes (net.ipv4.tcp_mtu_probing): from 6.5 TCP builds a probe from
 * the pages of the skbs at the head of its queue, and frees those skbs, so
 * their sends would complete while the probe still carries the pages.
 * Every buffer is overwritten as soon as the records are in, and the
 * receiver, which read nothing until then, must still get what was sent:
 * over veth it gets the probe's very pages. On 6.5 and later the module
 * copies such sends (ZCOPY_COPIED_MTU_PROBING), pinning nothing; 6.1
 * probes by copying, and its sends leave as usual. With 1, sockets probe
 * only after a black hole, which may come later: their sends are copied
 * all the same. A socket that probes keeps probing when the sysctl is
 * cleared, and its sends are still copied.
 */
enum mtu_probe_send { MTU_PROBE_PINNED, MTU_PROBE_FIXED, MTU_PROBE_BATCH };

FIXTURE(mtu_probe)
{
	struct zc_tx t;
	long saved;	/* >= 0: restore at teardown */
};

FIXTURE_VARIANT(mtu_probe)
{
	enum zc_path path;
	long mode;
	enum mtu_probe_send send;
	bool cleared;	/* the sysctl is cleared once connected */
};

FIXTURE_VARIANT_ADD(mtu_probe, veth_always) { .path = ZC_VETH, .mode = 2 };
FIXTURE_VARIANT_ADD(mtu_probe, veth_always_fixed) {
	.path = ZC_VETH, .mode = 2, .send = MTU_PROBE_FIXED,
};
FIXTURE_VARIANT_ADD(mtu_probe, veth_always_batch) {
	.path = ZC_VETH, .mode = 2, .send = MTU_PROBE_BATCH,
};
FIXTURE_VARIANT_ADD(mtu_probe, veth_on_black_hole) { .path = ZC_VETH, .mode = 1 };
FIXTURE_VARIANT_ADD(mtu_probe, veth_cleared_after_connect) {
	.path = ZC_VETH, .mode = 2, .cleared = true,
};
FIXTURE_VARIANT_ADD(mtu_probe, nic_always) { .path = ZC_NIC, .mode = 2 };

FIXTURE_SETUP(mtu_probe)
{
	const char *why = zc_tx_init(_metadata, &self->t, variant->path, AF_INET, SOCK_STREAM);

	self->saved = -1;
	if (why)
		SKIP(return, "%s", why);
	ASSERT_LE(0, self->t.zfd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
	ASSERT_EQ(0, zc_mtu_probing_read(&self->saved));
	ASSERT_EQ(0, zc_mtu_probing_write(variant->mode));
}

FIXTURE_TEARDOWN(mtu_probe)
{
	zc_tx_fini(&self->t);
	if (self->saved >= 0)
		zc_mtu_probing_write(self->saved);
}

#define MTU_PROBE_SENDS	64
#define MTU_PROBE_CHUNK	(16 * KB)

TEST_F_TIMEOUT(mtu_probe, rewrite_after_record, 120)
{
	const size_t total = MTU_PROBE_SENDS * MTU_PROBE_CHUNK;
	struct zcopy_iovec iov[MTU_PROBE_SENDS];
	struct zc_tx *t = &self->t;
	struct zcopy_stats st0, st;
	long long probes;
	bool copies;
	char *buf;
	int idx = -1;
	size_t i;

	buf = zc_map(total);
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(95), total);
	for (i = 0; i < MTU_PROBE_SENDS; i++)
		iov[i] = (struct zcopy_iovec){ (uintptr_t)buf + i * MTU_PROBE_CHUNK,
					       MTU_PROBE_CHUNK };
	probes = zc_tcp_mtu_probes();
	zc_tx_start(_metadata, t, true, 4 * MB, 0, false);
	if (variant->cleared)
		ASSERT_EQ(0, zc_mtu_probing_write(0));
	if (variant->send == MTU_PROBE_FIXED) {
		idx = zc_register(t->zfd, buf, total);
		ASSERT_LE(0, idx) TH_LOG("ZCOPY_IOC_REGISTER: %s", strerror(-idx));
		t->fixed = idx;
	}
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st0));
	if (variant->send == MTU_PROBE_BATCH) {
		ASSERT_EQ(0, zc_tx_send_batch(t, iov, NULL, MTU_PROBE_SENDS, 16));
	} else {
		for (i = 0; i < MTU_PROBE_SENDS; i++)
			ASSERT_EQ(0, zc_tx_sendv(t, &iov[i], 1, 0, i));
	}
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	copies = !zc_kernel_before(6, 5);
	if (copies)
		EXPECT_EQ(st0.pages_pinned_total, st.pages_pinned_total)
			TH_LOG("sends that are copied pinned pages");
	/* The helpers go by the sysctl, which no longer says so. */
	for (i = 0; variant->cleared && i < t->log.nsent; i++)
		t->log.sent[i].eflags = copies ? ZCOPY_COMPL_COPIED | ZCOPY_COPIED_MTU_PROBING : 0;
	ASSERT_EQ(0, zc_collect(t->zfd, &t->log, 20000));
	memset(buf, 0xee, total);
	ASSERT_EQ(0, zc_rx_release(&t->rx));
	t->fixed = -1;
	if (idx >= 0)
		ASSERT_EQ(0, zc_unregister(t->zfd, idx));
	zc_tx_verify(_metadata, t);
	/* Counted once the receiver has everything: probes ended by then. */
	if (variant->mode == 2)
		EXPECT_LT(0, zc_tcp_mtu_probes() - probes)
			TH_LOG("TCP sent no MTU probe: the test proves nothing");
	zc_unmap(buf, total);
}

/*
 * Records that cannot merge, read one at a time, then the rest at once:
 * over IPv6 loopback, UDP datagrams alternately within the MTU (copied:
 * LOOPBACK) and past it (fragmented: NOT_OFFLOADED).
 */
TEST(read_records_one_at_a_time)
{
	size_t big = zc_udp_mtu_payload(&(struct zc_net){ ZC_LOOPBACK, AF_INET6, SOCK_DGRAM }) + 12;
	struct zcopy_completion r[10];
	struct zcopy_stats st;
	unsigned int i, n = 6;
	const char *why;
	struct zc_tx t;
	char *buf;

	why = zc_tx_init(_metadata, &t, ZC_LOOPBACK, AF_INET6, SOCK_DGRAM);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_LE(0, t.zfd);
	if (!t.stats)
		SKIP(return, "the module has no ZCOPY_FEAT_STATS");
	ASSERT_GE(zc_udp_max(AF_INET6), big);
	buf = zc_map(big);
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(91), big);
	zc_tx_start(_metadata, &t, false, 0, 0, false);
	for (i = 0; i < n; i++) {
		struct zcopy_iovec iov = { (uintptr_t)buf, i & 1 ? big : 1000 };

		ASSERT_EQ(0, zc_tx_sendv(&t, &iov, 1, 0, i));
	}
	ASSERT_EQ(0, zc_wait_idle(t.zfd, 0, 5000, &st));
	ASSERT_EQ(n, st.records_queued) TH_LOG("records of different flags merged?");
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(sizeof(r[0]), read(t.zfd, r, sizeof(r[0]))) TH_LOG("read %u", i);
		zc_log_add_rec(&t.log, &r[0]);
	}
	ASSERT_EQ(0, zc_stats(t.zfd, 0, &st));
	EXPECT_EQ(n - 3, st.records_queued);
	ASSERT_EQ((n - 3) * sizeof(r[0]), read(t.zfd, r, sizeof(r)));
	for (i = 0; i < n - 3; i++)
		zc_log_add_rec(&t.log, &r[i]);
	zc_tx_verify(_metadata, &t);
	zc_tx_fini(&t);
	zc_unmap(buf, big);
}

TEST_HARNESS_MAIN
