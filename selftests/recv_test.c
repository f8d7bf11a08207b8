// SPDX-License-Identifier: GPL-2.0
/*
 * The receive area: mmap(ZCOPY_MMAP_RECV), ZCOPY_IOC_RECV and
 * ZCOPY_IOC_RELEASE. Every byte received is checked against a pattern
 * derived from its stream offset, with every descriptor's layout; the
 * ledger must agree with what the descriptors said.
 *
 *  - rx:     the area and the ioctls over a loopback connection of
 *            ordinary send() data (copied): every error, blocking,
 *            timeouts, EOF, resets, signals, UDP;
 *  - mapped: pool sends by page reference over loopback with a
 *            page-multiple MSS, so pages are mapped: read-only, the
 *            sender's copy-on-write, what closing and exiting leave;
 *  - e2e:    megabytes over loopback, veth and e1000e, IPv4 and IPv6,
 *            with the share of mapped bytes each path must reach.
 */
#include <linux/bpf.h>
#include <linux/capability.h>
#include <pthread.h>
#include <linux/tls.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <linux/userfaultfd.h>

#include "kselftest_harness.h"
#include "recv_test_util.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define RX_AREA_PAGES	16

static const char *errno_str(int err)
{
	return err ? strerror(err) : "success";
}

/* ---- rx: one zcopy fd, a loopback TCP connection of send() data ---- */

FIXTURE(rx)
{
	int zfd;
	size_t ps;
	uint8_t *area;
	size_t area_pages;
	int cli;		/* sends */
	int srv;		/* receives through zfd */
	struct zcopy_stats base;	/* the module's, before the test */
	struct rt_rx rx;
};

FIXTURE_SETUP(rx)
{
	self->cli = -1;
	self->srv = -1;
	self->area = NULL;
	self->ps = zc_page_size();
	signal(SIGPIPE, SIG_IGN);
	self->zfd = zc_open();
	if (self->zfd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, self->zfd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
	if (!(zc_features(self->zfd) & ZCOPY_FEAT_RECV))
		SKIP(return, "the module has no ZCOPY_FEAT_RECV");
	/* Leftovers of an earlier test (its slots and sends going) settle first. */
	zc_wait_idle(self->zfd, ZCOPY_STATS_MODULE, 5000, NULL);
	ASSERT_EQ(0, zc_stats(self->zfd, ZCOPY_STATS_MODULE, &self->base));
}

/* Everything closed, the module holds no more receive slots than before. */
FIXTURE_TEARDOWN(rx)
{
	struct zcopy_stats st;
	int fd;

	rt_rx_free(&self->rx);
	if (self->cli >= 0)
		close(self->cli);
	if (self->srv >= 0)
		close(self->srv);
	if (self->area)
		munmap(self->area, self->area_pages * self->ps);
	if (self->zfd >= 0)
		close(self->zfd);
	fd = zc_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, zc_stats(fd, ZCOPY_STATS_MODULE, &st));
	close(fd);
	EXPECT_EQ(self->base.rx_slots_used, st.rx_slots_used)
		TH_LOG("module-wide rx_slots_used %llu after the test, %llu before",
		       ZC_U64(st.rx_slots_used), ZC_U64(self->base.rx_slots_used));
}

/* The fixture's data, for helpers. */
typedef FIXTURE_DATA(rx) rx_self;

/* Map a @pages area for self->zfd; rx receives from self->srv into it. */
static void rx_map(struct __test_metadata *_metadata, rx_self *self, size_t pages)
{
	void *p = rt_mmap_area(self->zfd, pages, PROT_READ);

	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap of a %zu-page receive area: %s", pages,
					strerror(errno));
	self->area = p;
	self->area_pages = pages;
	rt_rx_free(&self->rx);
	ASSERT_EQ(0, rt_rx_init(&self->rx, self->zfd, self->srv, false, p, pages));
}

/* A loopback TCP connection of @family and a @pages area. */
static void rx_start(struct __test_metadata *_metadata, rx_self *self, int family,
		     size_t pages)
{
	int ret = zc_tcp_pair(family, 0, &self->cli, &self->srv);

	ASSERT_EQ(0, ret) TH_LOG("loopback TCP connection: %s", strerror(-ret));
	rx_map(_metadata, self, pages);
}

/* Stream bytes [@off, @off + @len) from cli, there to be read at srv. */
static void rx_send(struct __test_metadata *_metadata, rx_self *self,
		    uint64_t off, size_t len)
{
	ASSERT_EQ(0, rt_write_pattern(self->cli, off, len));
	ASSERT_EQ(0, rt_wait_readable(self->srv, len, 5000))
		TH_LOG("%zu bytes written did not arrive", len);
}

static struct zcopy_stats fd_stats(struct __test_metadata *_metadata, int zfd)
{
	struct zcopy_stats st;

	EXPECT_EQ(0, zc_stats(zfd, 0, &st)) TH_LOG("ZCOPY_IOC_STATS: %s", strerror(errno));
	return st;
}

/* The fd's ledger agrees with every descriptor rx was given. */
static void check_rx_ledger(struct __test_metadata *_metadata, struct rt_rx *rx)
{
	struct zcopy_stats st = fd_stats(_metadata, rx->zfd);

	EXPECT_EQ(rx->receives, st.receives);
	EXPECT_EQ(rx->mapped, st.rx_bytes_mapped);
	EXPECT_EQ(rx->copied, st.rx_bytes_copied);
	EXPECT_EQ(rx->nslots, st.rx_slots_used);
}

/* One receive through rx that must succeed and follow every rule. */
#define RX_ONCE(rx, ndesc, flags, timeout, max)					\
	do {									\
		int __r = rt_rx_once(rx, ndesc, flags, timeout, max, false);	\
		ASSERT_EQ(0, __r) TH_LOG("ZCOPY_IOC_RECV: %s", strerror(-__r));	\
		ASSERT_FALSE((rx)->bad) TH_LOG("%s", (rx)->msg);		\
	} while (0)

/* Receive all that was sent (stream bytes up to @until), holding the slots. */
#define RX_UNTIL(rx, until)							\
	do {									\
		int __r = rt_rx_until(rx, until, ZCOPY_MAX_RX_DESC, 5000, false);	\
		ASSERT_EQ(0, __r) TH_LOG("receiving up to byte %llu: %s at %llu",	\
					 ZC_U64(until), strerror(-__r),		\
					 ZC_U64((rx)->off));			\
		ASSERT_FALSE((rx)->bad) TH_LOG("%s", (rx)->msg);		\
	} while (0)

/* ---- the area: mmap, mprotect, munmap, mremap, fork ---- */

TEST_F(rx, mmap_writable_eperm)
{
	struct zcopy_rx_desc d;
	struct zcopy_recv r;
	void *p;

	p = rt_mmap_area(self->zfd, 4, PROT_READ | PROT_WRITE);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno) TH_LOG("PROT_READ | PROT_WRITE: %s", strerror(errno));
	p = rt_mmap_area(self->zfd, 4, PROT_WRITE);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno) TH_LOG("PROT_WRITE: %s", strerror(errno));
	/* A refused mmap makes no area. */
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &self->cli, &self->srv));
	EXPECT_EQ(-ENXIO, zc_recv(self->zfd, self->srv, &d, 1, ZCOPY_RECV_DONTWAIT, 0, &r));
	/* Nor does it size one: a read-only mmap of another size works. */
	p = rt_mmap_area(self->zfd, 8, PROT_READ);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("read-only mmap after refused ones: %s", strerror(errno));
	munmap(p, 8 * self->ps);
}

TEST_F(rx, mmap_exec_eperm)
{
	void *p = rt_mmap_area(self->zfd, 4, PROT_READ | PROT_EXEC);

	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno) TH_LOG("PROT_READ | PROT_EXEC: %s", strerror(errno));
	p = rt_mmap_area(self->zfd, 4, PROT_READ | PROT_WRITE | PROT_EXEC);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno) TH_LOG("PROT_READ | PROT_WRITE | PROT_EXEC: %s", strerror(errno));
}

TEST_F(rx, mprotect_cannot_add_write_or_exec)
{
	rx_start(_metadata, self, AF_INET, 4);
	EXPECT_EQ(-1, mprotect(self->area, 4 * self->ps, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno) TH_LOG("mprotect(PROT_WRITE): %s", strerror(errno));
	EXPECT_EQ(-1, mprotect(self->area, self->ps, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno) TH_LOG("mprotect(PROT_WRITE) of one page: %s", strerror(errno));
	EXPECT_EQ(-1, mprotect(self->area, 4 * self->ps, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno) TH_LOG("mprotect(PROT_EXEC): %s", strerror(errno));
	/* Taking away and giving back read is allowed, and data still shows. */
	rx_send(_metadata, self, 0, 100);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(0, mprotect(self->area, 4 * self->ps, PROT_NONE));
	EXPECT_EQ(0, mprotect(self->area, 4 * self->ps, PROT_READ));
	EXPECT_EQ(0, rt_rx_recheck(&self->rx, self->area)) TH_LOG("%s", self->rx.msg);
}

TEST_F(rx, one_mapping_at_a_time)
{
	void *p;

	rx_start(_metadata, self, AF_INET, 4);
	p = rt_mmap_area(self->zfd, 4, PROT_READ);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno) TH_LOG("a second mapping, same size: %s", strerror(errno));
	p = rt_mmap_area(self->zfd, 8, PROT_READ);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno) TH_LOG("a second mapping, larger: %s", strerror(errno));
	p = rt_mmap_area(self->zfd, 2, PROT_READ);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno) TH_LOG("a second mapping, smaller: %s", strerror(errno));

	/* Unmapped, the area keeps its size: only that size maps again. */
	ASSERT_EQ(0, munmap(self->area, 4 * self->ps));
	self->area = NULL;
	p = rt_mmap_area(self->zfd, 8, PROT_READ);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno) TH_LOG("mapped again, another size: %s", strerror(errno));
	rx_map(_metadata, self, 4);
	rx_send(_metadata, self, 0, 3000);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(3000, self->rx.last_bytes);
}

TEST_F(rx, partial_munmap_einval)
{
	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 2 * self->ps);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(-1, munmap(self->area, self->ps));
	EXPECT_EQ(EINVAL, errno) TH_LOG("munmap of the first page: %s", strerror(errno));
	EXPECT_EQ(-1, munmap(self->area + 3 * self->ps, self->ps));
	EXPECT_EQ(EINVAL, errno) TH_LOG("munmap of the last page: %s", strerror(errno));
	EXPECT_EQ(-1, munmap(self->area + self->ps, 2 * self->ps));
	EXPECT_EQ(EINVAL, errno) TH_LOG("munmap of the middle: %s", strerror(errno));
	/* Still whole, still working. */
	EXPECT_EQ(0, rt_rx_recheck(&self->rx, self->area)) TH_LOG("%s", self->rx.msg);
	rx_send(_metadata, self, 2 * self->ps, 100);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(100, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

TEST_F(rx, max_recv_pages_param)
{
	int fd2 = zc_open(), e_over, e_at, e_default;
	long saved = -1;
	void *p;

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, zc_param_read("max_recv_pages", &saved));
	EXPECT_EQ(65536, saved) TH_LOG("the default max_recv_pages");
	/* One page over the default: refused before anything is allocated. */
	p = rt_mmap_area(self->zfd, saved + 1, PROT_READ);
	e_default = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED)
		munmap(p, (saved + 1) * self->ps);

	ASSERT_EQ(0, zc_param_write("max_recv_pages", 8));
	p = rt_mmap_area(self->zfd, 9, PROT_READ);
	e_over = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED)
		munmap(p, 9 * self->ps);
	p = rt_mmap_area(fd2, 8, PROT_READ);
	e_at = p == MAP_FAILED ? errno : 0;
	ASSERT_EQ(0, zc_param_write("max_recv_pages", saved));
	if (p != MAP_FAILED)
		munmap(p, 8 * self->ps);
	close(fd2);

	EXPECT_EQ(EINVAL, e_default) TH_LOG("%ld pages, max_recv_pages %ld: %s", saved + 1,
					    saved, errno_str(e_default));
	EXPECT_EQ(EINVAL, e_over) TH_LOG("9 pages, max_recv_pages 8: %s", errno_str(e_over));
	EXPECT_EQ(0, e_at) TH_LOG("8 pages, max_recv_pages 8: %s", errno_str(e_at));
}

/* As nobody, RLIMIT_MEMLOCK of 16 pages: an 8-page area fits, 32 do not. */
static void memlock_child(int wfd)
{
	struct rlimit rl = { 16 * zc_page_size(), 16 * zc_page_size() };
	int fd1 = zc_open(), fd2 = zc_open(), res[2];
	void *p;

	if (fd1 < 0 || fd2 < 0 || setrlimit(RLIMIT_MEMLOCK, &rl))
		_exit(2);
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		_exit(3);
	p = rt_mmap_area(fd1, 32, PROT_READ);
	res[0] = p == MAP_FAILED ? errno : 0;
	p = rt_mmap_area(fd2, 8, PROT_READ);
	res[1] = p == MAP_FAILED ? errno : 0;
	if (write(wfd, res, sizeof(res)) != sizeof(res))
		_exit(4);
	_exit(0);
}

TEST_F(rx, memlock_limit_unprivileged)
{
	int pfd[2], res[2] = { -1, -1 }, status;
	pid_t pid;

	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		memlock_child(pfd[1]);
	close(pfd[1]);
	EXPECT_EQ(sizeof(res), read(pfd[0], res, sizeof(res)));
	close(pfd[0]);
	status = zc_wait_child(pid, 10000);
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("child status %#x", status);
	EXPECT_TRUE(res[0] == EAGAIN || res[0] == ENOBUFS)
		TH_LOG("a 32-page area over a 16-page RLIMIT_MEMLOCK: %s", errno_str(res[0]));
	EXPECT_EQ(0, res[1]) TH_LOG("an 8-page area within a 16-page RLIMIT_MEMLOCK: %s",
				    errno_str(res[1]));
}

TEST_F(rx, empty_slot_faults)
{
	void *addr = NULL;
	int code = 0, sig;

	rx_start(_metadata, self, AF_INET, 4);
	/* Never received into: no page to show. */
	sig = rt_probe(self->area + 2 * self->ps, false, &code, &addr);
	EXPECT_TRUE(sig == SIGBUS || sig == SIGSEGV)
		TH_LOG("a read of an empty slot: signal %d", sig);
	EXPECT_EQ((void *)(self->area + 2 * self->ps), addr);
}

/*
 * A released slot of copied bytes is unmapped, its page kept as a spare,
 * and the next copy fills it (the last given back goes first): it reads
 * the new bytes and zeros past them (rt_rx_once() checks both), not the
 * old ones. Given back, it is as any free slot: neither releasable nor
 * forwardable, nor readable, nor mapped again by a fault.
 */
TEST_F(rx, released_copied_slot_is_reused)
{
	struct zcopy_fwd_piece p = { .len = 1 };
	void *addr = NULL;
	int code = 0, sig;
	uint64_t off;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 3000);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	ASSERT_EQ(1, self->rx.nslots);
	off = self->rx.slots[0].area_off;
	ASSERT_EQ(0, rt_rx_release_all(&self->rx));
	EXPECT_EQ(-ENOENT, zc_release(self->zfd, &off, 1));
	p.offset = off;
	EXPECT_EQ(-ENOENT, zc_forward(self->zfd, self->cli, &p, 1, 0, 0, NULL));
	/* Nothing else can take the page while it waits for a copy. */
	sig = rt_probe(self->area + off, false, &code, &addr);
	EXPECT_TRUE(sig == SIGBUS || sig == SIGSEGV)
		TH_LOG("a read of a released copied slot: signal %d", sig);
	ASSERT_EQ(0, madvise(self->area + off, self->ps, MADV_DONTNEED));
	sig = rt_probe(self->area + off, false, &code, &addr);
	EXPECT_TRUE(sig == SIGBUS || sig == SIGSEGV)
		TH_LOG("a read of a released copied slot, zapped: signal %d", sig);

	rx_send(_metadata, self, 3000, 1000);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	ASSERT_EQ(1, self->rx.nslots);
	EXPECT_EQ(off, self->rx.slots[0].area_off) TH_LOG("the spare was not reused");
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
	EXPECT_EQ(0, fd_stats(_metadata, self->zfd).rx_slots_used);
}

/*
 * Advice that only drops or reads pages works on part of the area, and the
 * slot reads the same after it; advice that changes the mapping's flags
 * would split it, and fails with EINVAL on part of it.
 */
TEST_F(rx, partial_advice)
{
	static const struct {
		int how;
		const char *name;
		int err;
	} advice[] = {
		{ MADV_COLD, "MADV_COLD", 0 },
		{ MADV_PAGEOUT, "MADV_PAGEOUT", 0 },
		{ MADV_WILLNEED, "MADV_WILLNEED", 0 },
		{ MADV_DONTNEED, "MADV_DONTNEED (faulted back in)", 0 },
		{ MADV_RANDOM, "MADV_RANDOM (a flag of the mapping)", EINVAL },
		{ MADV_SEQUENTIAL, "MADV_SEQUENTIAL (a flag of the mapping)", EINVAL },
	};
	struct rt_slot *slot;
	unsigned int i;
	int err;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 3000);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	ASSERT_EQ(1, self->rx.nslots);
	slot = &self->rx.slots[0];
	for (i = 0; i < ARRAY_SIZE(advice); i++) {
		err = madvise(self->area + slot->area_off, self->ps, advice[i].how) ? errno : 0;
		EXPECT_EQ(advice[i].err, err) TH_LOG("%s: %s", advice[i].name, errno_str(err));
		EXPECT_EQ(slot->len, zc_check(self->area + slot->area_off, slot->stream_off,
					      slot->len)) TH_LOG("after %s", advice[i].name);
	}
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
	EXPECT_EQ(0, fd_stats(_metadata, self->zfd).rx_slots_used);
}

/*
 * A spare's page that was taken from the mapping (vmsplice(), then splice()
 * to another connection) and received there, mapped, is that receiver's
 * data, which must never change: the next copy goes to another page.
 */
TEST_F(rx, spare_taken_elsewhere_is_not_rewritten)
{
	struct zcopy_rx_desc got[4] = { { 0 } };
	struct zcopy_recv r = { 0 };
	int pfd[2], cli2 = -1, srv2 = -1, zfd2;
	uint8_t *area2, *seen;
	struct iovec iov;
	uint64_t off;
	size_t ps = self->ps;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 3000);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	ASSERT_EQ(1, self->rx.nslots);
	off = self->rx.slots[0].area_off;

	ASSERT_EQ(0, pipe(pfd));
	iov = (struct iovec){ self->area + off, ps };
	ASSERT_EQ((ssize_t)ps, vmsplice(pfd[1], &iov, 1, 0)) TH_LOG("vmsplice: %s", strerror(errno));
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &cli2, &srv2));
	ASSERT_EQ((ssize_t)ps, splice(pfd[0], NULL, cli2, NULL, ps, 0));
	ASSERT_EQ(0, rt_wait_readable(srv2, ps, 5000));
	zfd2 = zc_open();
	ASSERT_LE(0, zfd2);
	area2 = rt_mmap_area(zfd2, 4, PROT_READ);
	ASSERT_NE(MAP_FAILED, area2);
	r.sockfd = srv2;
	r.flags = ZCOPY_RECV_DONTWAIT;
	r.desc = (uintptr_t)got;
	r.desc_count = 4;
	ASSERT_EQ(0, ioctl(zfd2, ZCOPY_IOC_RECV, &r)) TH_LOG("ZCOPY_IOC_RECV: %s", strerror(errno));
	ASSERT_EQ(ps, r.bytes);
	/* A whole page at offset 0, from the area: nothing stops it being mapped. */
	EXPECT_TRUE(got[0].flags & ZCOPY_RX_MAPPED)
		TH_LOG("the spliced page was copied, not mapped (flags %#x)", got[0].flags);
	if (!(got[0].flags & ZCOPY_RX_MAPPED))
		goto out;
	seen = malloc(ps);
	ASSERT_NE(NULL, seen);
	memcpy(seen, area2 + got[0].offset, ps);

	/* The slot goes back a spare; the next copy must not land in its page. */
	ASSERT_EQ(0, rt_rx_release_all(&self->rx));
	rx_send(_metadata, self, 3000, 2000);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(0, memcmp(seen, area2 + got[0].offset, ps))
		TH_LOG("another receiver's mapped data changed under it");
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
	free(seen);
out:
	munmap(area2, 4 * ps);
	close(zfd2);
	close(cli2);
	close(srv2);
	close(pfd[0]);
	close(pfd[1]);
}

struct touch_state {
	uint8_t *area;
	size_t len;
	bool stop;
	uint64_t touches;
};

/* Unmap the area and touch it again, as fast as it goes. */
static void *touch_area(void *arg)
{
	struct touch_state *t = arg;
	void *addr;
	int code;

	while (!__atomic_load_n(&t->stop, __ATOMIC_RELAXED)) {
		madvise(t->area, t->len, MADV_DONTNEED);
		rt_probe(t->area, false, &code, &addr);
		t->touches++;
	}
	return NULL;
}

/*
 * A fault of slot 0 racing its release and its reuse: what a receive's
 * descriptor shows is that receive's data, never an older one's, whether
 * the slot's page was dropped and replaced or kept and filled again.
 */
TEST_F_TIMEOUT(rx, fault_racing_release, 300)
{
	struct touch_state t = { 0 };
	struct zcopy_rx_desc d;
	struct zcopy_recv r;
	uint64_t g, stale = 0, first = 0, seen = 0;
	pthread_t th;

	rx_start(_metadata, self, AF_INET, 1);
	t.area = self->area;
	t.len = self->ps;
	ASSERT_EQ(0, pthread_create(&th, NULL, touch_area, &t));
	for (g = 1; g <= 3000; g++) {
		uint64_t off = 0, v;

		ASSERT_EQ(8, send(self->cli, &g, 8, 0));
		ASSERT_EQ(0, rt_wait_readable(self->srv, 8, 5000));
		ASSERT_EQ(0, zc_recv(self->zfd, self->srv, &d, 1, 0, 5000, &r));
		ASSERT_EQ(8, r.bytes);
		ASSERT_EQ(0, d.offset);
		v = __atomic_load_n((uint64_t *)self->area, __ATOMIC_RELAXED);
		if (v != g && !stale++) {
			first = g;
			seen = v;
		}
		ASSERT_EQ(0, zc_release(self->zfd, &off, 1));
	}
	__atomic_store_n(&t.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	TH_LOG("%llu receives, %llu touches", ZC_U64(g - 1), ZC_U64(t.touches));
	EXPECT_EQ(0, stale) TH_LOG("%llu receives read old data: the first, receive %llu, read %llu",
				   ZC_U64(stale), ZC_U64(first), ZC_U64(seen));
}

TEST_F(rx, madvise_dontneed_faults_back_in)
{
	rx_start(_metadata, self, AF_INET, 8);
	rx_send(_metadata, self, 0, 5 * self->ps + 123);
	RX_UNTIL(&self->rx, 5 * self->ps + 123);
	ASSERT_EQ(0, madvise(self->area, 8 * self->ps, MADV_DONTNEED));
	/* The slots still hold their pages: ->fault maps them again. */
	EXPECT_EQ(0, rt_rx_recheck(&self->rx, self->area)) TH_LOG("%s", self->rx.msg);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, mremap_moves_area)
{
	size_t len = 8 * self->ps;
	void *addr = NULL, *to, *p;
	int code = 0;

	rx_start(_metadata, self, AF_INET, 8);
	rx_send(_metadata, self, 0, 2 * self->ps + 10);
	RX_ONCE(&self->rx, 8, ZCOPY_RECV_DONTWAIT, 0, 0);
	to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, to);
	p = mremap(self->area, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	ASSERT_EQ(to, p) TH_LOG("mremap: %s", strerror(errno));
	EXPECT_NE(0, rt_probe(self->area, false, &code, &addr)) TH_LOG("the old address still maps");
	self->area = p;
	self->rx.area = p;
	/* What was received shows at the new address; new data lands there. */
	EXPECT_EQ(0, rt_rx_recheck(&self->rx, self->area)) TH_LOG("%s", self->rx.msg);
	rx_send(_metadata, self, 2 * self->ps + 10, 3 * self->ps);
	RX_UNTIL(&self->rx, 5 * self->ps + 10);
	EXPECT_EQ(0, rt_rx_recheck(&self->rx, self->area)) TH_LOG("%s", self->rx.msg);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * The child of a fork() has no area (not inherited), and a receive
 * through the inherited fd fails there without taking the data.
 */
TEST_F(rx, fork_child_has_no_area)
{
	int pfd[2], res[3] = { -1, -1, -1 }, status;
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	uint64_t off;
	pid_t pid;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 1000);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	off = self->rx.slots[0].area_off;
	rx_send(_metadata, self, 1000, 500);

	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		void *addr = NULL;
		int code = 0;

		res[0] = rt_probe(self->area + off, false, &code, &addr);
		res[1] = code;
		res[2] = -zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r);
		if (write(pfd[1], res, sizeof(res)) != sizeof(res))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	EXPECT_EQ(sizeof(res), read(pfd[0], res, sizeof(res)));
	close(pfd[0]);
	status = zc_wait_child(pid, 10000);
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("child status %#x", status);
	EXPECT_EQ(SIGSEGV, res[0]) TH_LOG("the child reading the area's address: signal %d",
					  res[0]);
	EXPECT_EQ(SEGV_MAPERR, res[1]) TH_LOG("si_code %d: the address is mapped in the child",
					      res[1]);
	EXPECT_EQ(ENXIO, res[2]) TH_LOG("a receive in the child: %s", errno_str(res[2]));
	/* The parent's slot is intact, and the 500 bytes are still queued. */
	EXPECT_EQ(0, rt_rx_recheck(&self->rx, self->area)) TH_LOG("%s", self->rx.msg);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(500, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * Not inherited by fork(), one mapping at a time: MADV_DOFORK must not
 * undo that (it is refused, or the child still gets no mapping).
 */
/*
 * The area is not inherited by fork(), unless the application asks with
 * MADV_DOFORK: the child then sees the same slots, still read-only.
 */
TEST_F(rx, madv_dofork_shares_area_read_only)
{
	int pfd[2], res[2] = { -1, -1 }, status, adv;
	uint64_t off;
	pid_t pid;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 1000);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	off = self->rx.slots[0].area_off;
	adv = madvise(self->area, 4 * self->ps, MADV_DOFORK) ? errno : 0;
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		void *addr = NULL;
		int code = 0;

		res[0] = rt_probe(self->area + off, false, &code, &addr);
		res[1] = res[0] ? 0 : zc_check(self->area + off, 0, 1000) == 1000;
		if (write(pfd[1], res, sizeof(res)) != sizeof(res))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	EXPECT_EQ(sizeof(res), read(pfd[0], res, sizeof(res)));
	close(pfd[0]);
	status = zc_wait_child(pid, 10000);
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("child status %#x", status);
	EXPECT_EQ(0, adv) TH_LOG("MADV_DOFORK: %s", errno_str(adv));
	EXPECT_EQ(0, res[0]) TH_LOG("the child faults on the area");
	EXPECT_EQ(1, res[1]) TH_LOG("the child does not see the parent's received bytes");
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

/*
 * A child that shares the area (MADV_DOFORK) and moves its copy elsewhere
 * takes nothing from the parent: the parent's receives still find its own
 * mapping.
 */
TEST_F(rx, madv_dofork_child_moves_its_copy)
{
	size_t len = 4 * self->ps;
	int status;
	pid_t pid;

	rx_start(_metadata, self, AF_INET, 4);
	ASSERT_EQ(0, madvise(self->area, len, MADV_DOFORK));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		void *to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (to == MAP_FAILED ||
		    mremap(self->area, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) != to)
			_exit(1);
		_exit(0);
	}
	status = zc_wait_child(pid, 10000);
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("child status %#x", status);
	rx_send(_metadata, self, 0, 1000);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(1000, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

/* ---- ZCOPY_IOC_RECV: what it refuses ---- */

TEST_F(rx, no_area_enxio)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	uint64_t off = 0;

	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &self->cli, &self->srv));
	ASSERT_EQ(0, rt_write_pattern(self->cli, 0, 100));
	ASSERT_EQ(0, rt_wait_readable(self->srv, 100, 5000));
	EXPECT_EQ(-ENXIO, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	EXPECT_EQ(-ENXIO, zc_recv(self->zfd, self->srv, d, 4, 0, 100, &r));
	EXPECT_EQ(-ENXIO, zc_release(self->zfd, &off, 1));
	/* The data waits for an area. */
	rx_map(_metadata, self, 4);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(100, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

TEST_F(rx, unmapped_area_enxio_keeps_data)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;

	rx_start(_metadata, self, AF_INET, 4);
	ASSERT_EQ(0, munmap(self->area, 4 * self->ps));
	self->area = NULL;
	rx_send(_metadata, self, 0, 3000);
	EXPECT_EQ(-ENXIO, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	EXPECT_EQ(-ENXIO, zc_recv(self->zfd, self->srv, d, 4, 0, 1000, &r));
	rx_map(_metadata, self, 4);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(3000, self->rx.last_bytes) TH_LOG("data was lost to the failed receives");
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, not_tcp_or_udp_eopnotsupp)
{
	struct {
		const char *name;
		int domain, type, proto;
	} socks[] = {
		{ "AF_UNIX SOCK_STREAM", AF_UNIX, SOCK_STREAM, 0 },
		{ "AF_UNIX SOCK_DGRAM", AF_UNIX, SOCK_DGRAM, 0 },
		{ "AF_UNIX SOCK_SEQPACKET", AF_UNIX, SOCK_SEQPACKET, 0 },
		{ "AF_INET SOCK_RAW IPPROTO_UDP", AF_INET, SOCK_RAW, IPPROTO_UDP },
		{ "AF_INET SOCK_RAW IPPROTO_TCP", AF_INET, SOCK_RAW, IPPROTO_TCP },
		{ "AF_INET6 SOCK_RAW IPPROTO_UDP", AF_INET6, SOCK_RAW, IPPROTO_UDP },
		{ "AF_PACKET SOCK_DGRAM", AF_PACKET, SOCK_DGRAM, 0 },
		{ "AF_NETLINK SOCK_RAW", AF_NETLINK, SOCK_RAW, 0 },
		{ "AF_INET SOCK_STREAM IPPROTO_MPTCP", AF_INET, SOCK_STREAM, IPPROTO_MPTCP },
		{ "AF_INET SOCK_STREAM IPPROTO_SCTP", AF_INET, SOCK_STREAM, IPPROTO_SCTP },
		{ "AF_INET6 SOCK_SEQPACKET IPPROTO_SCTP", AF_INET6, SOCK_SEQPACKET, IPPROTO_SCTP },
	};
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int sv[2], i, fd;
	char buf[8];

	rx_start(_metadata, self, AF_INET, 4);
	for (i = 0; i < ARRAY_SIZE(socks); i++) {
		fd = socket(socks[i].domain, socks[i].type | SOCK_CLOEXEC, socks[i].proto);
		if (fd < 0) {
			TH_LOG("%s: cannot be made here (%s), not tried", socks[i].name,
			       strerror(errno));
			continue;
		}
		EXPECT_EQ(-EOPNOTSUPP, zc_recv(self->zfd, fd, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r))
			TH_LOG("%s", socks[i].name);
		close(fd);
	}
	/* A connected AF_UNIX pair with data: refused, the data left alone. */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(5, write(sv[0], "hello", 5));
	EXPECT_EQ(-EOPNOTSUPP, zc_recv(self->zfd, sv[1], d, 4, 0, 0, &r));
	EXPECT_EQ(5, recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT));
	close(sv[0]);
	close(sv[1]);
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, not_a_socket)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int pfd[2], closed;

	rx_start(_metadata, self, AF_INET, 4);
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	EXPECT_EQ(-ENOTSOCK, zc_recv(self->zfd, pfd[0], d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	EXPECT_EQ(-ENOTSOCK, zc_recv(self->zfd, self->zfd, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	closed = pfd[1];
	close(pfd[0]);
	close(pfd[1]);
	EXPECT_EQ(-EBADF, zc_recv(self->zfd, closed, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	EXPECT_EQ(-EBADF, zc_recv(self->zfd, -1, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
}

TEST_F(rx, unconnected_tcp_enotconn)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int fam[] = { AF_INET, AF_INET6 }, i, fd, ret;
	struct sockaddr_storage ss;
	socklen_t sl;

	rx_start(_metadata, self, AF_INET, 4);
	for (i = 0; i < 2; i++) {
		fd = socket(fam[i], SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, fd);
		EXPECT_EQ(-ENOTCONN, zc_recv(self->zfd, fd, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r))
			TH_LOG("family %d, non-blocking", fam[i]);
		/* Not a wait for data that cannot come: at once. */
		ret = zc_recv(self->zfd, fd, d, 4, 0, 2000, &r);
		EXPECT_EQ(-ENOTCONN, ret) TH_LOG("family %d, blocking: %s", fam[i], strerror(-ret));
		/* Bound is not connected either. */
		sl = zc_sockaddr(fam[i], zc_lo_ip(fam[i]), 0, &ss);
		ASSERT_EQ(0, bind(fd, (struct sockaddr *)&ss, sl));
		ret = zc_recv(self->zfd, fd, d, 4, 0, 2000, &r);
		EXPECT_EQ(-ENOTCONN, ret) TH_LOG("family %d, bound: %s", fam[i], strerror(-ret));
		close(fd);
	}
}

TEST_F(rx, listening_tcp_enotconn)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int lfd, c, ret;

	rx_start(_metadata, self, AF_INET, 4);
	lfd = zc_bind(AF_INET, SOCK_STREAM, "127.0.0.1", 0);
	ASSERT_LE(0, lfd);
	ret = zc_recv(self->zfd, lfd, d, 4, 0, 2000, &r);
	EXPECT_EQ(-ENOTCONN, ret) TH_LOG("listening, blocking: %s", strerror(-ret));
	/* With a connection waiting to be accepted. */
	c = zc_dial(AF_INET, SOCK_STREAM, "127.0.0.1", zc_port(lfd));
	ASSERT_LE(0, c);
	ASSERT_EQ(5, write(c, "hello", 5));
	ret = zc_recv(self->zfd, lfd, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r);
	EXPECT_EQ(-ENOTCONN, ret) TH_LOG("listening, a connection queued: %s", strerror(-ret));
	close(c);
	close(lfd);
}

/*
 * Refused where recv(2) is, by the LSMs' socket_recvmsg hook: here a BPF
 * LSM program that refuses this process with EPERM, for TCP and UDP, with
 * and without waiting. The data stays queued, for the receive after.
 */
TEST_F(rx, lsm_refused_recv_eperm)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int u, c, link;
	char b;

	rx_start(_metadata, self, AF_INET, 4);
	u = zc_bind(AF_INET, SOCK_DGRAM, "127.0.0.1", 0);
	ASSERT_LE(0, u);
	c = zc_dial(AF_INET, SOCK_DGRAM, "127.0.0.1", zc_port(u));
	ASSERT_LE(0, c);
	ASSERT_EQ(5, write(self->cli, "hello", 5));
	ASSERT_EQ(5, write(c, "howdy", 5));
	ASSERT_EQ(0, rt_wait_readable(self->srv, 5, 5000));

	link = zc_lsm_refuse("socket_recvmsg", EPERM);
	if (link == -ENOENT || link == -EOPNOTSUPP) {
		close(c);
		close(u);
		SKIP(return, "no BPF LSM program on socket_recvmsg: %s", strerror(-link));
	}
	ASSERT_LE(0, link) TH_LOG("a BPF LSM program on socket_recvmsg: %s", strerror(-link));
	if (recv(self->srv, &b, 1, MSG_PEEK | MSG_DONTWAIT) != -1 || errno != EPERM) {
		close(link);
		close(c);
		close(u);
		SKIP(return, "recv(2) is not refused: bpf is not an active LSM");
	}
	EXPECT_EQ(-EPERM, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	EXPECT_EQ(-EPERM, zc_recv(self->zfd, self->srv, d, 4, 0, 2000, &r));
	EXPECT_EQ(-EPERM, zc_recv(self->zfd, u, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	close(link);

	ASSERT_EQ(0, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	EXPECT_EQ(5, r.bytes);
	EXPECT_EQ(0, memcmp(self->area + d[0].offset, "hello", 5));
	ASSERT_EQ(0, zc_recv(self->zfd, u, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	EXPECT_EQ(5, r.bytes);
	EXPECT_EQ(0, memcmp(self->area + d[0].offset, "howdy", 5));
	close(c);
	close(u);
}

TEST_F(rx, full_area_enospc)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	size_t total = 3 * self->ps + 100;

	rx_start(_metadata, self, AF_INET, 2);
	rx_send(_metadata, self, 0, total);
	RX_ONCE(&self->rx, 16, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(2 * self->ps, self->rx.last_bytes) TH_LOG("two slots' worth");
	EXPECT_EQ(-ENOSPC, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	EXPECT_EQ(-ENOSPC, zc_recv(self->zfd, self->srv, d, 4, 0, 1000, &r));
	check_rx_ledger(_metadata, &self->rx);
	/* Release and receive in one call: the rest, nothing lost. */
	{
		int ret = rt_rx_once(&self->rx, 16, ZCOPY_RECV_DONTWAIT, 0, 0, true);

		ASSERT_EQ(0, ret) TH_LOG("release + receive: %s", strerror(-ret));
		ASSERT_FALSE(self->rx.bad) TH_LOG("%s", self->rx.msg);
	}
	EXPECT_EQ(self->ps + 100, self->rx.last_bytes);
	EXPECT_EQ(total, self->rx.off);
	/* Full again, with one small slot: still ENOSPC with data waiting. */
	rx_send(_metadata, self, total, 10);
	EXPECT_EQ(-ENOSPC, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	RX_ONCE(&self->rx, 16, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(10, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, recv_unknown_flags_einval)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int bit, ret;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 100);
	for (bit = 0; bit < 32; bit++) {
		if ((1U << bit) & ZCOPY_RECV_FLAGS)
			continue;
		ret = zc_recv(self->zfd, self->srv, d, 4, 1U << bit, 0, &r);
		EXPECT_EQ(-EINVAL, ret) TH_LOG("flags %#x: %s", 1U << bit, strerror(-ret));
	}
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(100, self->rx.last_bytes) TH_LOG("the refused receives took data");
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

TEST_F(rx, recv_reserved_einval)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int i;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 100);
	memset(&r, 0, sizeof(r));
	r.sockfd = self->srv;
	r.desc = (uintptr_t)d;
	r.desc_count = 4;
	r.flags = ZCOPY_RECV_DONTWAIT;
	r.__pad = 1;
	EXPECT_EQ(-EINVAL, zc_recv_args(self->zfd, &r)) TH_LOG("__pad 1");
	r.__pad = 0;
	for (i = 0; i < ARRAY_SIZE(r.reserved); i++) {
		r.reserved[i] = 1ULL << 63;
		EXPECT_EQ(-EINVAL, zc_recv_args(self->zfd, &r)) TH_LOG("reserved[%d]", i);
		r.reserved[i] = 0;
	}
	EXPECT_EQ(0, r.bytes) TH_LOG("a refused receive wrote back");
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(100, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

TEST_F(rx, recv_desc_count_einval)
{
	static struct zcopy_rx_desc d[ZCOPY_MAX_RX_DESC + 1];
	static uint64_t rel[ZCOPY_MAX_RX_DESC + 1];
	struct zcopy_recv r;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 100);
	EXPECT_EQ(-EINVAL, zc_recv(self->zfd, self->srv, d, 0, ZCOPY_RECV_DONTWAIT, 0, &r))
		TH_LOG("desc_count 0");
	EXPECT_EQ(-EINVAL, zc_recv(self->zfd, self->srv, d, ZCOPY_MAX_RX_DESC + 1,
				   ZCOPY_RECV_DONTWAIT, 0, &r)) TH_LOG("desc_count MAX + 1");
	memset(&r, 0, sizeof(r));
	r.sockfd = self->srv;
	r.desc = (uintptr_t)d;
	r.desc_count = 4;
	r.flags = ZCOPY_RECV_DONTWAIT;
	r.release = (uintptr_t)rel;
	r.release_count = ZCOPY_MAX_RX_DESC + 1;
	EXPECT_EQ(-EINVAL, zc_recv_args(self->zfd, &r)) TH_LOG("release_count MAX + 1");
	/* ZCOPY_MAX_RX_DESC itself is fine. */
	EXPECT_EQ(0, zc_recv(self->zfd, self->srv, d, ZCOPY_MAX_RX_DESC, ZCOPY_RECV_DONTWAIT, 0,
			     &r));
	EXPECT_EQ(100, r.bytes);
	EXPECT_EQ(1, r.desc_count);
	EXPECT_EQ(0, zc_release(self->zfd, (uint64_t *)&d[0].offset, 1));
}

TEST_F(rx, recv_bad_pointers_efault_keep_data)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r, *ro;
	uint8_t *page;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 2000);
	page = mmap(NULL, self->ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	ASSERT_EQ(0, mprotect(page, self->ps, PROT_READ));
	/* The descriptors cannot be written, or not at all: nothing taken. */
	EXPECT_EQ(-EFAULT, zc_recv(self->zfd, self->srv, (void *)page, 4, ZCOPY_RECV_DONTWAIT,
				   0, &r)) TH_LOG("read-only descriptors");
	EXPECT_EQ(-EFAULT, zc_recv(self->zfd, self->srv, NULL, 4, ZCOPY_RECV_DONTWAIT, 0, &r))
		TH_LOG("NULL descriptors");
	/* The arguments cannot be written back. */
	memset(&r, 0, sizeof(r));
	r.sockfd = self->srv;
	r.desc = (uintptr_t)d;
	r.desc_count = 4;
	r.flags = ZCOPY_RECV_DONTWAIT;
	ASSERT_EQ(0, mprotect(page, self->ps, PROT_READ | PROT_WRITE));
	memcpy(page, &r, sizeof(r));
	ASSERT_EQ(0, mprotect(page, self->ps, PROT_READ));
	ro = (struct zcopy_recv *)page;
	EXPECT_EQ(-1, ioctl(self->zfd, ZCOPY_IOC_RECV, ro));
	EXPECT_EQ(EFAULT, errno) TH_LOG("read-only arguments: %s", strerror(errno));
	/* The release list cannot be read. */
	r.release = 8;
	r.release_count = 1;
	EXPECT_EQ(-EFAULT, zc_recv_args(self->zfd, &r)) TH_LOG("unreadable release list");
	munmap(page, self->ps);
	check_rx_ledger(_metadata, &self->rx);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(2000, self->rx.last_bytes) TH_LOG("the failed receives took data");
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * A copy that fails before its first byte, as skb_copy_bits() fails on
 * unreadable (devmem) frags: the receive says EFAULT, with no empty
 * descriptor that would read as the end of the stream, and the data
 * stays queued. zcopy_testmod makes the receiver's next skb_copy_bits()
 * fail, the VM having no NIC that makes unreadable frags.
 */
TEST_F(rx, copy_fault_efault_keeps_data)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	long held = 0;
	int ret;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 2000);
	ret = zc_testmod_load("symbol=skb_copy_bits delay_ms=0 retval=-14");
	if (ret == -ENOENT)
		SKIP(return, "no " ZC_TESTMOD_KO);
	ASSERT_EQ(0, ret) TH_LOG("load zcopy_testmod: %s", strerror(-ret));
	ASSERT_EQ(0, zc_testmod_write("tgid", getpid()));
	ASSERT_EQ(0, zc_testmod_write("armed", 1));
	memset(&r, 0, sizeof(r));
	ret = zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r);
	EXPECT_EQ(0, zc_testmod_read("held", &held));
	EXPECT_EQ(0, zc_testmod_unload());
	ASSERT_EQ(1, held) TH_LOG("the receive made no copy that could fail");
	EXPECT_EQ(-EFAULT, ret) TH_LOG("got %s with %u descriptors, %llu bytes",
				       errno_str(-ret), r.desc_count, ZC_U64(r.bytes));
	check_rx_ledger(_metadata, &self->rx);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(2000, self->rx.last_bytes) TH_LOG("the failed receive took data");
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

/* ---- ZCOPY_IOC_RELEASE ---- */

/* Receive three slots' worth of send() data: slots[0..2] held. */
static void hold_three(struct __test_metadata *_metadata, rx_self *self)
{
	rx_start(_metadata, self, AF_INET, 8);
	rx_send(_metadata, self, 0, 2 * self->ps + 100);
	RX_UNTIL(&self->rx, 2 * self->ps + 100);
	ASSERT_EQ(3, self->rx.nslots);
	check_rx_ledger(_metadata, &self->rx);
}

/* Nothing was released: the three slots are held and intact. */
static void still_three(struct __test_metadata *_metadata, rx_self *self)
{
	EXPECT_EQ(0, rt_rx_recheck(&self->rx, self->area)) TH_LOG("%s", self->rx.msg);
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, release_unaligned_einval)
{
	uint64_t o;

	hold_three(_metadata, self);
	o = self->rx.slots[1].area_off + 1;
	EXPECT_EQ(-EINVAL, zc_release(self->zfd, &o, 1));
	o = self->rx.slots[1].area_off + self->ps - 1;
	EXPECT_EQ(-EINVAL, zc_release(self->zfd, &o, 1));
	o = self->rx.slots[1].area_off + self->ps / 2;
	EXPECT_EQ(-EINVAL, zc_release(self->zfd, &o, 1));
	still_three(_metadata, self);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

TEST_F(rx, release_outside_area_einval)
{
	uint64_t bad[] = { 8 * self->ps, 9 * self->ps, 1ULL << 40, 1ULL << 63,
			   ~0ULL & ~(uint64_t)(self->ps - 1) };
	int i;

	hold_three(_metadata, self);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		uint64_t o = bad[i];

		EXPECT_EQ(-EINVAL, zc_release(self->zfd, &o, 1))
			TH_LOG("offset %#llx of an 8-page area", ZC_U64(o));
	}
	still_three(_metadata, self);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

TEST_F(rx, release_all_or_nothing)
{
	uint64_t a, b, c, empty, offs[3];
	int i;

	hold_three(_metadata, self);
	a = self->rx.slots[0].area_off;
	b = self->rx.slots[1].area_off;
	c = self->rx.slots[2].area_off;
	for (empty = 0; empty == a || empty == b || empty == c; empty += self->ps)
		;
	/* One bad entry, first or last, and the good ones stay held. */
	offs[0] = a;
	offs[1] = b;
	offs[2] = c + 1;
	EXPECT_EQ(-EINVAL, zc_release(self->zfd, offs, 3)) TH_LOG("one unaligned");
	offs[2] = 8 * self->ps;
	EXPECT_EQ(-EINVAL, zc_release(self->zfd, offs, 3)) TH_LOG("one outside");
	offs[2] = empty;
	EXPECT_EQ(-ENOENT, zc_release(self->zfd, offs, 3)) TH_LOG("one empty");
	offs[0] = empty;
	offs[2] = c;
	EXPECT_EQ(-ENOENT, zc_release(self->zfd, offs, 3)) TH_LOG("one empty, first");
	offs[0] = a;
	offs[1] = a;
	EXPECT_EQ(-ENOENT, zc_release(self->zfd, offs, 3)) TH_LOG("one slot twice");
	still_three(_metadata, self);
	/* In any order. */
	offs[0] = c;
	offs[1] = a;
	offs[2] = b;
	EXPECT_EQ(0, zc_release(self->zfd, offs, 3));
	for (i = 0; i < 3; i++)
		self->rx.busy[offs[i] / self->ps] = 0;
	self->rx.nslots = 0;
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, release_twice_enoent)
{
	uint64_t o;

	hold_three(_metadata, self);
	o = self->rx.slots[0].area_off;
	ASSERT_EQ(0, zc_release(self->zfd, &o, 1));
	rt_rx_forget(&self->rx, 1);
	EXPECT_EQ(-ENOENT, zc_release(self->zfd, &o, 1));
	still_three(_metadata, self);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	EXPECT_EQ(-ENOENT, zc_release(self->zfd, &o, 1));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, release_never_received_enoent)
{
	uint64_t o = 0;
	size_t i;

	rx_start(_metadata, self, AF_INET, 8);
	/* A fresh area: every slot is empty. */
	for (i = 0; i < 8; i++) {
		o = i * self->ps;
		EXPECT_EQ(-ENOENT, zc_release(self->zfd, &o, 1)) TH_LOG("slot %zu", i);
	}
	rx_send(_metadata, self, 0, 10);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	o = self->rx.slots[0].area_off ? 0 : self->ps;
	EXPECT_EQ(-ENOENT, zc_release(self->zfd, &o, 1)) TH_LOG("an empty slot beside a full one");
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

TEST_F(rx, release_flags_reserved_count_einval)
{
	static uint64_t many[ZCOPY_MAX_RX_DESC + 1];
	struct zcopy_release rel;
	uint64_t o;
	int bit, i;

	hold_three(_metadata, self);
	o = self->rx.slots[0].area_off;
	for (bit = 0; bit < 32; bit++) {
		rel = (struct zcopy_release){ .offsets = (uintptr_t)&o, .count = 1,
					      .flags = 1U << bit };
		EXPECT_EQ(-1, ioctl(self->zfd, ZCOPY_IOC_RELEASE, &rel));
		EXPECT_EQ(EINVAL, errno) TH_LOG("flags %#x", 1U << bit);
	}
	for (i = 0; i < ARRAY_SIZE(rel.reserved); i++) {
		rel = (struct zcopy_release){ .offsets = (uintptr_t)&o, .count = 1 };
		rel.reserved[i] = 1;
		EXPECT_EQ(-1, ioctl(self->zfd, ZCOPY_IOC_RELEASE, &rel));
		EXPECT_EQ(EINVAL, errno) TH_LOG("reserved[%d]", i);
	}
	EXPECT_EQ(-EINVAL, zc_release(self->zfd, &o, 0)) TH_LOG("count 0");
	for (i = 0; i <= ZCOPY_MAX_RX_DESC; i++)
		many[i] = o;
	EXPECT_EQ(-EINVAL, zc_release(self->zfd, many, ZCOPY_MAX_RX_DESC + 1))
		TH_LOG("count MAX + 1");
	EXPECT_EQ(-EFAULT, zc_release(self->zfd, NULL, 1)) TH_LOG("offsets NULL");
	still_three(_metadata, self);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

/* The release list of a receive: applied first, all or nothing. */
TEST_F(rx, release_within_recv)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	uint64_t offs[2];
	int ret;

	hold_three(_metadata, self);
	rx_send(_metadata, self, self->rx.off, 50);
	/* A bad entry fails the call before anything is received. */
	offs[0] = self->rx.slots[0].area_off;
	offs[1] = self->rx.slots[1].area_off + 8;
	memset(&r, 0, sizeof(r));
	r.sockfd = self->srv;
	r.desc = (uintptr_t)d;
	r.desc_count = 4;
	r.flags = ZCOPY_RECV_DONTWAIT;
	r.release = (uintptr_t)offs;
	r.release_count = 2;
	EXPECT_EQ(-EINVAL, zc_recv_args(self->zfd, &r));
	for (offs[1] = 0; self->rx.busy[offs[1] / self->ps]; offs[1] += self->ps)
		;
	EXPECT_EQ(-ENOENT, zc_recv_args(self->zfd, &r));
	still_three(_metadata, self);
	/* Release and receive together. */
	ret = rt_rx_once(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0, true);
	ASSERT_EQ(0, ret) TH_LOG("release + receive: %s", strerror(-ret));
	ASSERT_FALSE(self->rx.bad) TH_LOG("%s", self->rx.msg);
	EXPECT_EQ(50, self->rx.last_bytes);
	EXPECT_EQ(1, self->rx.nslots);
	check_rx_ledger(_metadata, &self->rx);
	/*
	 * Released first, as by ZCOPY_IOC_RELEASE: a receive that then finds
	 * nothing (EAGAIN) has still released them.
	 */
	offs[0] = self->rx.slots[0].area_off;
	r.release_count = 1;
	EXPECT_EQ(-EAGAIN, zc_recv_args(self->zfd, &r));
	rt_rx_forget(&self->rx, 1);
	check_rx_ledger(_metadata, &self->rx);
	EXPECT_EQ(-ENOENT, zc_release(self->zfd, offs, 1));
}

/* ---- ZCOPY_IOC_RECV: what it returns ---- */

TEST_F(rx, send_data_arrives_copied_and_packed)
{
	struct zcopy_stats st;
	uint32_t i;

	rx_start(_metadata, self, AF_INET6, 8);
	rx_send(_metadata, self, 0, 10000);
	RX_ONCE(&self->rx, 8, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(10000, self->rx.last_bytes);
	/* Copied bytes fill whole pages: 10000 bytes take three. */
	EXPECT_EQ((10000 + self->ps - 1) / self->ps, self->rx.last_n);
	for (i = 0; i < self->rx.last_n; i++) {
		uint32_t flags = self->rx.desc[i].flags;

		EXPECT_EQ(ZCOPY_RX_COPIED, flags) TH_LOG("desc %u", i);
	}
	check_rx_ledger(_metadata, &self->rx);
	st = fd_stats(_metadata, self->zfd);
	EXPECT_EQ(0, st.rx_bytes_mapped);
	EXPECT_EQ(10000, st.rx_bytes_copied);
	EXPECT_EQ(1, st.receives);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * A slot is mapped whole: past the bytes copied into it, it reads zero
 * (rt_rx_once() checks every descriptor's tail), never what its page held
 * before. Twelve full pages, released, are spares that still hold their
 * data; the short receive after them fills the last one in place, whose
 * old bytes past the new ones must be cleared.
 */
TEST_F(rx, copied_slot_tail_reads_zero)
{
	size_t lens[] = { 1000, 1, self->ps - 1, self->ps + 7 }, k;
	uint64_t off = 0;

	rx_start(_metadata, self, AF_INET, 16);
	for (k = 0; k < ARRAY_SIZE(lens); k++) {
		rx_send(_metadata, self, off, 12 * self->ps);
		off += 12 * self->ps;
		RX_ONCE(&self->rx, 16, ZCOPY_RECV_DONTWAIT, 0, 0);
		ASSERT_EQ(0, rt_rx_release_all(&self->rx));
		rx_send(_metadata, self, off, lens[k]);
		off += lens[k];
		RX_ONCE(&self->rx, 16, ZCOPY_RECV_DONTWAIT, 0, 0);
		EXPECT_EQ(lens[k], self->rx.last_bytes);
		ASSERT_EQ(0, rt_rx_release_all(&self->rx));
	}
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, max_bytes_limits_receive)
{
	rx_start(_metadata, self, AF_INET, 8);
	rx_send(_metadata, self, 0, 10000);
	RX_ONCE(&self->rx, 8, ZCOPY_RECV_DONTWAIT, 0, 100);
	EXPECT_EQ(100, self->rx.last_bytes);
	EXPECT_EQ(1, self->rx.last_n);
	RX_ONCE(&self->rx, 8, ZCOPY_RECV_DONTWAIT, 0, 5000);
	EXPECT_EQ(5000, self->rx.last_bytes);
	RX_ONCE(&self->rx, 8, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(4900, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, desc_count_limits_receive)
{
	rx_start(_metadata, self, AF_INET, 8);
	rx_send(_metadata, self, 0, 10000);
	RX_ONCE(&self->rx, 1, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(self->ps, self->rx.last_bytes) TH_LOG("one descriptor: one full page");
	RX_ONCE(&self->rx, 1, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(self->ps, self->rx.last_bytes);
	RX_ONCE(&self->rx, 1, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(10000 - 2 * self->ps, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, dontwait_eagain)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int64_t t0;

	rx_start(_metadata, self, AF_INET, 4);
	t0 = zc_now_ms();
	EXPECT_EQ(-EAGAIN, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	/* ZCOPY_RECV_DONTWAIT wins over a timeout. */
	EXPECT_EQ(-EAGAIN, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 5000, &r));
	EXPECT_GT(2000, zc_now_ms() - t0) TH_LOG("ZCOPY_RECV_DONTWAIT waited");
	rx_send(_metadata, self, 0, 10);
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(10, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, nonblocking_socket_eagain)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int64_t t0;

	rx_start(_metadata, self, AF_INET, 4);
	ASSERT_EQ(0, fcntl(self->srv, F_SETFL, fcntl(self->srv, F_GETFL) | O_NONBLOCK));
	t0 = zc_now_ms();
	EXPECT_EQ(-EAGAIN, zc_recv(self->zfd, self->srv, d, 4, 0, 0, &r));
	EXPECT_EQ(-EAGAIN, zc_recv(self->zfd, self->srv, d, 4, 0, 5000, &r));
	EXPECT_GT(2000, zc_now_ms() - t0) TH_LOG("a receive on an O_NONBLOCK socket waited");
	rx_send(_metadata, self, 0, 10);
	RX_ONCE(&self->rx, 4, 0, 0, 0);
	EXPECT_EQ(10, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

TEST_F(rx, timeout_eagain)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int64_t t0, dt;

	rx_start(_metadata, self, AF_INET, 4);
	t0 = zc_now_ms();
	EXPECT_EQ(-EAGAIN, zc_recv(self->zfd, self->srv, d, 4, 0, 300, &r));
	dt = zc_now_ms() - t0;
	EXPECT_LE(250, dt) TH_LOG("a 300 ms timeout after %lld ms", (long long)dt);
	EXPECT_GT(5000, dt) TH_LOG("a 300 ms timeout after %lld ms", (long long)dt);
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, so_rcvtimeo_applies_without_timeout)
{
	struct timeval tv = { 0, 300000 }, long_tv = { 10, 0 };
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int64_t t0, dt;

	rx_start(_metadata, self, AF_INET, 4);
	ASSERT_EQ(0, setsockopt(self->srv, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	t0 = zc_now_ms();
	EXPECT_EQ(-EAGAIN, zc_recv(self->zfd, self->srv, d, 4, 0, 0, &r));
	dt = zc_now_ms() - t0;
	EXPECT_LE(250, dt) TH_LOG("SO_RCVTIMEO 300 ms: EAGAIN after %lld ms", (long long)dt);
	EXPECT_GT(5000, dt) TH_LOG("SO_RCVTIMEO 300 ms: EAGAIN after %lld ms", (long long)dt);
	/* timeout_ms, when given, is the one that counts. */
	ASSERT_EQ(0, setsockopt(self->srv, SOL_SOCKET, SO_RCVTIMEO, &long_tv, sizeof(long_tv)));
	t0 = zc_now_ms();
	EXPECT_EQ(-EAGAIN, zc_recv(self->zfd, self->srv, d, 4, 0, 300, &r));
	dt = zc_now_ms() - t0;
	EXPECT_GT(5000, dt) TH_LOG("timeout_ms 300 under SO_RCVTIMEO 10 s: %lld ms",
				   (long long)dt);
}

enum later_what { LATER_WRITE, LATER_SHUTDOWN, LATER_CLOSE, LATER_SIGNAL };

/* A child that, @ms from now, acts on @fd (inherited): its pid, or -1. */
static pid_t later(int ms, enum later_what what, int fd, uint64_t off, size_t len)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	zc_sleep_ms(ms);
	switch (what) {
	case LATER_WRITE:
		_exit(rt_write_pattern(fd, off, len) ? 1 : 0);
	case LATER_SHUTDOWN:
		_exit(shutdown(fd, SHUT_WR) ? 1 : 0);
	case LATER_CLOSE:
		_exit(close(fd) ? 1 : 0);
	case LATER_SIGNAL:
		_exit(kill(getppid(), SIGUSR1) ? 1 : 0);
	}
	_exit(1);
}

static void later_done(struct __test_metadata *_metadata, pid_t pid)
{
	int status = zc_wait_child(pid, 10000);

	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("helper status %#x",
								     status);
}

TEST_F(rx, blocks_until_data)
{
	int64_t t0, dt;
	pid_t pid;

	rx_start(_metadata, self, AF_INET, 4);
	t0 = zc_now_ms();
	pid = later(300, LATER_WRITE, self->cli, 0, 1000);
	ASSERT_LT(0, pid);
	RX_ONCE(&self->rx, 4, 0, 10000, 0);
	dt = zc_now_ms() - t0;
	later_done(_metadata, pid);
	EXPECT_EQ(1000, self->rx.last_bytes);
	EXPECT_LE(250, dt) TH_LOG("returned after %lld ms, the data came after 300",
				  (long long)dt);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, eof_after_data)
{
	int64_t t0;
	int i;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 5000);
	ASSERT_EQ(0, shutdown(self->cli, SHUT_WR));
	RX_UNTIL(&self->rx, 5000);
	/* Then 0 bytes and no descriptor, every time, blocking or not, at once. */
	t0 = zc_now_ms();
	for (i = 0; i < 3; i++) {
		RX_ONCE(&self->rx, 4, i == 1 ? ZCOPY_RECV_DONTWAIT : 0, 5000, 0);
		EXPECT_EQ(0, self->rx.last_bytes) TH_LOG("receive %d after EOF", i);
		EXPECT_EQ(0, self->rx.last_n) TH_LOG("receive %d after EOF", i);
	}
	EXPECT_GT(2000, zc_now_ms() - t0) TH_LOG("a receive at EOF waited");
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, eof_wakes_blocked_receive)
{
	int64_t t0, dt;
	pid_t pid;

	rx_start(_metadata, self, AF_INET6, 4);
	t0 = zc_now_ms();
	pid = later(300, LATER_SHUTDOWN, self->cli, 0, 0);
	ASSERT_LT(0, pid);
	RX_ONCE(&self->rx, 4, 0, 10000, 0);
	dt = zc_now_ms() - t0;
	later_done(_metadata, pid);
	EXPECT_EQ(0, self->rx.last_bytes);
	EXPECT_EQ(0, self->rx.last_n);
	EXPECT_LE(250, dt);
	EXPECT_GT(5000, dt) TH_LOG("EOF noticed after %lld ms", (long long)dt);
}

/* recv() on one socket, ZCOPY_IOC_RECV on its twin: results, until EOF. */
#define TWIN_MAX	6

static int recv_results(int s, long *res, uint64_t *bytes)
{
	struct timeval tv = { 2, 0 };
	char buf[65536];
	int n = 0;

	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*bytes = 0;
	while (n < TWIN_MAX) {
		ssize_t r = recv(s, buf, sizeof(buf), 0);

		res[n++] = r < 0 ? -errno : r;
		if (r > 0)
			*bytes += r;
		if (r == 0 || (r < 0 && errno == EAGAIN))
			break;
	}
	return n;
}

static int zc_results(struct rt_rx *rx, long *res)
{
	int n = 0;

	while (n < TWIN_MAX) {
		int ret = rt_rx_once(rx, 16, 0, 2000, 0, false);

		res[n++] = ret ? ret : (long)rx->last_bytes;
		if (rx->bad || ret == -EAGAIN || (!ret && !rx->last_bytes && !rx->last_n))
			break;
	}
	return n;
}

static void results_str(char *buf, size_t len, const long *res, int n)
{
	int i, o = 0;

	buf[0] = 0;
	for (i = 0; i < n && o < len; i++)
		o += snprintf(buf + o, len - o, "%s%ld", i ? ", " : "", res[i]);
}

/*
 * recv()'s results on @sa (into @ra, the bytes it read in @bytes) and
 * ZCOPY_IOC_RECV's on the fixture's socket, each until the end of the
 * stream or an error, logged; with @same, they must agree. recv()'s count.
 */
static int twin_results(struct __test_metadata *_metadata, rx_self *self, int sa,
			const char *what, bool same, long *ra, uint64_t *bytes)
{
	char sa_str[128], sb_str[128];
	long rb[TWIN_MAX];
	int na, nb, i;

	na = recv_results(sa, ra, bytes);
	nb = zc_results(&self->rx, rb);
	ASSERT_FALSE(self->rx.bad) TH_LOG("%s", self->rx.msg);
	results_str(sa_str, sizeof(sa_str), ra, na);
	results_str(sb_str, sizeof(sb_str), rb, nb);
	TH_LOG("%s: recv() gives %s; ZCOPY_IOC_RECV %s", what, sa_str, sb_str);
	if (same) {
		EXPECT_EQ(na, nb) TH_LOG("%s", what);
		for (i = 0; i < na && i < nb; i++) {
			long a = ra[i], b = rb[i];

			EXPECT_EQ(a, b) TH_LOG("%s: result %d", what, i);
		}
	}
	return na;
}

/* Whether poll() reports @ev on @fd within 5 s. */
static bool twin_polls(int fd, short ev)
{
	int64_t end = zc_now_ms() + 5000;

	do {
		struct pollfd p = { fd, ev, 0 };

		if (poll(&p, 1, 0) > 0 && (p.revents & ev))
			return true;
		zc_sleep_ms(1);
	} while (zc_now_ms() < end);
	return false;
}

/* Both twins, @sa and the fixture's, see their peer's @ev. */
static void twin_wait(struct __test_metadata *_metadata, rx_self *self, int sa,
		      short ev)
{
	ASSERT_TRUE(twin_polls(sa, ev)) TH_LOG("recv()'s twin: no poll event %#x", ev);
	ASSERT_TRUE(twin_polls(self->srv, ev)) TH_LOG("the zcopy twin: no poll event %#x", ev);
}

/* The twins' peers, @ca and the fixture's, close with an RST, seen by both. */
static void twin_reset(struct __test_metadata *_metadata, rx_self *self, int ca, int sa)
{
	struct linger lin = { 1, 0 };

	ASSERT_EQ(0, setsockopt(ca, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)));
	ASSERT_EQ(0, setsockopt(self->cli, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)));
	close(ca);
	close(self->cli);
	self->cli = -1;
	twin_wait(_metadata, self, sa, POLLHUP);
}

/* A peer's RST: the same results as recv() on a twin connection. */
TEST_F(rx, reset_like_recv)
{
	long ra[TWIN_MAX];
	int ca, sa, with;
	uint64_t bytes;

	for (with = 0; with < 2; with++) {
		rx_start(_metadata, self, AF_INET, 8);
		ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &ca, &sa));
		if (with) {
			rx_send(_metadata, self, 0, 3000);
			ASSERT_EQ(0, rt_write_pattern(ca, 0, 3000));
			ASSERT_EQ(0, rt_wait_readable(sa, 3000, 5000));
		}
		twin_reset(_metadata, self, ca, sa);

		twin_results(_metadata, self, sa, with ? "with data" : "no data", true, ra, &bytes);
		EXPECT_EQ(-ECONNRESET, ra[with]) TH_LOG("recv() itself");
		EXPECT_EQ(bytes, self->rx.off);
		close(sa);
		EXPECT_EQ(0, rt_rx_release_all(&self->rx));
		check_rx_ledger(_metadata, &self->rx);
		close(self->srv);
		self->srv = -1;
		munmap(self->area, self->area_pages * self->ps);
		self->area = NULL;
		close(self->zfd);
		self->zfd = zc_open();
		ASSERT_LE(0, self->zfd);
	}
}

/*
 * The peer's FIN, then its RST: recv() reads the data, then the end of the
 * stream, not the error that came after the FIN. So must ZCOPY_IOC_RECV,
 * on a twin connection.
 */
TEST_F(rx, fin_then_reset_like_recv)
{
	long ra[TWIN_MAX];
	uint64_t bytes;
	int ca, sa, na;

	rx_start(_metadata, self, AF_INET, 8);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &ca, &sa));
	rx_send(_metadata, self, 0, 3000);
	ASSERT_EQ(0, rt_write_pattern(ca, 0, 3000));
	ASSERT_EQ(0, shutdown(ca, SHUT_WR));
	ASSERT_EQ(0, shutdown(self->cli, SHUT_WR));
	twin_wait(_metadata, self, sa, POLLRDHUP);
	twin_reset(_metadata, self, ca, sa);

	na = twin_results(_metadata, self, sa, "FIN then RST", true, ra, &bytes);
	EXPECT_TRUE(na == 2 && ra[0] == 3000 && ra[1] == 0) TH_LOG("recv() itself");
	EXPECT_EQ(bytes, self->rx.off);
	close(sa);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * write()'s data over loopback sits in compound pages (the task's page
 * frag), which no alignment would make mappable: copied, and counted
 * foreign, wherever in the page it starts. Writes of 1000 bytes, each
 * pushed alone, start at 1000-byte steps in the page.
 */
TEST_F(rx, write_data_copied_as_foreign)
{
	struct zcopy_stats st;
	long order0 = 0;
	int i;

	/* Where that is off, the page frag is a page of its own. */
	zc_sysctl_read("net/core/high_order_alloc_disable", &order0);
	if (order0)
		SKIP(return, "net.core.high_order_alloc_disable is set");
	rx_start(_metadata, self, AF_INET, 32);
	for (i = 0; i < 32; i++)
		rx_send(_metadata, self, i * 1000, 1000);
	RX_UNTIL(&self->rx, 32 * 1000);
	st = fd_stats(_metadata, self->zfd);
	TH_LOG("copied %llu: linear %llu, unaligned %llu, foreign %llu",
	       ZC_U64(st.rx_bytes_copied), ZC_U64(st.rx_copied_linear),
	       ZC_U64(st.rx_copied_unaligned), ZC_U64(st.rx_copied_foreign));
	EXPECT_EQ(0, st.rx_copied_unaligned);
	EXPECT_LE(st.rx_bytes_copied * 9, st.rx_copied_foreign * 10);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, reset_wakes_blocked_receive)
{
	struct linger lin = { 1, 0 };
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int64_t t0, dt;
	pid_t pid;
	int ret;

	rx_start(_metadata, self, AF_INET, 4);
	ASSERT_EQ(0, setsockopt(self->cli, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)));
	t0 = zc_now_ms();
	pid = later(300, LATER_CLOSE, self->cli, 0, 0);
	ASSERT_LT(0, pid);
	close(self->cli);
	self->cli = -1;
	ret = zc_recv(self->zfd, self->srv, d, 4, 0, 10000, &r);
	dt = zc_now_ms() - t0;
	later_done(_metadata, pid);
	EXPECT_EQ(-ECONNRESET, ret) TH_LOG("%s", strerror(-ret));
	EXPECT_LE(250, dt);
	EXPECT_GT(5000, dt) TH_LOG("the reset noticed after %lld ms", (long long)dt);
	/* Then the end of the stream, as recv() says. */
	EXPECT_EQ(0, zc_recv(self->zfd, self->srv, d, 4, 0, 1000, &r));
	EXPECT_EQ(0, r.bytes);
	EXPECT_EQ(0, r.desc_count);
}

TEST_F(rx, signal_interrupts_receive)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int64_t t0, dt;
	pid_t pid;
	int ret;

	rx_start(_metadata, self, AF_INET, 4);
	rt_catch(SIGUSR1);
	t0 = zc_now_ms();
	pid = later(300, LATER_SIGNAL, -1, 0, 0);
	ASSERT_LT(0, pid);
	ret = zc_recv(self->zfd, self->srv, d, 4, 0, 5000, &r);
	dt = zc_now_ms() - t0;
	later_done(_metadata, pid);
	EXPECT_EQ(-EINTR, ret) TH_LOG("%s", strerror(-ret));
	EXPECT_LE(250, dt);
	EXPECT_GT(4000, dt) TH_LOG("interrupted after %lld ms", (long long)dt);
	signal(SIGUSR1, SIG_DFL);
	rx_send(_metadata, self, 0, 10);
	RX_ONCE(&self->rx, 4, 0, 1000, 0);
	EXPECT_EQ(10, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * A receive that has released its release list and is then interrupted
 * fails with EINTR, even under SA_RESTART: restarted, it would release
 * the same slots again (ENOENT), or another thread's, received into them
 * meanwhile. The slot stays released.
 */
TEST_F(rx, signal_after_release_eintr)
{
	struct sigaction sa = { .sa_handler = rt_nop_handler, .sa_flags = SA_RESTART };
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	uint64_t slot;
	pid_t pid;
	int ret;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 10);
	RX_ONCE(&self->rx, 4, 0, 1000, 0);
	ASSERT_EQ(1, self->rx.nslots);
	slot = self->rx.slots[0].area_off;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		pid_t parent = getppid();

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Once the receive waits (or, without its stack to read, soon). */
		if (zc_wait_task_in(parent, parent, "sk_wait_data", 10000))
			zc_sleep_ms(300);
		_exit(kill(parent, SIGUSR1) ? 1 : 0);
	}
	/* Blocking without a timeout: a signal restarts what may restart. */
	r = (struct zcopy_recv){ .sockfd = self->srv, .desc = (uintptr_t)d, .desc_count = 4,
				 .release = (uintptr_t)&slot, .release_count = 1 };
	ret = zc_recv_args(self->zfd, &r);
	later_done(_metadata, pid);
	signal(SIGUSR1, SIG_DFL);
	EXPECT_EQ(-EINTR, ret) TH_LOG("%s", errno_str(-ret));
	rt_rx_forget(&self->rx, 1);
	EXPECT_EQ(-ENOENT, zc_release(self->zfd, &slot, 1)) TH_LOG("the slot was not released");
	rx_send(_metadata, self, 10, 10);
	RX_ONCE(&self->rx, 4, 0, 1000, 0);
	EXPECT_EQ(10, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

struct rx_waiter {
	int zfd, sock, ret;
	pid_t tid;
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
};

static void *rx_waiter_main(void *arg)
{
	struct rx_waiter *w = arg;

	zc_pin_cpu(0);
	__atomic_store_n(&w->tid, gettid(), __ATOMIC_RELEASE);
	w->ret = zc_recv(w->zfd, w->sock, w->d, 4, 0, 5000, &w->r);
	return NULL;
}

/*
 * A receive waiting on a socket that another thread disconnects
 * (connect(AF_UNSPEC)) and connects elsewhere fails with EPIPE, as recv(2)
 * does: the new connection's data is not its stream. zcopy_testmod holds
 * the waiter where it wakes (wait_woken()) on one CPU, while this thread
 * connects again and the new peer sends on the other.
 */
TEST_F(rx, disconnect_while_waiting_epipe)
{
	struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
	struct rx_waiter w = { 0 };
	int lfd, peer, ret;
	pthread_t th;
	long held = 0;
	socklen_t sl;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "one CPU: the held waiter would hold this thread too");
	rx_start(_metadata, self, AF_INET, 4);
	lfd = zc_bind(AF_INET, SOCK_STREAM, zc_lo_ip(AF_INET), 0);
	ASSERT_LE(0, lfd);
	ret = zc_testmod_load("symbol=wait_woken delay_ms=500");
	if (ret == -ENOENT)
		SKIP(return, "no " ZC_TESTMOD_KO);
	ASSERT_EQ(0, ret) TH_LOG("load zcopy_testmod: %s", strerror(-ret));
	ASSERT_EQ(0, zc_testmod_write("tgid", getpid()));
	ASSERT_EQ(0, zc_pin_cpu(1));
	w.zfd = self->zfd;
	w.sock = self->srv;
	ASSERT_EQ(0, pthread_create(&th, NULL, rx_waiter_main, &w));
	while (!__atomic_load_n(&w.tid, __ATOMIC_ACQUIRE))
		zc_sleep_ms(1);
	/* Waiting for data, not yet about to (it would see the reset). */
	if (zc_wait_task_in(getpid(), w.tid, "sk_wait_data", 10000))
		zc_sleep_ms(300);
	ASSERT_EQ(0, zc_testmod_write("armed", 1));

	ASSERT_EQ(0, connect(self->srv, (struct sockaddr *)&ss, sizeof(ss)));
	ASSERT_EQ(0, fcntl(self->srv, F_SETFL, O_NONBLOCK));
	sl = zc_sockaddr(AF_INET, zc_lo_ip(AF_INET), zc_port(lfd), &ss);
	ret = connect(self->srv, (struct sockaddr *)&ss, sl);
	ASSERT_TRUE(!ret || errno == EINPROGRESS) TH_LOG("connect again: %s", strerror(errno));
	peer = zc_accept(lfd, 5000);
	ASSERT_LE(0, peer);
	ASSERT_EQ(10, write(peer, "0123456789", 10));
	pthread_join(th, NULL);
	EXPECT_EQ(0, zc_testmod_read("held", &held));
	EXPECT_EQ(0, zc_testmod_unload());
	EXPECT_EQ(1, held) TH_LOG("the waiter was not held where it woke");
	EXPECT_EQ(-EPIPE, w.ret) TH_LOG("got %s, %llu bytes", errno_str(-w.ret),
				       ZC_U64(w.r.bytes));
	close(peer);
	close(lfd);
}

/*
 * Under TCP_REPAIR the queue is only peeked at: EPERM, as recv(2) says,
 * and the data stays for after.
 */
TEST_F(rx, repair_eperm)
{
	int on = TCP_REPAIR_ON, off = TCP_REPAIR_OFF;
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	char c;

	rx_start(_metadata, self, AF_INET, 4);
	rx_send(_metadata, self, 0, 10);
	ASSERT_EQ(0, rt_wait_readable(self->srv, 10, 5000));
	ASSERT_EQ(0, setsockopt(self->srv, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)));
	EXPECT_EQ(-1, recv(self->srv, &c, 1, MSG_DONTWAIT));
	EXPECT_EQ(EPERM, errno) TH_LOG("recv() itself: %s", strerror(errno));
	EXPECT_EQ(-EPERM, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	ASSERT_EQ(0, setsockopt(self->srv, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)));
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 0);
	EXPECT_EQ(10, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * Urgent data (MSG_OOB) in the stream: recv() without SO_OOBINLINE reads
 * past the urgent byte; so must ZCOPY_IOC_RECV, and not stop at it with a
 * false end of stream.
 */
TEST_F(rx, urgent_data_like_recv)
{
	long ra[TWIN_MAX];
	uint64_t bytes;
	int ca, sa, k;

	rx_start(_metadata, self, AF_INET, 8);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &ca, &sa));
	for (k = 0; k < 2; k++) {
		int c = k ? ca : self->cli;

		ASSERT_EQ(0, rt_write_pattern(c, 0, 1000));
		ASSERT_EQ(1, send(c, "!", 1, MSG_OOB));
		ASSERT_EQ(0, rt_write_pattern(c, 1000, 1000));
		ASSERT_EQ(0, shutdown(c, SHUT_WR));
	}
	zc_sleep_ms(100);
	twin_results(_metadata, self, sa, "urgent data", false, ra, &bytes);
	EXPECT_EQ(2000, bytes) TH_LOG("recv() itself");
	EXPECT_EQ(2000, self->rx.off)
		TH_LOG("ZCOPY_IOC_RECV reported the end of the stream after %llu of 2000 bytes",
		       ZC_U64(self->rx.off));
	close(ca);
	close(sa);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, shutdown_rd_like_recv)
{
	long ra[TWIN_MAX], rb[TWIN_MAX];
	char sa_str[128], sb_str[128];
	int ca, sa, na, nb;
	uint64_t bytes;
	int64_t t0;

	rx_start(_metadata, self, AF_INET, 4);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &ca, &sa));
	ASSERT_EQ(0, shutdown(sa, SHUT_RD));
	ASSERT_EQ(0, shutdown(self->srv, SHUT_RD));
	na = recv_results(sa, ra, &bytes);
	t0 = zc_now_ms();
	nb = zc_results(&self->rx, rb);
	results_str(sa_str, sizeof(sa_str), ra, na);
	results_str(sb_str, sizeof(sb_str), rb, nb);
	TH_LOG("recv() gives %s; ZCOPY_IOC_RECV %s", sa_str, sb_str);
	EXPECT_EQ(0, ra[0]) TH_LOG("recv() itself");
	EXPECT_EQ(0, rb[0]);
	EXPECT_GT(1500, zc_now_ms() - t0) TH_LOG("the receive waited");
	close(ca);
	close(sa);
}

/*
 * The urgent byte alone in the queue: recv() finds nothing to read and
 * waits; ZCOPY_IOC_RECV took it for the end of the stream (0 bytes).
 */
TEST_F(rx, lone_urgent_byte_is_not_end_of_stream)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	char c;
	int ca, sa, ret;

	rx_start(_metadata, self, AF_INET, 4);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &ca, &sa));
	ASSERT_EQ(1, send(self->cli, "!", 1, MSG_OOB));
	ASSERT_EQ(1, send(ca, "!", 1, MSG_OOB));
	zc_sleep_ms(100);
	EXPECT_EQ(-1, recv(sa, &c, 1, MSG_DONTWAIT));
	EXPECT_EQ(EAGAIN, errno) TH_LOG("recv() itself");

	ret = zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r);
	EXPECT_EQ(-EAGAIN, ret) TH_LOG("DONTWAIT: %s, %llu bytes", errno_str(-ret),
				       ZC_U64(ret ? 0 : r.bytes));
	ret = zc_recv(self->zfd, self->srv, d, 4, 0, 300, &r);
	EXPECT_EQ(-EAGAIN, ret) TH_LOG("blocking, 300 ms: %s, %llu bytes", errno_str(-ret),
				       ZC_U64(ret ? 0 : r.bytes));

	/* Data after it is received as usual; the urgent byte is not. */
	rx_send(_metadata, self, 0, 100);
	RX_ONCE(&self->rx, 4, 0, 1000, 0);
	EXPECT_EQ(100, self->rx.last_bytes);
	close(ca);
	close(sa);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

static int rx_sigurgs;

static void rx_on_sigurg(int sig)
{
	__atomic_add_fetch(&rx_sigurgs, 1, __ATOMIC_SEQ_CST);
}

/*
 * A receive waiting when urgent data comes, with SIGURG on its way to the
 * socket's owner: as recv(2), it returns EINTR at the mark, taking
 * nothing, so that the signal's handler can still read the urgent byte
 * with MSG_OOB. It skipped the byte first, and MSG_OOB found none (EINVAL).
 */
TEST_F(rx, urgent_mark_lets_sigurg_read_it)
{
	struct sigaction sa = { .sa_handler = rx_on_sigurg }, old;
	int ret, status;
	pid_t pid;
	char c = 0;

	rx_start(_metadata, self, AF_INET, 4);
	ASSERT_EQ(0, fcntl(self->srv, F_SETOWN, getpid()));
	/* No SA_RESTART: the interrupted receive returns. */
	ASSERT_EQ(0, sigaction(SIGURG, &sa, &old));
	__atomic_store_n(&rx_sigurgs, 0, __ATOMIC_SEQ_CST);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (zc_wait_task_in(getppid(), getppid(), "sk_wait_data", 10000))
			zc_sleep_ms(300);
		_exit(send(self->cli, "!", 1, MSG_OOB) == 1 ? 0 : 1);
	}
	ret = rt_rx_once(&self->rx, 4, 0, 5000, 0, false);
	EXPECT_EQ(-EINTR, ret) TH_LOG("%s, %llu bytes", errno_str(-ret),
				      ZC_U64(ret ? 0 : self->rx.last_bytes));
	EXPECT_EQ(1, __atomic_load_n(&rx_sigurgs, __ATOMIC_SEQ_CST));
	EXPECT_EQ(1, recv(self->srv, &c, 1, MSG_OOB | MSG_DONTWAIT))
		TH_LOG("MSG_OOB after the receive: %s", strerror(errno));
	EXPECT_EQ('!', c);
	status = zc_wait_child(pid, 10000);
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("the sender: %#x", status);
	sigaction(SIGURG, &old, NULL);

	/* The byte read out of band, the stream goes on (FIONREAD stops at the mark). */
	ASSERT_EQ(0, rt_write_pattern(self->cli, 0, 100));
	RX_ONCE(&self->rx, 4, 0, 2000, 0);
	EXPECT_EQ(100, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

/* TAINT_WARN (Documentation/admin-guide/tainted-kernels.rst): a WARN() ran. */
#define RX_TAINT_WARN	(1UL << 9)

static unsigned long rx_taint(void)
{
	unsigned long t = 0;
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");

	if (f) {
		if (fscanf(f, "%lu", &t) != 1)
			t = 0;
		fclose(f);
	}
	return t;
}

struct remap_state {
	int zfd;
	uint8_t *area;
	size_t len;
	bool stop;
	int err;		/* why remapping stopped, if it failed */
	uint64_t remaps;
};

/* Unmap the area and map it again at the same address, as fast as it goes. */
static void *remap_area(void *arg)
{
	struct remap_state *t = arg;

	while (!__atomic_load_n(&t->stop, __ATOMIC_RELAXED)) {
		if (munmap(t->area, t->len) ||
		    mmap(t->area, t->len, PROT_READ, MAP_SHARED | MAP_FIXED, t->zfd,
			 ZCOPY_MMAP_RECV) != t->area) {
			t->err = errno;
			break;
		}
		t->remaps++;
	}
	return NULL;
}

/*
 * A receive at the mark steps over the urgent byte, then takes what
 * follows. When that failed (ENXIO here: another thread had unmapped the
 * area), the skb that the byte came in stayed queued, used up, and the
 * next recv() warned "TCP recvmsg seq # bug 2" and tainted the kernel.
 * The step is now made where nothing can fail before the skb is freed.
 */
TEST_F_TIMEOUT(rx, urgent_step_leaves_no_used_skb, 300)
{
	struct remap_state t = { 0 };
	unsigned long taint = rx_taint(), tries, at_mark = 0, stepped = 0;
	struct pollfd pfd;
	struct zcopy_rx_desc d;
	struct zcopy_recv r;
	int ret, mark;
	pthread_t th;
	char c;

	rx_start(_metadata, self, AF_INET, 1);
	t.zfd = self->zfd;
	t.area = self->area;
	t.len = self->ps;
	ASSERT_EQ(0, pthread_create(&th, NULL, remap_area, &t));
	for (tries = 0; tries < 2000;) {
		ASSERT_EQ(1, send(self->cli, "!", 1, MSG_OOB));
		tries++;
		pfd = (struct pollfd){ .fd = self->srv, .events = POLLPRI };
		ASSERT_EQ(1, poll(&pfd, 1, 5000)) TH_LOG("the urgent byte did not arrive");
		/* Until the receive gets as far as the step (ENXIO before it: at the mark). */
		for (;;) {
			ret = zc_recv(self->zfd, self->srv, &d, 1, ZCOPY_RECV_DONTWAIT, 0, &r);
			ASSERT_EQ(0, ioctl(self->srv, SIOCATMARK, &mark));
			if (ret != -ENXIO || !mark)
				break;
			at_mark++;
		}
		if (ret != -ENXIO) {
			ASSERT_EQ(-EAGAIN, ret) TH_LOG("%s", errno_str(-ret));
			continue;
		}
		stepped++;
		EXPECT_EQ(-1, recv(self->srv, &c, 1, MSG_DONTWAIT));
		EXPECT_EQ(EAGAIN, errno) TH_LOG("recv() after the failed receive");
		if ((rx_taint() ^ taint) & RX_TAINT_WARN)
			break;
	}
	__atomic_store_n(&t.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	ASSERT_EQ(0, t.err) TH_LOG("remapping the area: %s", strerror(t.err));
	TH_LOG("%lu urgent bytes: %lu receives failed at the mark, %lu after the step; %llu remaps",
	       tries, at_mark, stepped, ZC_U64(t.remaps));
	EXPECT_FALSE((rx_taint() ^ taint) & RX_TAINT_WARN)
		TH_LOG("the kernel warned (its log says what): a used-up skb was left queued");

	/* The stream goes on past the urgent bytes. */
	rx_send(_metadata, self, 0, 100);
	RX_ONCE(&self->rx, 1, 0, 2000, 0);
	EXPECT_EQ(100, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

/* ---- UDP: one datagram per receive, copied ---- */

/* UDP over loopback: cli sends to srv (bound, not connected); a @pages area. */
static void udp_start(struct __test_metadata *_metadata, rx_self *self, int family,
		      size_t pages)
{
	int ret = zc_udp_pair(family, false, &self->cli, &self->srv);

	ASSERT_EQ(0, ret) TH_LOG("loopback UDP sockets: %s", strerror(-ret));
	/* Loopback queues datagrams on the sending CPU: one CPU keeps them in order. */
	zc_pin_cpu(0);
	rx_map(_metadata, self, pages);
	self->rx.udp = true;
}

/* One datagram of the next @len stream bytes (the stream so far: @sent). */
static void udp_send(struct __test_metadata *_metadata, int sock, uint64_t *sent, size_t len)
{
	uint8_t *buf = malloc(len + 1);

	ASSERT_NE(NULL, buf);
	zc_fill(buf, *sent, len);
	EXPECT_EQ(len, send(sock, buf, len, 0)) TH_LOG("a %zu-byte datagram: %s", len,
						       strerror(errno));
	free(buf);
	*sent += len;
}

TEST_F(rx, udp_datagram_eor)
{
	uint64_t sent = 0;

	udp_start(_metadata, self, AF_INET, 4);
	udp_send(_metadata, self->cli, &sent, 100);
	RX_ONCE(&self->rx, 4, 0, 2000, 0);
	EXPECT_EQ(100, self->rx.last_bytes);
	EXPECT_EQ(1, self->rx.last_n);
	EXPECT_EQ(ZCOPY_RX_COPIED | ZCOPY_RX_EOR, self->rx.desc[0].flags);
	check_rx_ledger(_metadata, &self->rx);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

/*
 * A UDP socket of @family with socket option @level/@opt set: a receive
 * is refused (EOPNOTSUPP), the datagram left queued; with it cleared,
 * received.
 */
static void udp_option_refused(struct __test_metadata *_metadata, rx_self *self,
			       int family, int level, int opt)
{
	struct zcopy_rx_desc d[4];
	int on = 1, off = 0, ret;
	struct zcopy_recv r;
	uint64_t sent = 0;

	udp_start(_metadata, self, family, 4);
	ASSERT_EQ(0, setsockopt(self->srv, level, opt, &on, sizeof(on)));
	udp_send(_metadata, self->cli, &sent, 100);
	ret = zc_recv(self->zfd, self->srv, d, 4, 0, 2000, &r);
	EXPECT_EQ(-EOPNOTSUPP, ret) TH_LOG("%s, %llu bytes", errno_str(-ret), ZC_U64(r.bytes));
	ASSERT_EQ(0, setsockopt(self->srv, level, opt, &off, sizeof(off)));
	RX_ONCE(&self->rx, 4, 0, 2000, 0);
	EXPECT_EQ(100, self->rx.last_bytes);
	check_rx_ledger(_metadata, &self->rx);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

/*
 * With UDP_GRO a socket's datagrams may come merged, their boundaries in
 * a control message that ZCOPY_IOC_RECV has no room for: refused
 * (EOPNOTSUPP), the datagram left queued; without it, received.
 */
TEST_F(rx, udp_gro_eopnotsupp)
{
	udp_option_refused(_metadata, self, AF_INET, IPPROTO_UDP, UDP_GRO);
}

/*
 * A full area answers ENOSPC before the receive's LSM check, whose peek
 * would take the UDP socket's error: the error (ECONNREFUSED, from the
 * ICMP port unreachable that a send to a closed port brings) is still
 * there for the receive after a release.
 */
TEST_F(rx, udp_full_area_keeps_socket_error)
{
	struct sockaddr_storage ss;
	struct zcopy_rx_desc d[4];
	struct pollfd pfd;
	struct zcopy_recv r;
	uint64_t sent = 0;
	socklen_t sl;
	int closed;

	udp_start(_metadata, self, AF_INET, 1);
	udp_send(_metadata, self->cli, &sent, 100);
	RX_ONCE(&self->rx, 4, 0, 2000, 0);
	ASSERT_EQ(100, self->rx.last_bytes);

	closed = zc_bind(AF_INET, SOCK_DGRAM, "127.0.0.1", 0);
	ASSERT_LE(0, closed);
	sl = zc_sockaddr(AF_INET, "127.0.0.1", zc_port(closed), &ss);
	close(closed);
	ASSERT_EQ(0, connect(self->srv, (struct sockaddr *)&ss, sl));
	ASSERT_EQ(1, send(self->srv, "x", 1, 0));
	pfd = (struct pollfd){ .fd = self->srv, .events = POLLIN };
	ASSERT_EQ(1, poll(&pfd, 1, 2000));
	ASSERT_TRUE(pfd.revents & POLLERR) TH_LOG("no ICMP error came back");

	EXPECT_EQ(-ENOSPC, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	EXPECT_EQ(-ECONNREFUSED, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r));
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * With IPV6_RECVPATHMTU a socket's path MTU notices come from recvmsg(),
 * and the receive's LSM check would take them: refused (EOPNOTSUPP), the
 * datagram left queued; without it, received.
 */
TEST_F(rx, udp_recvpathmtu_eopnotsupp)
{
	udp_option_refused(_metadata, self, AF_INET6, IPPROTO_IPV6, IPV6_RECVPATHMTU);
}

struct stalled_recv {
	int zfd;
	struct zcopy_recv r;
	int ret;
};

static void *stalled_recv_main(void *arg)
{
	struct stalled_recv *s = arg;

	s->ret = zc_recv_args(s->zfd, &s->r);
	return NULL;
}

/*
 * IPV6_RECVPATHMTU set, and a notice queued, while a receive waits to read
 * its release list (a page under userfaultfd): the receive releases the
 * slot and is refused (EOPNOTSUPP), before its LSM check's peek would take
 * the notice; recvmsg() then gets it.
 */
TEST_F(rx, udp_recvpathmtu_set_during_release)
{
	struct zcopy_rx_desc d[4];
	struct stalled_recv s = { .zfd = self->zfd };
	struct uffdio_copy copy;
	struct sockaddr_in6 dst;
	socklen_t sl = sizeof(dst);
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(struct ip6_mtuinfo))];
	} cbuf;
	char byte, *big;
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = &cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	uint64_t sent = 0, *rel, *page;
	int on = 1, uffd;
	pthread_t th;

	udp_start(_metadata, self, AF_INET6, 4);
	udp_send(_metadata, self->cli, &sent, 100);
	RX_ONCE(&self->rx, 4, 0, 2000, 0);
	ASSERT_EQ(1, self->rx.nslots);
	rel = zc_map(self->ps);
	page = zc_map(self->ps);
	ASSERT_NE(NULL, rel);
	ASSERT_NE(NULL, page);
	uffd = zc_uffd_open(rel, self->ps);
	if (uffd < 0)
		SKIP(return, "no userfaultfd: %s", strerror(-uffd));

	s.r = (struct zcopy_recv){ .sockfd = self->srv, .flags = ZCOPY_RECV_DONTWAIT,
				   .desc = (uintptr_t)d, .desc_count = 4,
				   .release = (uintptr_t)rel, .release_count = 1 };
	ASSERT_EQ(0, pthread_create(&th, NULL, stalled_recv_main, &s));
	ASSERT_EQ((uintptr_t)rel, zc_uffd_next_fault(uffd, -1))
		TH_LOG("the receive did not read its release list");

	/* Too big for loopback's MTU, and not to be fragmented: a notice. */
	ASSERT_EQ(0, setsockopt(self->srv, IPPROTO_IPV6, IPV6_RECVPATHMTU, &on, sizeof(on)));
	ASSERT_EQ(0, setsockopt(self->srv, IPPROTO_IPV6, IPV6_DONTFRAG, &on, sizeof(on)));
	ASSERT_EQ(0, getsockname(self->cli, (struct sockaddr *)&dst, &sl));
	big = calloc(1, 65500);
	ASSERT_NE(NULL, big);
	EXPECT_EQ(-1, sendto(self->srv, big, 65500, 0, (struct sockaddr *)&dst, sl));
	EXPECT_EQ(EMSGSIZE, errno);
	free(big);

	page[0] = self->rx.slots[0].area_off;
	copy = (struct uffdio_copy){ .dst = (uintptr_t)rel, .src = (uintptr_t)page,
				     .len = self->ps };
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_COPY, &copy));
	pthread_join(th, NULL);
	EXPECT_EQ(-EOPNOTSUPP, s.ret) TH_LOG("%s", errno_str(-s.ret));
	rt_rx_forget(&self->rx, 1);

	ASSERT_EQ(0, recvmsg(self->srv, &mh, MSG_DONTWAIT))
		TH_LOG("recvmsg: %s, not the notice", strerror(errno));
	cm = CMSG_FIRSTHDR(&mh);
	ASSERT_NE(NULL, cm);
	EXPECT_EQ(IPPROTO_IPV6, cm->cmsg_level);
	EXPECT_EQ(IPV6_PATHMTU, cm->cmsg_type);
	check_rx_ledger(_metadata, &self->rx);
	close(uffd);
	zc_unmap(rel, self->ps);
	zc_unmap(page, self->ps);
}

/* The Internet checksum of @len bytes at @p, from @sum. */
static uint32_t csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += b[i] << 8 | b[i + 1];
	if (len & 1)
		sum += b[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/*
 * A datagram with a bad checksum is dropped, as recv(2) drops it, even one
 * too big for the receive, which would fail with EMSGSIZE and leave it
 * queued: the next datagram is received. The bad one is made by hand, on
 * a raw socket, with its checksum one off.
 */
TEST_F(rx, udp_bad_checksum_dropped_whatever_its_size)
{
	size_t len = 2 * self->ps, total = sizeof(struct iphdr) + sizeof(struct udphdr) + len;
	struct sockaddr_in dst;
	socklen_t sl = sizeof(dst);
	struct udphdr *uh;
	struct iphdr *ip;
	uint64_t sent = 0;
	uint8_t *pkt;
	uint32_t sum;
	int raw;

	udp_start(_metadata, self, AF_INET, 4);
	ASSERT_EQ(0, getsockname(self->srv, (struct sockaddr *)&dst, &sl));
	raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (raw < 0)
		SKIP(return, "no raw socket: %s", strerror(errno));
	pkt = calloc(1, total);
	ASSERT_NE(NULL, pkt);
	ip = (struct iphdr *)pkt;
	uh = (struct udphdr *)(ip + 1);
	*ip = (struct iphdr){
		.version = 4, .ihl = 5, .ttl = 64, .protocol = IPPROTO_UDP,
		.tot_len = htons(total), .saddr = dst.sin_addr.s_addr,
		.daddr = dst.sin_addr.s_addr,
	};
	*uh = (struct udphdr){ .source = htons(9), .dest = dst.sin_port,
			       .len = htons(sizeof(*uh) + len) };
	zc_fill(uh + 1, 0, len);
	/* The pseudo-header, then the datagram. */
	sum = csum_add(0, &ip->saddr, 8) + IPPROTO_UDP + sizeof(*uh) + len;
	sum = csum_add(sum, uh, sizeof(*uh) + len);
	uh->check = htons(csum_fold(sum) ^ 1);
	ASSERT_EQ((ssize_t)total, sendto(raw, pkt, total, 0, (struct sockaddr *)&dst, sizeof(dst)))
		TH_LOG("the bad datagram: %s", strerror(errno));
	close(raw);
	free(pkt);
	udp_send(_metadata, self->cli, &sent, 100);

	/* One descriptor: the bad datagram would need two. */
	RX_ONCE(&self->rx, 1, 0, 2000, 0);
	EXPECT_EQ(100, self->rx.last_bytes);
	check_rx_ledger(_metadata, &self->rx);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

/* Datagrams of several pages, the largest there is: whole, in order, EOR last. */
TEST_F(rx, udp_multipage_datagrams)
{
	int fam[] = { AF_INET, AF_INET6 }, i;

	for (i = 0; i < 2; i++) {
		size_t sizes[] = { 2 * self->ps, 10000, zc_udp_max(fam[i]) }, k;
		uint64_t sent = 0;

		udp_start(_metadata, self, fam[i], 20);
		for (k = 0; k < ARRAY_SIZE(sizes); k++) {
			udp_send(_metadata, self->cli, &sent, sizes[k]);
			RX_ONCE(&self->rx, 20, 0, 2000, 0);
			EXPECT_EQ(sizes[k], self->rx.last_bytes) TH_LOG("family %d", fam[i]);
			EXPECT_EQ((sizes[k] + self->ps - 1) / self->ps, self->rx.last_n);
			EXPECT_EQ(0, rt_rx_release_all(&self->rx));
		}
		check_rx_ledger(_metadata, &self->rx);
		EXPECT_EQ(0, fd_stats(_metadata, self->zfd).rx_bytes_mapped);
		close(self->cli);
		close(self->srv);
		self->cli = self->srv = -1;
		munmap(self->area, self->area_pages * self->ps);
		self->area = NULL;
		close(self->zfd);
		self->zfd = zc_open();
		ASSERT_LE(0, self->zfd);
	}
}

TEST_F(rx, udp_one_datagram_per_receive)
{
	size_t sizes[] = { 100, 5000, 7, 3 * self->ps }, k;
	struct zcopy_rx_desc d[16];
	struct zcopy_recv r;
	uint64_t sent = 0;

	udp_start(_metadata, self, AF_INET, 16);
	for (k = 0; k < ARRAY_SIZE(sizes); k++)
		udp_send(_metadata, self->cli, &sent, sizes[k]);
	for (k = 0; k < ARRAY_SIZE(sizes); k++) {
		RX_ONCE(&self->rx, 16, 0, 2000, 0);
		EXPECT_EQ(sizes[k], self->rx.last_bytes) TH_LOG("datagram %zu", k);
	}
	EXPECT_EQ(-EAGAIN, zc_recv(self->zfd, self->srv, d, 16, ZCOPY_RECV_DONTWAIT, 0, &r));
	check_rx_ledger(_metadata, &self->rx);
	EXPECT_EQ(sent, fd_stats(_metadata, self->zfd).rx_bytes_copied);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
}

TEST_F(rx, udp_empty_datagram)
{
	uint64_t sent = 0;

	udp_start(_metadata, self, AF_INET6, 4);
	udp_send(_metadata, self->cli, &sent, 0);
	udp_send(_metadata, self->cli, &sent, 50);
	/* An empty datagram is a receive of 0 bytes with one descriptor. */
	RX_ONCE(&self->rx, 4, 0, 2000, 0);
	EXPECT_EQ(0, self->rx.last_bytes);
	EXPECT_EQ(1, self->rx.last_n);
	EXPECT_EQ(ZCOPY_RX_COPIED | ZCOPY_RX_EOR, self->rx.desc[0].flags);
	EXPECT_EQ(0, self->rx.desc[0].len);
	RX_ONCE(&self->rx, 4, 0, 2000, 0);
	EXPECT_EQ(50, self->rx.last_bytes);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * Datagrams go to new pages (never spares): past the bytes of a partial
 * last page, and all of an empty datagram's, they read zero. On kernels
 * that clear pages as they allocate them (init_on_alloc, as Debian's
 * do) a missing clear would pass unseen; elsewhere the twelve pages
 * received and freed first are likely the ones allocated next.
 */
TEST_F(rx, udp_slot_tail_reads_zero)
{
	size_t lens[] = { 5000, 0, 100 }, k;
	uint64_t sent = 0;

	udp_start(_metadata, self, AF_INET, 16);
	for (k = 0; k < ARRAY_SIZE(lens); k++) {
		udp_send(_metadata, self->cli, &sent, 12 * self->ps);
		RX_ONCE(&self->rx, 16, 0, 2000, 0);
		ASSERT_EQ(0, rt_rx_release_all(&self->rx));
		udp_send(_metadata, self->cli, &sent, lens[k]);
		RX_ONCE(&self->rx, 16, 0, 2000, 0);
		EXPECT_EQ(lens[k], self->rx.last_bytes);
		ASSERT_EQ(0, rt_rx_release_all(&self->rx));
	}
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * SO_PEEK_OFF moves where MSG_PEEK looks, not which datagram comes next: a
 * receive still takes the datagram at the head, whole, and moves the peek
 * offset back by its length as recv(2) does. One set past everything
 * queued neither hides a datagram nor makes the receive spin.
 */
/*
 * SO_PEEK_OFF on TCP (6.10 on): what a receive takes comes off the peek
 * offset, as what recv(2) takes does, so the next peek goes on from the
 * first byte not yet peeked.
 */
TEST_F(rx, tcp_peek_off_follows_receive)
{
	int zero = 0, off = -1;
	socklen_t sl = sizeof(off);
	uint8_t buf[100];

	rx_start(_metadata, self, AF_INET, 4);
	if (setsockopt(self->srv, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)))
		SKIP(return, "TCP has no SO_PEEK_OFF here: %s", strerror(errno));
	rx_send(_metadata, self, 0, 300);
	ASSERT_EQ(100, recv(self->srv, buf, 100, MSG_PEEK | MSG_DONTWAIT));
	RX_ONCE(&self->rx, 4, ZCOPY_RECV_DONTWAIT, 0, 100);
	EXPECT_EQ(100, self->rx.last_bytes);
	ASSERT_EQ(0, getsockopt(self->srv, SOL_SOCKET, SO_PEEK_OFF, &off, &sl));
	EXPECT_EQ(0, off) TH_LOG("the 100 bytes peeked were taken");
	ASSERT_EQ(100, recv(self->srv, buf, 100, MSG_PEEK | MSG_DONTWAIT));
	EXPECT_EQ(100, zc_check(buf, 100, 100)) TH_LOG("the peek skipped bytes");
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, udp_peek_off_whole_datagrams)
{
	static const int peek_offs[] = { 9000, 1 << 20 };
	struct zcopy_rx_desc d[8];
	struct zcopy_recv r;
	socklen_t sl = sizeof(int);
	uint64_t sent = 0;
	int i, off, ret;

	udp_start(_metadata, self, AF_INET, 8);
	alarm(20);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, setsockopt(self->srv, SOL_SOCKET, SO_PEEK_OFF, &peek_offs[i],
					sizeof(int)));
		udp_send(_metadata, self->cli, &sent, 9000);
		udp_send(_metadata, self->cli, &sent, 100);
		ASSERT_EQ(0, rt_wait_readable(self->srv, 1, 2000));
		RX_ONCE(&self->rx, 8, 0, 2000, 0);
		EXPECT_EQ(9000, self->rx.last_bytes) TH_LOG("SO_PEEK_OFF %d", peek_offs[i]);
		RX_ONCE(&self->rx, 8, 0, 2000, 0);
		EXPECT_EQ(100, self->rx.last_bytes) TH_LOG("SO_PEEK_OFF %d", peek_offs[i]);
		ret = zc_recv(self->zfd, self->srv, d, 8, 0, 200, &r);
		EXPECT_EQ(-EAGAIN, ret) TH_LOG("an empty socket: %s", errno_str(-ret));
		ASSERT_EQ(0, getsockopt(self->srv, SOL_SOCKET, SO_PEEK_OFF, &off, &sl));
		EXPECT_EQ(peek_offs[i] > 9100 ? peek_offs[i] - 9100 : 0, off)
			TH_LOG("the peek offset after 9100 bytes were taken");
		EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	}
	alarm(0);
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * No free slot fails at once, with ENOSPC, as for TCP: not after a wait,
 * nor once a datagram has come.
 */
TEST_F(rx, udp_full_area_enospc)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	uint64_t sent = 0;
	int64_t t0;
	int ret;

	udp_start(_metadata, self, AF_INET, 1);
	udp_send(_metadata, self->cli, &sent, 100);
	ASSERT_EQ(0, rt_wait_readable(self->srv, 1, 2000));
	RX_ONCE(&self->rx, 1, 0, 2000, 0);
	ret = zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 0, &r);
	EXPECT_EQ(-ENOSPC, ret) TH_LOG("an empty socket, DONTWAIT: %s", errno_str(-ret));
	t0 = zc_now_ms();
	ret = zc_recv(self->zfd, self->srv, d, 4, 0, 2000, &r);
	EXPECT_EQ(-ENOSPC, ret) TH_LOG("an empty socket: %s", errno_str(-ret));
	EXPECT_GT(1000, zc_now_ms() - t0) TH_LOG("waited for a datagram it had no room for");
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, udp_too_big_emsgsize_stays_queued)
{
	struct zcopy_rx_desc d[16];
	struct zcopy_recv r;
	uint64_t sent = 0, o;
	int ret;

	udp_start(_metadata, self, AF_INET, 4);
	udp_send(_metadata, self->cli, &sent, 2 * self->ps + 100);
	ASSERT_EQ(0, rt_wait_readable(self->srv, 1, 2000));
	/* Three pages do not fit in one or two descriptors. */
	ret = zc_recv(self->zfd, self->srv, d, 2, 0, 2000, &r);
	EXPECT_EQ(-EMSGSIZE, ret) TH_LOG("2 descriptors: %s", strerror(-ret));
	ret = zc_recv(self->zfd, self->srv, d, 1, ZCOPY_RECV_DONTWAIT, 0, &r);
	EXPECT_EQ(-EMSGSIZE, ret) TH_LOG("1 descriptor: %s", strerror(-ret));
	check_rx_ledger(_metadata, &self->rx);
	/* Still queued: three descriptors take it. */
	RX_ONCE(&self->rx, 3, 0, 2000, 0);
	EXPECT_EQ(2 * self->ps + 100, self->rx.last_bytes);

	/* Two pages with one free slot: EMSGSIZE, until one more is free. */
	udp_send(_metadata, self->cli, &sent, self->ps + 1);
	ret = zc_recv(self->zfd, self->srv, d, 16, 0, 2000, &r);
	EXPECT_EQ(-EMSGSIZE, ret) TH_LOG("2 pages, 1 free slot: %s", strerror(-ret));
	check_rx_ledger(_metadata, &self->rx);
	o = self->rx.slots[0].area_off;
	ASSERT_EQ(0, zc_release(self->zfd, &o, 1));
	rt_rx_forget(&self->rx, 1);
	RX_ONCE(&self->rx, 16, 0, 2000, 0);
	EXPECT_EQ(self->ps + 1, self->rx.last_bytes);

	/* No free slot at all: ENOSPC. */
	ASSERT_EQ(4, self->rx.nslots);
	udp_send(_metadata, self->cli, &sent, 10);
	ret = zc_recv(self->zfd, self->srv, d, 16, 0, 2000, &r);
	EXPECT_EQ(-ENOSPC, ret) TH_LOG("a full area: %s", strerror(-ret));
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	RX_ONCE(&self->rx, 16, 0, 2000, 0);
	EXPECT_EQ(10, self->rx.last_bytes);
	EXPECT_EQ(sent, self->rx.off);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

TEST_F(rx, udp_nonblocking_timeout_blocking)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	int64_t t0, dt;
	pid_t pid;

	udp_start(_metadata, self, AF_INET, 4);
	t0 = zc_now_ms();
	EXPECT_EQ(-EAGAIN, zc_recv(self->zfd, self->srv, d, 4, ZCOPY_RECV_DONTWAIT, 5000, &r));
	EXPECT_GT(2000, zc_now_ms() - t0);
	t0 = zc_now_ms();
	EXPECT_EQ(-EAGAIN, zc_recv(self->zfd, self->srv, d, 4, 0, 300, &r));
	dt = zc_now_ms() - t0;
	EXPECT_LE(250, dt);
	EXPECT_GT(5000, dt) TH_LOG("a 300 ms timeout after %lld ms", (long long)dt);
	ASSERT_EQ(0, fcntl(self->srv, F_SETFL, fcntl(self->srv, F_GETFL) | O_NONBLOCK));
	t0 = zc_now_ms();
	EXPECT_EQ(-EAGAIN, zc_recv(self->zfd, self->srv, d, 4, 0, 5000, &r));
	EXPECT_GT(2000, zc_now_ms() - t0) TH_LOG("O_NONBLOCK waited");
	ASSERT_EQ(0, fcntl(self->srv, F_SETFL, fcntl(self->srv, F_GETFL) & ~O_NONBLOCK));
	/* Blocking: until the datagram comes. */
	t0 = zc_now_ms();
	pid = later(300, LATER_WRITE, self->cli, 0, 1234);
	ASSERT_LT(0, pid);
	RX_ONCE(&self->rx, 4, 0, 10000, 0);
	dt = zc_now_ms() - t0;
	later_done(_metadata, pid);
	EXPECT_EQ(1234, self->rx.last_bytes);
	EXPECT_LE(250, dt);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
}

static long stime_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
}

/*
 * A UDP socket shut down for reading: recv() returns 0 at once. So must
 * ZCOPY_IOC_RECV, without spinning. Should it not return, datagrams sent
 * after 1.5 s end the wait, so that the test ends either way.
 */
TEST_F(rx, udp_shutdown_rd_like_recv)
{
	struct timeval tv = { 1, 0 };
	int ca, sa, ret, status;
	int64_t t0, ta, tb;
	long ra, rb, cpu;
	char buf[128];
	pid_t pid;

	udp_start(_metadata, self, AF_INET, 4);
	ASSERT_EQ(0, zc_udp_pair(AF_INET, true, &ca, &sa));
	ASSERT_EQ(0, setsockopt(sa, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	ASSERT_EQ(0, setsockopt(self->srv, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	shutdown(sa, SHUT_RD);
	shutdown(self->srv, SHUT_RD);
	t0 = zc_now_ms();
	ret = recv(sa, buf, sizeof(buf), 0);
	ra = ret < 0 ? -errno : ret;
	ta = zc_now_ms() - t0;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		uint8_t rescue[6];
		int k;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		zc_fill(rescue, 0, sizeof(rescue));
		zc_sleep_ms(1500);
		for (k = 0; k < 20; k++) {
			if (send(self->cli, rescue, sizeof(rescue), 0) < 0)
				_exit(1);
			zc_sleep_ms(500);
		}
		_exit(0);
	}
	cpu = stime_us();
	t0 = zc_now_ms();
	ret = rt_rx_once(&self->rx, 4, 0, 0, 0, false);
	tb = zc_now_ms() - t0;
	cpu = stime_us() - cpu;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	rb = ret ? ret : (long)self->rx.last_bytes;
	TH_LOG("after SHUT_RD: recv() gives %ld after %lld ms; ZCOPY_IOC_RECV %ld after %lld ms, %ld ms of system time",
	       ra, (long long)ta, rb, (long long)tb, cpu / 1000);
	EXPECT_FALSE(self->rx.bad) TH_LOG("%s", self->rx.msg);
	EXPECT_EQ(0, ra) TH_LOG("recv() itself");
	EXPECT_EQ(ra, rb) TH_LOG("ZCOPY_IOC_RECV and recv() differ");
	EXPECT_GT(1000, tb) TH_LOG("ZCOPY_IOC_RECV waited %lld ms", (long long)tb);
	EXPECT_GT(500000, cpu) TH_LOG("ZCOPY_IOC_RECV spun in the kernel for %ld ms",
				      cpu / 1000);
	close(ca);
	close(sa);
	rt_rx_release_all(&self->rx);
}

/*
 * The same spin, seen from outside: a receiver in a child, blocked on a
 * UDP socket shut down for reading, must die of SIGKILL, if it did not
 * return end of file (as recv() does) by itself. Datagrams sent later end
 * the wait in any case.
 */
TEST_F(rx, udp_shutdown_rd_receive_killable)
{
	int64_t deadline;
	int status = 0, ca, sa;
	bool alive;
	pid_t pid;

	ASSERT_EQ(0, zc_udp_pair(AF_INET, true, &ca, &sa));
	shutdown(sa, SHUT_RD);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zcopy_rx_desc d[4];
		struct zcopy_recv r;
		int zfd = zc_open();

		if (zfd < 0 || rt_mmap_area(zfd, 4, PROT_READ) == MAP_FAILED)
			_exit(1);
		_exit(zc_recv(zfd, sa, d, 4, 0, 0, &r) || r.bytes ? 2 : 0);
	}
	zc_sleep_ms(300);
	kill(pid, SIGKILL);
	zc_sleep_ms(700);
	alive = waitpid(pid, &status, WNOHANG) == 0;
	/* Datagrams until the child is gone. */
	deadline = zc_now_ms() + 10000;
	while (alive && zc_now_ms() < deadline) {
		send(ca, "x", 1, 0);
		zc_sleep_ms(100);
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
	}
	if (alive && zc_now_ms() >= deadline)
		waitpid(pid, &status, 0);
	EXPECT_FALSE(alive)
		TH_LOG("the receiver outlived SIGKILL by 700 ms, until a datagram came");
	EXPECT_TRUE(WIFSIGNALED(status) ? WTERMSIG(status) == SIGKILL :
		    WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("the receiver's status %#x (exit 1: no area; 2: not end of file)", status);
	close(ca);
	close(sa);
}

/* max_bytes holds for UDP too: a larger datagram is not returned whole. */
TEST_F(rx, udp_max_bytes_respected)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	uint64_t sent = 0;
	int ret;

	udp_start(_metadata, self, AF_INET, 4);
	udp_send(_metadata, self->cli, &sent, 5000);
	ASSERT_EQ(0, rt_wait_readable(self->srv, 1, 2000));
	memset(&r, 0, sizeof(r));
	r.sockfd = self->srv;
	r.desc = (uintptr_t)d;
	r.desc_count = 4;
	r.max_bytes = 100;
	ret = zc_recv_args(self->zfd, &r);
	EXPECT_TRUE(ret == -EMSGSIZE || (!ret && r.bytes <= 100))
		TH_LOG("max_bytes 100, a 5000-byte datagram: %s, %llu bytes in %u descriptors",
		       errno_str(-ret), ZC_U64(r.bytes), r.desc_count);
	if (!ret && r.desc_count) {
		uint64_t offs[4];
		uint32_t i;

		for (i = 0; i < r.desc_count; i++)
			offs[i] = d[i].offset;
		EXPECT_EQ(0, zc_release(self->zfd, offs, r.desc_count));
	}
}

/* ---- mapped: pool pages sent by reference over loopback, page-multiple MSS ---- */

#define MP_POOL_PAGES	60	/* four 15-page segments */
#define MP_AREA_PAGES	128

FIXTURE(mapped)
{
	int ztx;		/* the sender's, with the pool */
	int zrx;		/* the receiver's, with the area */
	size_t ps;
	uint8_t *pool;
	uint8_t *area;
	int cli, srv;
	int lo_mtu;		/* to restore, once changed */
	uint64_t sent;		/* stream bytes sent */
	struct zcopy_stats base;
	struct rt_rx rx;
};

FIXTURE_SETUP(mapped)
{
	uint64_t feat;
	void *p;

	self->zrx = -1;
	self->cli = -1;
	self->srv = -1;
	self->lo_mtu = -1;
	self->pool = NULL;
	self->area = NULL;
	self->ps = zc_page_size();
	signal(SIGPIPE, SIG_IGN);
	self->ztx = zc_open();
	if (self->ztx < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, self->ztx);
	feat = zc_features(self->ztx);
	if (!(feat & ZCOPY_FEAT_RECV) || !(feat & ZCOPY_FEAT_POOL))
		SKIP(return, "the module lacks ZCOPY_FEAT_RECV or ZCOPY_FEAT_POOL");
	self->zrx = zc_open();
	ASSERT_LE(0, self->zrx);
	zc_wait_idle(self->ztx, ZCOPY_STATS_MODULE, 5000, NULL);
	ASSERT_EQ(0, zc_stats(self->ztx, ZCOPY_STATS_MODULE, &self->base));
	p = mmap(NULL, MP_POOL_PAGES * self->ps, PROT_READ | PROT_WRITE, MAP_SHARED, self->ztx,
		 ZCOPY_MMAP_POOL);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap of the pool: %s", strerror(errno));
	self->pool = p;
	p = rt_mmap_area(self->zrx, MP_AREA_PAGES, PROT_READ);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap of the area: %s", strerror(errno));
	self->area = p;
}

FIXTURE_TEARDOWN(mapped)
{
	struct zcopy_stats st;
	int fd, ret;

	rt_rx_free(&self->rx);
	if (self->cli >= 0)
		close(self->cli);
	if (self->srv >= 0)
		close(self->srv);
	if (self->area)
		munmap(self->area, MP_AREA_PAGES * self->ps);
	if (self->pool)
		munmap(self->pool, MP_POOL_PAGES * self->ps);
	if (self->zrx >= 0)
		close(self->zrx);
	if (self->ztx >= 0)
		close(self->ztx);
	if (self->lo_mtu > 0) {
		ret = rt_set_mtu(NULL, "lo", self->lo_mtu);
		EXPECT_EQ(0, ret) TH_LOG("restoring lo's MTU %d", self->lo_mtu);
	}
	fd = zc_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, zc_stats(fd, ZCOPY_STATS_MODULE, &st));
	close(fd);
	EXPECT_EQ(self->base.rx_slots_used, st.rx_slots_used)
		TH_LOG("module-wide rx_slots_used %llu after the test, %llu before",
		       ZC_U64(st.rx_slots_used), ZC_U64(self->base.rx_slots_used));
	EXPECT_EQ(self->base.pool_pages, st.pool_pages)
		TH_LOG("module-wide pool_pages %llu after the test, %llu before",
		       ZC_U64(st.pool_pages), ZC_U64(self->base.pool_pages));
}

typedef FIXTURE_DATA(mapped) mapped_self;

/* lo with a 15-page MSS, then a loopback IPv4 connection and its receiver. */
static void mp_connect(struct __test_metadata *_metadata, mapped_self *self)
{
	int mtu = zc_dev_mtu("lo"), ret;

	ASSERT_LT(0, mtu);
	self->lo_mtu = mtu;
	ret = rt_set_mtu(NULL, "lo", rt_page_mtu(AF_INET));
	ASSERT_EQ(0, ret) TH_LOG("/usr/bin/ip link set lo mtu %d: status %d",
				 rt_page_mtu(AF_INET), ret);
	ret = zc_tcp_pair(AF_INET, 4 << 20, &self->cli, &self->srv);
	ASSERT_EQ(0, ret) TH_LOG("loopback TCP connection: %s", strerror(-ret));
	ASSERT_EQ(0, rt_rx_init(&self->rx, self->zrx, self->srv, false, self->area,
				MP_AREA_PAGES));
}

/* The pool's first @pages pages, rewritten as the next stream bytes, sent by reference. */
static void mp_send(struct __test_metadata *_metadata, mapped_self *self,
		    size_t pages)
{
	size_t len = pages * self->ps;
	int ret;

	zc_fill(self->pool, self->sent, len);
	ret = rt_pool_send(self->ztx, self->cli, 0, len, 0);
	ASSERT_EQ(0, ret) TH_LOG("ZCOPY_IOC_POOL_SEND of %zu pages: %s", pages, strerror(-ret));
	self->sent += len;
}

/* Pages the receiver holds mapped. */
static size_t mp_mapped_slots(const struct rt_rx *rx)
{
	size_t i, n = 0;

	for (i = 0; i < rx->nslots; i++)
		n += !!(rx->slots[i].flags & ZCOPY_RX_MAPPED);
	return n;
}

/* The stream ranges of the copied slots held, as text. */
static void copied_ranges(const struct rt_rx *rx, char *buf, size_t len)
{
	size_t i, o = 0;

	buf[0] = 0;
	for (i = 0; i < rx->nslots && o < len; i++) {
		const struct rt_slot *s = &rx->slots[i];

		if (s->flags & ZCOPY_RX_COPIED)
			o += snprintf(buf + o, len - o, " [%llu, +%u)", ZC_U64(s->stream_off),
				      s->len);
	}
}

/* Receive all that was sent, holding every slot; some pages must be mapped. */
static void mp_recv_all(struct __test_metadata *_metadata, mapped_self *self)
{
	char ranges[512];

	RX_UNTIL(&self->rx, self->sent);
	ASSERT_EQ(self->sent, self->rx.off);
	copied_ranges(&self->rx, ranges, sizeof(ranges));
	TH_LOG("%llu of %llu bytes mapped, %zu slots; copied:%s", ZC_U64(self->rx.mapped),
	       ZC_U64(self->rx.off), self->rx.nslots, ranges);
	ASSERT_LT(0, mp_mapped_slots(&self->rx))
		TH_LOG("no page mapped: pool pages sent by reference over a 15-page MSS arrive copied");
}

/*
 * Every page of the sender's pool went out by reference, so each is held
 * for good (a receiver may keep it), whatever the receiver did since,
 * until a write gives its slot a copy.
 */
static void mp_pool_given(struct __test_metadata *_metadata, mapped_self *self)
{
	struct zcopy_stats st = fd_stats(_metadata, self->ztx);

	EXPECT_EQ(MP_POOL_PAGES, st.pool_pages_in_flight);
}

/* The sender's fd and pool gone: the module's pool_pages back where they were. */
static void mp_close_sender(struct __test_metadata *_metadata, mapped_self *self)
{
	struct zcopy_stats st;
	int fd;

	munmap(self->pool, MP_POOL_PAGES * self->ps);
	self->pool = NULL;
	close(self->ztx);
	self->ztx = -1;
	fd = zc_open();
	ASSERT_LE(0, fd);
	st = rt_module_stats(fd);
	close(fd);
	EXPECT_EQ(self->base.pool_pages, st.pool_pages) TH_LOG("the pool is not freed");
}

static void mp_module_slots(struct __test_metadata *_metadata, mapped_self *self,
			    uint64_t extra)
{
	int64_t deadline = zc_now_ms() + 2000;
	int fd = zc_open();
	struct zcopy_stats st;

	ASSERT_LE(0, fd);
	do {
		st = rt_module_stats(fd);
		if (st.rx_slots_used == self->base.rx_slots_used + extra)
			break;
		zc_sleep_ms(10);
	} while (zc_now_ms() < deadline);
	close(fd);
	EXPECT_EQ(self->base.rx_slots_used + extra, st.rx_slots_used)
		TH_LOG("module-wide rx_slots_used, %llu expected to be held",
		       ZC_U64(extra));
}

/* Shared with the receiving child of read_only_write_faults. */
struct ro_shared {
	int32_t stage;
	char msg[512];
	int32_t mprotect_err;
	int32_t procmem_ret, procmem_err;
	int32_t pvw_ret, pvw_err;
	int32_t read_ret, read_err;
	int32_t fault_code;
	uint64_t fault_addr;
	uint64_t target;
	uint32_t nslots;
	struct rt_slot slots[MP_AREA_PAGES];
};

static struct ro_shared *ro_sh;

static void ro_segv(int sig, siginfo_t *si, void *uc)
{
	ro_sh->fault_code = si->si_code;
	ro_sh->fault_addr = (uintptr_t)si->si_addr;
	/* SA_RESETHAND: the write faults again, and kills. */
}

/*
 * The receiver, in a child: maps the area, receives and checks it all,
 * tries to write to a mapped page every way it can, and at last with a
 * plain store, which must kill it with SIGSEGV.
 */
static void __noreturn ro_child(mapped_self *self, struct ro_shared *sh)
{
	struct sigaction sa = { .sa_sigaction = ro_segv, .sa_flags = SA_SIGINFO | SA_RESETHAND };
	struct iovec local, remote;
	struct rt_rx rx;
	uint8_t *area, c = 'X';
	int fd, pfd[2], ret;
	size_t i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ro_sh = sh;
	area = rt_mmap_area(self->zrx, MP_AREA_PAGES, PROT_READ);
	if (area == MAP_FAILED) {
		snprintf(sh->msg, sizeof(sh->msg), "mmap of the area: %s", strerror(errno));
		_exit(1);
	}
	if (rt_rx_init(&rx, self->zrx, self->srv, false, area, MP_AREA_PAGES))
		_exit(1);
	ret = rt_rx_until(&rx, self->sent, ZCOPY_MAX_RX_DESC, 5000, false);
	if (ret || rx.bad) {
		snprintf(sh->msg, sizeof(sh->msg), "receiving: %s %.400s", strerror(-ret),
			 rx.msg);
		_exit(2);
	}
	sh->nslots = rx.nslots;
	memcpy(sh->slots, rx.slots, rx.nslots * sizeof(rx.slots[0]));
	for (i = 0; i < rx.nslots && !(rx.slots[i].flags & ZCOPY_RX_MAPPED); i++)
		;
	if (i == rx.nslots) {
		snprintf(sh->msg, sizeof(sh->msg), "no page mapped of %llu bytes",
			 ZC_U64(rx.off));
		_exit(3);
	}
	sh->target = (uintptr_t)area + rx.slots[i].area_off + 100;
	sh->stage = 1;

	sh->mprotect_err = mprotect(area, MP_AREA_PAGES * zc_page_size(),
				    PROT_READ | PROT_WRITE) ? errno : 0;
	fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	sh->procmem_ret = pwrite(fd, &c, 1, (off_t)sh->target);
	sh->procmem_err = errno;
	close(fd);
	local = (struct iovec){ &c, 1 };
	remote = (struct iovec){ (void *)(uintptr_t)sh->target, 1 };
	sh->pvw_ret = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
	sh->pvw_err = errno;
	if (pipe(pfd) || write(pfd[1], &c, 1) != 1)
		_exit(4);
	sh->read_ret = read(pfd[0], (void *)(uintptr_t)sh->target, 1);
	sh->read_err = errno;
	sh->stage = 2;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	__atomic_store_n((uint8_t *)(uintptr_t)sh->target, c, __ATOMIC_SEQ_CST);
	sh->stage = 3;
	_exit(5);
}

/*
 * The receiver's mappings are read-only: a store kills it with SIGSEGV
 * (SEGV_ACCERR), mprotect, /proc/self/mem, process_vm_writev and read()
 * cannot write either, and neither the received data nor the sender's
 * pool changes.
 */
TEST_F(mapped, read_only_write_faults)
{
	struct ro_shared *sh;
	struct zcopy_stats st;
	int status;
	size_t i, bad;
	pid_t pid;

	mp_connect(_metadata, self);
	mp_send(_metadata, self, MP_POOL_PAGES);
	/* The child maps the area: one mapping at a time. */
	munmap(self->area, MP_AREA_PAGES * self->ps);
	self->area = NULL;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		ro_child(self, sh);
	status = zc_wait_child(pid, 20000);
	ASSERT_LE(2, sh->stage) TH_LOG("the child, status %#x: %s", status, sh->msg);
	EXPECT_EQ(EACCES, sh->mprotect_err) TH_LOG("mprotect(PROT_WRITE): %s",
						   errno_str(sh->mprotect_err));
	EXPECT_EQ(-1, sh->procmem_ret) TH_LOG("a write through /proc/self/mem went through");
	EXPECT_EQ(-1, sh->pvw_ret) TH_LOG("process_vm_writev() into the area went through");
	EXPECT_EQ(EFAULT, sh->pvw_err);
	EXPECT_EQ(-1, sh->read_ret) TH_LOG("read() into the area went through");
	EXPECT_EQ(EFAULT, sh->read_err);
	EXPECT_NE(3, sh->stage) TH_LOG("a store to a mapped page went through");
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV)
		TH_LOG("the child's status %#x, not killed by SIGSEGV", status);
	EXPECT_EQ(SEGV_ACCERR, sh->fault_code) TH_LOG("si_code %d", sh->fault_code);
	EXPECT_EQ(sh->target, sh->fault_addr);

	/* The slots outlive the child's mapping, as they were received. */
	self->area = rt_mmap_area(self->zrx, MP_AREA_PAGES, PROT_READ);
	ASSERT_NE(MAP_FAILED, self->area) TH_LOG("mmap again: %s", strerror(errno));
	for (i = 0; i < sh->nslots; i++) {
		const struct rt_slot *s = &sh->slots[i];

		bad = zc_check(self->area + s->area_off, s->stream_off, s->len);
		EXPECT_EQ(s->len, bad) TH_LOG("slot %#llx (flags %#x) changed at byte %zu",
					      ZC_U64(s->area_off), s->flags, bad);
	}
	/* The sender's pool still holds what it sent, and nothing was copied. */
	bad = zc_check(self->pool, 0, MP_POOL_PAGES * self->ps);
	EXPECT_EQ(MP_POOL_PAGES * self->ps, bad) TH_LOG("the pool changed at byte %zu", bad);
	st = fd_stats(_metadata, self->ztx);
	EXPECT_EQ(0, st.cow_copies);

	ASSERT_EQ(0, rt_rx_init(&self->rx, self->zrx, self->srv, false, self->area,
				MP_AREA_PAGES));
	for (i = 0; i < sh->nslots; i++) {
		self->rx.slots[i] = sh->slots[i];
		self->rx.busy[sh->slots[i].area_off / self->ps] = 1;
	}
	self->rx.nslots = sh->nslots;
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	munmap(sh, sizeof(*sh));
}

/*
 * Spares fill the whole area (copies, given back); pages sent by reference
 * then take their slots, each spare unmapped and dropped for one: every
 * byte still arrives where its descriptor says (rt_rx_once() checks). A
 * mapped slot given back is gone from the mapping at once.
 */
TEST_F(mapped, spares_make_room_for_mapped_pages)
{
	size_t copied = MP_AREA_PAGES * self->ps, i;
	void *addr = NULL;
	int code = 0, sig;

	mp_connect(_metadata, self);
	ASSERT_EQ(0, rt_write_pattern(self->cli, self->sent, copied));
	self->sent += copied;
	RX_UNTIL(&self->rx, self->sent);
	ASSERT_EQ(0, self->rx.mapped) TH_LOG("write() data mapped: no spare to test");
	ASSERT_EQ(MP_AREA_PAGES, self->rx.nslots);
	ASSERT_EQ(0, rt_rx_release_all(&self->rx));
	EXPECT_EQ(0, fd_stats(_metadata, self->zrx).rx_slots_used);

	mp_send(_metadata, self, MP_POOL_PAGES);
	mp_recv_all(_metadata, self);
	for (i = 0; i < self->rx.nslots && !(self->rx.slots[i].flags & ZCOPY_RX_MAPPED); i++)
		;
	ASSERT_LT(i, self->rx.nslots);
	addr = self->area + self->rx.slots[i].area_off;
	ASSERT_EQ(0, rt_rx_release_all(&self->rx));
	sig = rt_probe(addr, false, &code, &addr);
	EXPECT_TRUE(sig == SIGBUS || sig == SIGSEGV)
		TH_LOG("a read of a released mapped slot: signal %d", sig);
	check_rx_ledger(_metadata, &self->rx);
}

/*
 * The sender rewrites its pool while the receiver has the pages mapped:
 * the pool copies each page on write (cow_copies), the receiver keeps the
 * bytes it received, in the very pages the sender sent.
 */
TEST_F(mapped, sender_overwrite_copies_on_write)
{
	uint64_t total = MP_POOL_PAGES * self->ps, c0, pfn_area, pfn_pool;
	size_t i, mapped, same = 0, bad;
	struct zcopy_stats st;
	bool pfns = true;

	mp_connect(_metadata, self);
	mp_send(_metadata, self, MP_POOL_PAGES);
	mp_recv_all(_metadata, self);
	mapped = mp_mapped_slots(&self->rx);

	/* A mapped slot is the sender's pool page itself. */
	for (i = 0; i < self->rx.nslots; i++) {
		const struct rt_slot *s = &self->rx.slots[i];

		if (!(s->flags & ZCOPY_RX_MAPPED))
			continue;
		ASSERT_EQ(0, s->stream_off % self->ps) TH_LOG("a mapped page mid-page");
		pfn_area = rt_pfn(self->area + s->area_off);
		pfn_pool = rt_pfn(self->pool + s->stream_off);
		if (!pfn_area || !pfn_pool) {
			pfns = false;
			break;
		}
		same += pfn_area == pfn_pool;
	}
	if (!pfns)
		TH_LOG("/proc/self/pagemap shows no PFNs: not compared");
	EXPECT_TRUE(!pfns || mapped == same)
		TH_LOG("%zu of %zu mapped slots are the pool's page", same, mapped);

	c0 = fd_stats(_metadata, self->ztx).cow_copies;
	zc_fill(self->pool, total, total);
	st = fd_stats(_metadata, self->ztx);
	/* Sent by reference: each page copies on its next write, once. */
	EXPECT_EQ(MP_POOL_PAGES, st.cow_copies - c0);
	bad = zc_check(self->pool, total, total);
	EXPECT_EQ(total, bad) TH_LOG("the pool does not read back its new bytes at %zu", bad);
	EXPECT_EQ(0, rt_rx_recheck(&self->rx, self->area)) TH_LOG("%s", self->rx.msg);
	if (pfns) {
		for (i = 0; i < self->rx.nslots; i++) {
			const struct rt_slot *s = &self->rx.slots[i];

			if (!(s->flags & ZCOPY_RX_MAPPED))
				continue;
			EXPECT_NE(rt_pfn(self->area + s->area_off),
				  rt_pfn(self->pool + s->stream_off))
				TH_LOG("slot %#llx: still the pool's page after its write",
				       ZC_U64(s->area_off));
		}
	}

	/* The new bytes go out and arrive in turn, the old ones released first. */
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	mp_send(_metadata, self, MP_POOL_PAGES);
	mp_recv_all(_metadata, self);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);
	mp_pool_given(_metadata, self);
}

/* Closing the socket leaves the slots, their data and their counts. */
TEST_F(mapped, close_socket_keeps_slots)
{
	struct zcopy_stats st;
	size_t mapped;

	mp_connect(_metadata, self);
	mp_send(_metadata, self, MP_POOL_PAGES);
	mp_recv_all(_metadata, self);
	mapped = mp_mapped_slots(&self->rx);
	close(self->srv);
	self->srv = -1;
	close(self->cli);
	self->cli = -1;
	EXPECT_EQ(0, rt_rx_recheck(&self->rx, self->area)) TH_LOG("%s", self->rx.msg);
	check_rx_ledger(_metadata, &self->rx);
	mp_module_slots(_metadata, self, self->rx.nslots);
	/* The receiver holds the sender's pages. */
	st = fd_stats(_metadata, self->ztx);
	EXPECT_LE(mapped, st.pool_pages_in_flight);
	EXPECT_EQ(0, rt_rx_release_all(&self->rx));
	mp_module_slots(_metadata, self, 0);
	mp_pool_given(_metadata, self);
	mp_close_sender(_metadata, self);
}

/* munmap() and close() of the receiver's fd: every slot and page let go. */
TEST_F(mapped, close_fd_after_munmap_frees_slots)
{
	size_t held;

	mp_connect(_metadata, self);
	mp_send(_metadata, self, MP_POOL_PAGES);
	mp_recv_all(_metadata, self);
	held = self->rx.nslots;
	ASSERT_EQ(0, munmap(self->area, MP_AREA_PAGES * self->ps));
	self->area = NULL;
	mp_module_slots(_metadata, self, held);
	ASSERT_EQ(0, close(self->zrx));
	self->zrx = -1;
	mp_module_slots(_metadata, self, 0);
	mp_pool_given(_metadata, self);
	mp_close_sender(_metadata, self);
}

/* close() first: the mapping keeps the area, and its data, until munmap(). */
TEST_F(mapped, close_fd_while_mapped_keeps_area)
{
	size_t held;

	mp_connect(_metadata, self);
	mp_send(_metadata, self, MP_POOL_PAGES);
	mp_recv_all(_metadata, self);
	held = self->rx.nslots;
	ASSERT_EQ(0, close(self->zrx));
	self->zrx = -1;
	EXPECT_EQ(0, rt_rx_recheck(&self->rx, self->area)) TH_LOG("%s", self->rx.msg);
	ASSERT_EQ(0, madvise(self->area, MP_AREA_PAGES * self->ps, MADV_DONTNEED));
	EXPECT_EQ(0, rt_rx_recheck(&self->rx, self->area)) TH_LOG("%s", self->rx.msg);
	mp_module_slots(_metadata, self, held);
	ASSERT_EQ(0, munmap(self->area, MP_AREA_PAGES * self->ps));
	self->area = NULL;
	mp_module_slots(_metadata, self, 0);
	mp_pool_given(_metadata, self);
	mp_close_sender(_metadata, self);
}

/* Shared with the receiving child of the exit tests. */
struct exit_shared {
	int32_t stage;		/* 1: received, holding; 2: in a blocking receive */
	uint32_t nslots;
	uint64_t mapped;
	char msg[512];
};

/* A receiver with its own fd and area; holds what it got, then @kill: blocks. */
static void __noreturn exit_child(mapped_self *self, struct exit_shared *sh,
				  int go, bool kill)
{
	struct zcopy_rx_desc d[4];
	struct zcopy_recv r;
	struct rt_rx rx;
	uint8_t *area;
	int zfd, ret;
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	zfd = zc_open();
	area = rt_mmap_area(zfd, MP_AREA_PAGES, PROT_READ);
	if (zfd < 0 || area == MAP_FAILED) {
		snprintf(sh->msg, sizeof(sh->msg), "open or mmap: %s", strerror(errno));
		_exit(1);
	}
	if (rt_rx_init(&rx, zfd, self->srv, false, area, MP_AREA_PAGES))
		_exit(1);
	ret = rt_rx_until(&rx, self->sent, ZCOPY_MAX_RX_DESC, 5000, false);
	if (ret || rx.bad) {
		snprintf(sh->msg, sizeof(sh->msg), "receiving: %s %.400s", strerror(-ret),
			 rx.msg);
		_exit(2);
	}
	sh->nslots = rx.nslots;
	sh->mapped = rx.mapped;
	__atomic_store_n(&sh->stage, 1, __ATOMIC_SEQ_CST);
	if (read(go, &c, 1) < 0)
		_exit(3);
	if (!kill)
		_exit(0);
	__atomic_store_n(&sh->stage, 2, __ATOMIC_SEQ_CST);
	zc_recv(zfd, self->srv, d, 4, 0, 0, &r);
	_exit(4);
}

static void exit_test(struct __test_metadata *_metadata, mapped_self *self,
		      bool killed)
{
	int64_t deadline = zc_now_ms() + 10000;
	struct exit_shared *sh;
	struct zcopy_stats st;
	int pfd[2], status;
	pid_t pid;

	mp_connect(_metadata, self);
	mp_send(_metadata, self, MP_POOL_PAGES);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(pfd[1]);
		exit_child(self, sh, pfd[0], killed);
	}
	close(pfd[0]);
	while (__atomic_load_n(&sh->stage, __ATOMIC_SEQ_CST) < 1 && zc_now_ms() < deadline &&
	       waitpid(pid, &status, WNOHANG) == 0)
		zc_sleep_ms(5);
	ASSERT_EQ(1, sh->stage) TH_LOG("the child: %s", sh->msg);
	TH_LOG("the child holds %u slots, %llu bytes mapped", sh->nslots, ZC_U64(sh->mapped));
	ASSERT_LT(0, sh->mapped) TH_LOG("nothing mapped");
	mp_module_slots(_metadata, self, sh->nslots);
	st = fd_stats(_metadata, self->ztx);
	EXPECT_LE(sh->mapped / self->ps, st.pool_pages_in_flight);
	close(pfd[1]);
	if (killed) {
		while (__atomic_load_n(&sh->stage, __ATOMIC_SEQ_CST) < 2 && zc_now_ms() < deadline)
			zc_sleep_ms(5);
		/* Killed in the receive, waiting for data. */
		if (zc_wait_task_in(pid, pid, "sk_wait_data", 10000))
			zc_sleep_ms(200);
		kill(pid, SIGKILL);
	}
	status = zc_wait_child(pid, 10000);
	EXPECT_TRUE(killed ? WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL :
			     WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("the child's status %#x", status);
	mp_module_slots(_metadata, self, 0);
	mp_pool_given(_metadata, self);
	mp_close_sender(_metadata, self);
	munmap(sh, sizeof(*sh));
}

TEST_F(mapped, exit_with_slots_mapped)
{
	exit_test(_metadata, self, false);
}

TEST_F(mapped, killed_in_receive_with_slots_mapped)
{
	exit_test(_metadata, self, true);
}

/* ---- e2e: a stream of megabytes, from a sender in a child, per path ---- */

#define E2E_AREA_PAGES	1024
#define E2E_DESC	256

FIXTURE(e2e)
{
	int zrx;
	size_t ps;
	uint8_t *area;
	int lfd, srv;
	pid_t tx;
	struct rt_tx_res *res;
	int mtu;		/* to restore, once changed */
	struct rt_rx rx;
};

FIXTURE_VARIANT(e2e)
{
	enum zc_path path;
	int family;
	bool pool;		/* pool sends by reference; else send() */
	bool notify;		/* pool sends with records, all ZEROCOPY */
	bool page_mtu;		/* a 15-page MSS on the path */
	uint64_t bytes;
	int mapped_pct;		/* at least this much must arrive mapped; 0: all copied */
};

FIXTURE_VARIANT_ADD(e2e, loopback_v4) {
	.path = ZC_LOOPBACK, .family = AF_INET, .pool = true, .page_mtu = true,
	.bytes = 16 * RT_MIB, .mapped_pct = 90,
};

FIXTURE_VARIANT_ADD(e2e, loopback_v6) {
	.path = ZC_LOOPBACK, .family = AF_INET6, .pool = true, .page_mtu = true,
	.bytes = 16 * RT_MIB, .mapped_pct = 90,
};

FIXTURE_VARIANT_ADD(e2e, veth_v4) {
	.path = ZC_VETH, .family = AF_INET, .pool = true, .page_mtu = true,
	.bytes = 16 * RT_MIB, .mapped_pct = 90,
};

FIXTURE_VARIANT_ADD(e2e, veth_v6) {
	.path = ZC_VETH, .family = AF_INET6, .pool = true, .page_mtu = true,
	.bytes = 16 * RT_MIB, .mapped_pct = 90,
};

FIXTURE_VARIANT_ADD(e2e, nic_v4) {
	.path = ZC_NIC, .family = AF_INET, .pool = true, .bytes = 2 * RT_MIB,
};

FIXTURE_VARIANT_ADD(e2e, nic_v6) {
	.path = ZC_NIC, .family = AF_INET6, .pool = true, .bytes = 2 * RT_MIB,
};

/*
 * Header split: e1000e puts each segment's payload, one page of it at MTU
 * 4148 (IPv4) or 4168 (IPv6), at the start of a page of its own, which the
 * receiver maps: from the sender's pool to the wire by DMA, from the wire
 * into the receiver's mapping, no CPU copy of payload on either side.
 */
FIXTURE_VARIANT_ADD(e2e, nic_4148_v4) {
	.path = ZC_NIC_HS4, .family = AF_INET, .pool = true, .notify = true,
	.bytes = 8 * RT_MIB, .mapped_pct = 99,
};

FIXTURE_VARIANT_ADD(e2e, nic_4168_v6) {
	.path = ZC_NIC_HS6, .family = AF_INET6, .pool = true, .notify = true,
	.bytes = 8 * RT_MIB, .mapped_pct = 99,
};

/* At 9000, two whole pages of each segment's 8948 bytes: 91.5% at most. */
FIXTURE_VARIANT_ADD(e2e, nic_9000_v4) {
	.path = ZC_NIC_JUMBO, .family = AF_INET, .pool = true, .notify = true,
	.bytes = 8 * RT_MIB, .mapped_pct = 90,
};

FIXTURE_VARIANT_ADD(e2e, nic_9000_v6) {
	.path = ZC_NIC_JUMBO, .family = AF_INET6, .pool = true, .notify = true,
	.bytes = 8 * RT_MIB, .mapped_pct = 90,
};

FIXTURE_VARIANT_ADD(e2e, loopback_send_v4) {
	.path = ZC_LOOPBACK, .family = AF_INET, .page_mtu = true, .bytes = 8 * RT_MIB,
};

FIXTURE_VARIANT_ADD(e2e, loopback_send_v6) {
	.path = ZC_LOOPBACK, .family = AF_INET6, .page_mtu = true, .bytes = 8 * RT_MIB,
};

FIXTURE_SETUP(e2e)
{
	const char *why;

	self->zrx = -1;
	self->lfd = -1;
	self->srv = -1;
	self->tx = 0;
	self->mtu = -1;
	self->area = NULL;
	self->ps = zc_page_size();
	self->res = NULL;
	signal(SIGPIPE, SIG_IGN);
	self->zrx = zc_open();
	if (self->zrx < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, self->zrx);
	if ((zc_features(self->zrx) & (ZCOPY_FEAT_RECV | ZCOPY_FEAT_POOL)) !=
	    (ZCOPY_FEAT_RECV | ZCOPY_FEAT_POOL))
		SKIP(return, "the module lacks ZCOPY_FEAT_RECV or ZCOPY_FEAT_POOL");
	why = zc_path_missing(variant->path);
	if (why)
		SKIP(return, "%s", why);
	self->res = mmap(NULL, sizeof(*self->res), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->res);
	self->area = rt_mmap_area(self->zrx, E2E_AREA_PAGES, PROT_READ);
	ASSERT_NE(MAP_FAILED, self->area) TH_LOG("mmap of the area: %s", strerror(errno));
}

static int e2e_set_mtu(enum zc_path path, int mtu)
{
	if (path == ZC_VETH)
		return rt_set_mtu(NULL, "veth0", mtu) ?: rt_set_mtu("vpeer", "veth1", mtu);
	return rt_set_mtu(NULL, zc_path_dev(path), mtu);
}

FIXTURE_TEARDOWN(e2e)
{
	if (self->tx > 0) {
		kill(self->tx, SIGKILL);
		waitpid(self->tx, NULL, 0);
	}
	rt_rx_free(&self->rx);
	if (self->srv >= 0)
		close(self->srv);
	if (self->lfd >= 0)
		close(self->lfd);
	if (self->area && self->area != MAP_FAILED)
		munmap(self->area, E2E_AREA_PAGES * self->ps);
	if (self->zrx >= 0)
		close(self->zrx);
	if (self->res && self->res != MAP_FAILED)
		munmap(self->res, sizeof(*self->res));
	if (self->mtu > 0) {
		int ret = e2e_set_mtu(variant->path, self->mtu);

		EXPECT_EQ(0, ret) TH_LOG("restoring %s's MTU %d", zc_path_dev(variant->path),
					 self->mtu);
	}
}

TEST_F_TIMEOUT(e2e, stream_checked_byte_by_byte, 300)
{
	const char *ip = zc_local_ip(variant->path, variant->family);
	struct rt_tx_args a = {
		.netns = zc_path_netns(variant->path),
		.family = variant->family,
		.ip = ip,
		.total = variant->bytes,
		.pool = variant->pool,
		.notify = variant->notify,
		.pool_pages = 240,
		.chunk_pages = 60,
	};
	struct zcopy_stats st;
	int64_t t0, dt;
	int ret, status;

	if (variant->page_mtu) {
		int mtu = zc_dev_mtu(zc_path_dev(variant->path));

		ASSERT_LT(0, mtu);
		self->mtu = mtu;
		ret = e2e_set_mtu(variant->path, rt_page_mtu(variant->family));
		ASSERT_EQ(0, ret) TH_LOG("setting the MTU of %s to %d", zc_path_dev(variant->path),
					 rt_page_mtu(variant->family));
	}
	self->lfd = zc_bind(variant->family, SOCK_STREAM, ip, 4 << 20);
	ASSERT_LE(0, self->lfd) TH_LOG("listening on %s: %s", ip, strerror(-self->lfd));
	a.port = zc_port(self->lfd);
	t0 = zc_now_ms();
	self->tx = rt_tx_start(&a, self->res);
	ASSERT_LT(0, self->tx);
	self->srv = zc_accept(self->lfd, 10000);
	ASSERT_LE(0, self->srv) TH_LOG("accept: %s; the sender: %s %s", strerror(-self->srv),
				       self->res->what, errno_str(self->res->err));
	ASSERT_EQ(0, rt_rx_init(&self->rx, self->zrx, self->srv, false, self->area,
				E2E_AREA_PAGES));

	/* Receive to EOF, each call releasing the slots of the one before. */
	for (;;) {
		ret = rt_rx_once(&self->rx, E2E_DESC, 0, 20000, 0, true);
		ASSERT_EQ(0, ret) TH_LOG("ZCOPY_IOC_RECV at byte %llu: %s; the sender: %s %s",
					 ZC_U64(self->rx.off), strerror(-ret), self->res->what,
					 errno_str(self->res->err));
		ASSERT_FALSE(self->rx.bad) TH_LOG("at byte %llu: %s", ZC_U64(self->rx.off),
						  self->rx.msg);
		if (!self->rx.last_bytes)
			break;
	}
	dt = zc_now_ms() - t0;
	status = zc_wait_child(self->tx, 30000);
	self->tx = 0;
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status) && self->res->done)
		TH_LOG("the sender: status %#x, %s: %s", status, self->res->what,
		       errno_str(self->res->err));
	EXPECT_EQ(variant->bytes, self->res->bytes);
	EXPECT_EQ(variant->bytes, self->rx.off) TH_LOG("bytes received to EOF");
	ASSERT_EQ(0, rt_rx_release_all(&self->rx));
	check_rx_ledger(_metadata, &self->rx);

	TH_LOG("%s %s: %llu bytes in %lld ms, %llu mapped (%.1f%%), %llu copied, %llu receives",
	       zc_path_name(variant->path), variant->family == AF_INET ? "IPv4" : "IPv6",
	       ZC_U64(self->rx.off), (long long)dt, ZC_U64(self->rx.mapped),
	       self->rx.off ? 100.0 * self->rx.mapped / self->rx.off : 0.0,
	       ZC_U64(self->rx.copied), ZC_U64(self->rx.receives));
	if (variant->pool) {
		st = self->res->st;
		TH_LOG("the sender: pool_send_bytes %llu, pool_send_copied_bytes %llu, cow_copies %llu",
		       ZC_U64(st.pool_send_bytes), ZC_U64(st.pool_send_copied_bytes),
		       ZC_U64(st.cow_copies));
		EXPECT_EQ(variant->bytes, st.pool_send_bytes);
		EXPECT_EQ(0, st.pool_send_copied_bytes);
	}
	if (variant->notify) {
		EXPECT_EQ(variant->bytes, self->res->rec_bytes) TH_LOG("bytes the records cover");
		EXPECT_EQ(variant->bytes, self->res->rec_zerocopy)
			TH_LOG("%llu bytes in records that say ZEROCOPY only",
			       ZC_U64(self->res->rec_zerocopy));
	}
	/* What the receiver's ledger says (it agrees with the descriptors). */
	st = fd_stats(_metadata, self->zrx);
	TH_LOG("copied, by cause: linear %llu, partial %llu, unaligned %llu, foreign %llu, cut %llu",
	       ZC_U64(st.rx_copied_linear), ZC_U64(st.rx_copied_partial),
	       ZC_U64(st.rx_copied_unaligned), ZC_U64(st.rx_copied_foreign),
	       ZC_U64(st.rx_copied_cut));
	EXPECT_EQ(st.rx_bytes_copied, st.rx_copied_linear + st.rx_copied_partial +
		  st.rx_copied_unaligned + st.rx_copied_foreign + st.rx_copied_cut)
		TH_LOG("every byte copied has its cause");
	if (variant->mapped_pct) {
		EXPECT_LE(variant->bytes * variant->mapped_pct, st.rx_bytes_mapped * 100)
			TH_LOG("%.1f%% of the bytes mapped, %d%% expected",
			       100.0 * st.rx_bytes_mapped / variant->bytes, variant->mapped_pct);
	} else {
		EXPECT_EQ(0, st.rx_bytes_mapped) TH_LOG("bytes mapped on a path that copies");
		EXPECT_EQ(variant->bytes, st.rx_bytes_copied);
	}
}

/* ---- last: a kTLS socket, whose TCP queue belongs to the TLS layer ---- */

/*
 * With TLS_RX, what the TCP queue holds are TLS records that kTLS
 * decrypts: ZCOPY_IOC_RECV must not take them from under it (it refuses
 * the socket, as a pool send does), and recv() still gets the plaintext.
 */
FIXTURE(ktls)
{
	int unused;
};

FIXTURE_SETUP(ktls)
{
}

FIXTURE_TEARDOWN(ktls)
{
}

TEST_F(ktls, rx_socket_left_to_tls)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info.version = TLS_1_2_VERSION,
		.info.cipher_type = TLS_CIPHER_AES_GCM_128,
	};
	struct timeval tv = { 1, 0 };
	struct pollfd pfd = { 0 };
	struct zcopy_rx_desc d[16];
	int zfd, cli, srv, ret, k;
	struct zcopy_recv r;
	uint8_t buf[2048];
	ssize_t n;

	zfd = zc_open();
	if (zfd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, zfd);
	ASSERT_NE(MAP_FAILED, rt_mmap_area(zfd, 16, PROT_READ));
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &cli, &srv));
	if (setsockopt(cli, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) ||
	    setsockopt(srv, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		SKIP(return, "no kTLS: %s", strerror(errno));
	/* gcm(aes) needs ghash and ctr, which may be modules the VM lacks. */
	if (setsockopt(cli, SOL_TLS, TLS_TX, &ci, sizeof(ci)) ||
	    setsockopt(srv, SOL_TLS, TLS_RX, &ci, sizeof(ci)))
		SKIP(return, "no kTLS with AES-GCM-128: %s", strerror(errno));
	ASSERT_EQ(0, setsockopt(srv, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));

	/* Two records of 1000 bytes, one after the other. */
	for (k = 0; k < 2; k++) {
		ASSERT_EQ(0, rt_write_pattern(cli, k * 1000, 1000));
		pfd = (struct pollfd){ srv, POLLIN, 0 };
		ASSERT_EQ(1, poll(&pfd, 1, 2000)) TH_LOG("record %d not readable", k);
		if (!k) {
			ret = zc_recv(zfd, srv, d, 16, ZCOPY_RECV_DONTWAIT, 0, &r);
			EXPECT_NE(0, ret)
				TH_LOG("ZCOPY_IOC_RECV on a kTLS socket took %llu bytes: the TLS record of 1000 bytes, ciphertext",
				       ZC_U64(r.bytes));
			if (!ret && r.desc_count) {
				uint64_t offs[16];
				uint32_t i;

				for (i = 0; i < r.desc_count; i++)
					offs[i] = d[i].offset;
				zc_release(zfd, offs, r.desc_count);
			}
		}
		n = recv(srv, buf, sizeof(buf), 0);
		EXPECT_EQ(1000, n) TH_LOG("recv() of record %d: %s", k,
					  n < 0 ? strerror(errno) : "short");
		if (n == 1000)
			EXPECT_EQ(1000, zc_check(buf, k * 1000, 1000)) TH_LOG("record %d", k);
	}
	close(cli);
	close(srv);
	close(zfd);
}

struct blocked_rx_arg {
	int zfd, sock;
	int ret;
	pid_t tid;
	uint64_t bytes;
};

static void *blocked_rx(void *p)
{
	struct blocked_rx_arg *a = p;
	struct zcopy_rx_desc d[16];
	struct zcopy_recv r;

	__atomic_store_n(&a->tid, gettid(), __ATOMIC_RELEASE);
	a->ret = zc_recv(a->zfd, a->sock, d, 16, 0, 5000, &r);
	a->bytes = a->ret ? 0 : r.bytes;
	return NULL;
}

/*
 * blocked_rx() on @a in a thread of its own (@th), once it sleeps in the
 * module, where nothing but the wait for data sleeps: its stack shows the
 * module's functions (never the scheduler's, which stacks leave out).
 * Where the stack cannot be read, 300 ms.
 */
static void blocked_rx_start(struct __test_metadata *_metadata, pthread_t *th,
			     struct blocked_rx_arg *a)
{
	ASSERT_EQ(0, pthread_create(th, NULL, blocked_rx, a));
	while (!__atomic_load_n(&a->tid, __ATOMIC_ACQUIRE))
		zc_sleep_ms(1);
	if (zc_wait_task_in(getpid(), a->tid, "[zcopy]", 3000))
		zc_sleep_ms(300);
}

/*
 * @layer took @a's socket over while blocked_rx() (@th) waited on it, and
 * @len pattern bytes were sent since: the receive must have left them
 * (EOPNOTSUPP), and recv(), through @layer, gets them.
 */
static void taken_over_check(struct __test_metadata *_metadata, pthread_t th,
			     struct blocked_rx_arg *a, size_t len, const char *layer)
{
	struct timeval tv = { 2, 0 };
	uint8_t buf[2048];
	ssize_t n;

	pthread_join(th, NULL);
	EXPECT_EQ(-EOPNOTSUPP, a->ret)
		TH_LOG("the waiting ZCOPY_IOC_RECV returned %s with %llu bytes that were %s's",
		       errno_str(-a->ret), ZC_U64(a->bytes), layer);
	ASSERT_EQ(0, setsockopt(a->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	n = recv(a->sock, buf, sizeof(buf), 0);
	EXPECT_EQ(len, n) TH_LOG("recv() after %s took over: %s", layer,
				 n < 0 ? strerror(errno) : "short");
	if (n == (ssize_t)len)
		EXPECT_EQ(len, zc_check(buf, 0, len));
}

/*
 * A receive already waiting when the socket is handed to kTLS: once woken,
 * it must see that the queue is no longer its own (EOPNOTSUPP) and leave
 * the record to kTLS, which recv() then decrypts.
 */
TEST_F(ktls, installed_while_receive_waits)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info.version = TLS_1_2_VERSION,
		.info.cipher_type = TLS_CIPHER_AES_GCM_128,
	};
	struct blocked_rx_arg a = { 0 };
	int zfd, cli, srv;
	pthread_t th;

	zfd = zc_open();
	if (zfd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, zfd);
	ASSERT_NE(MAP_FAILED, rt_mmap_area(zfd, 16, PROT_READ));
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &cli, &srv));
	a = (struct blocked_rx_arg){ .zfd = zfd, .sock = srv };
	blocked_rx_start(_metadata, &th, &a);

	if (setsockopt(cli, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) ||
	    setsockopt(srv, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		shutdown(srv, SHUT_RDWR);
		pthread_join(th, NULL);
		SKIP(return, "no kTLS: %s", strerror(errno));
	}
	if (setsockopt(cli, SOL_TLS, TLS_TX, &ci, sizeof(ci)) ||
	    setsockopt(srv, SOL_TLS, TLS_RX, &ci, sizeof(ci))) {
		shutdown(srv, SHUT_RDWR);
		pthread_join(th, NULL);
		SKIP(return, "no kTLS with AES-GCM-128: %s", strerror(errno));
	}
	ASSERT_EQ(0, rt_write_pattern(cli, 0, 1000));
	taken_over_check(_metadata, th, &a, 1000, "kTLS");
	close(cli);
	close(srv);
	close(zfd);
}

/* A BPF sockmap, with no program, holding @fd: the map's fd or -errno. */
static int sockmap_with(int fd)
{
	union bpf_attr attr;
	int map, key = 0, err;

	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_SOCKMAP;
	attr.key_size = sizeof(key);
	attr.value_size = sizeof(fd);
	attr.max_entries = 1;
	map = syscall(__NR_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
	if (map < 0)
		return -errno;
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = map;
	attr.key = (uintptr_t)&key;
	attr.value = (uintptr_t)&fd;
	attr.flags = BPF_ANY;
	if (syscall(__NR_bpf, BPF_MAP_UPDATE_ELEM, &attr, sizeof(attr))) {
		err = -errno;
		close(map);
		return err;
	}
	return map;
}

/*
 * A UDP receive already waiting when a BPF sockmap takes the socket over:
 * once woken it leaves the datagram to the sockmap's receive path
 * (EOPNOTSUPP), as a TCP one leaves a record to kTLS, and recv() gets it.
 */
TEST(udp_sockmap_installed_while_receive_waits)
{
	struct blocked_rx_arg a = { 0 };
	int zfd, tx, rx, map, ret;
	uint8_t buf[100];
	pthread_t th;

	zfd = zc_open();
	if (zfd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, zfd);
	ASSERT_NE(MAP_FAILED, rt_mmap_area(zfd, 16, PROT_READ));
	ret = zc_udp_pair(AF_INET, false, &tx, &rx);
	ASSERT_EQ(0, ret) TH_LOG("loopback UDP sockets: %s", strerror(-ret));
	a = (struct blocked_rx_arg){ .zfd = zfd, .sock = rx };
	blocked_rx_start(_metadata, &th, &a);

	map = sockmap_with(rx);
	if (map < 0) {
		shutdown(rx, SHUT_RDWR);
		pthread_join(th, NULL);
		SKIP(return, "no BPF sockmap of UDP sockets: %s", strerror(-map));
	}
	zc_fill(buf, 0, 100);
	ASSERT_EQ(100, send(tx, buf, 100, 0));
	taken_over_check(_metadata, th, &a, 100, "the sockmap");
	close(map);
	close(tx);
	close(rx);
	close(zfd);
}

TEST_HARNESS_MAIN
