// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection over every allocation zcopy makes, or makes the kernel
 * make on its behalf, in each entry point: the Nth allocation with
 * zcopy.ko on the stack fails (failslab and fail_page_alloc, aimed by
 * /proc/thread-self/fail-nth and a stack filter on the module's text), for
 * N = 1, 2, ... until the call completes without reaching its Nth. Each
 * failed call must fail with an errno and leave nothing behind: no pinned
 * page, no send or pool page in flight, no slot in use, and no byte of the
 * stream lost or changed. kmemleak (run_tests.sh) catches what leaks.
 *
 * Needs CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC,
 * CONFIG_FAULT_INJECTION_DEBUG_FS and CONFIG_FAULT_INJECTION_STACKTRACE_FILTER:
 * the debug kernel of make check-debug. Stock kernels SKIP.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "zcopy_test_util.h"

#define DBG		"/sys/kernel/debug"
#define MAX_NTH		2000
#define ZC_FAULT_DESC	8

/* Errors an allocation failure may surface as. */
static bool alloc_errno(int e)
{
	return e == ENOMEM || e == ENOBUFS || e == EAGAIN || e == EFAULT;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		ret = -errno;
	close(fd);
	return ret;
}

static int write_ul(const char *path, unsigned long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lu", v);
	return write_str(path, buf);
}

/* zcopy.ko's core memory, text first: [start, end). */
static int module_range(unsigned long *start, unsigned long *end)
{
	unsigned long size, addr;
	char line[256], name[64];
	FILE *f = fopen("/proc/modules", "r");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %lu %*s %*s %*s %lx", name, &size, &addr) == 3 &&
		    !strcmp(name, "zcopy")) {
			*start = addr;
			*end = addr + size;
			ret = addr ? 0 : -EPERM;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* Aim failslab and fail_page_alloc at allocations with zcopy on the stack. */
static int aim(const char *dir, unsigned long start, unsigned long end)
{
	static const char * const zero[] = { "probability", "verbose", "ignore-gfp-wait" };
	char path[128];
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(zero); i++) {
		snprintf(path, sizeof(path), DBG "/%s/%s", dir, zero[i]);
		ret = write_str(path, "0");
		if (ret)
			return ret;
	}
	snprintf(path, sizeof(path), DBG "/%s/ignore-gfp-highmem", dir);
	write_str(path, "0");	/* fail_page_alloc only */
	snprintf(path, sizeof(path), DBG "/%s/min-order", dir);
	write_str(path, "0");	/* fail_page_alloc only */
	snprintf(path, sizeof(path), DBG "/%s/times", dir);
	write_str(path, "-1");
	snprintf(path, sizeof(path), DBG "/%s/stacktrace-depth", dir);
	ret = write_ul(path, 32);
	snprintf(path, sizeof(path), DBG "/%s/require-start", dir);
	ret = ret ?: write_ul(path, start);
	snprintf(path, sizeof(path), DBG "/%s/require-end", dir);
	ret = ret ?: write_ul(path, end);
	return ret;
}

static void set_fail_nth(unsigned int n)
{
	char buf[16];
	int fd = open("/proc/thread-self/fail-nth", O_RDWR);

	if (fd < 0)
		return;
	snprintf(buf, sizeof(buf), "%u", n);
	if (write(fd, buf, strlen(buf)) < 0)
		n = 0;
	close(fd);
}

/* What is left of the count: 0 once the Nth allocation failed. Resets it. */
static unsigned int take_fail_nth(void)
{
	char buf[16] = "";
	int fd = open("/proc/thread-self/fail-nth", O_RDWR);
	unsigned int left = 0;

	if (fd < 0)
		return 0;
	if (read(fd, buf, sizeof(buf) - 1) > 0)
		left = strtoul(buf, NULL, 10);
	if (write(fd, "0", 1) < 0)
		left = 0;
	close(fd);
	return left;
}

FIXTURE(fault) {
	int zfd;
	int tx, rx;	/* a TCP connection over loopback */
	size_t ps;
};

FIXTURE_SETUP(fault)
{
	unsigned long start = 0, end = 0;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int l;

	self->zfd = self->tx = self->rx = -1;
	self->ps = zc_page_size();
	if (access(DBG "/failslab", F_OK))
		mount("debugfs", DBG, "debugfs", 0, NULL);
	if (access(DBG "/failslab/require-start", F_OK) ||
	    access(DBG "/fail_page_alloc", F_OK) ||
	    access("/proc/thread-self/fail-nth", F_OK))
		SKIP(return, "no failslab, fail_page_alloc and stack filter (make check-debug)");
	ASSERT_EQ(0, module_range(&start, &end));
	ASSERT_EQ(0, aim("failslab", start, end));
	ASSERT_EQ(0, aim("fail_page_alloc", start, end));

	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, bind(l, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, listen(l, 1));
	ASSERT_EQ(0, getsockname(l, (struct sockaddr *)&a, &len));
	self->tx = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_EQ(0, connect(self->tx, (struct sockaddr *)&a, sizeof(a)));
	self->rx = accept(l, NULL, NULL);
	ASSERT_LE(0, self->rx);
	close(l);
}

FIXTURE_TEARDOWN(fault)
{
	take_fail_nth();
	if (self->tx >= 0)
		close(self->tx);
	if (self->rx >= 0)
		close(self->rx);
	if (self->zfd >= 0)
		close(self->zfd);
}

/* Read @len bytes from @fd and fold them into @h. */
static int drain(int fd, size_t len, uint64_t *h)
{
	char buf[16384];
	ssize_t n;

	while (len) {
		n = read(fd, buf, len < sizeof(buf) ? len : sizeof(buf));
		if (n <= 0)
			return -1;
		*h = zc_fnv(*h, buf, n);
		len -= n;
	}
	return 0;
}

/* Read the completion records there are, so that they never fill up. */
static void drain_records(int zfd)
{
	struct zcopy_completion c[64];
	int fl = fcntl(zfd, F_GETFL);

	fcntl(zfd, F_SETFL, fl | O_NONBLOCK);
	while (read(zfd, c, sizeof(c)) > 0)
		;
	fcntl(zfd, F_SETFL, fl);
}

/* Nothing of this fd's is held: every send completed, nothing pinned. */
static void expect_idle(struct __test_metadata *_metadata, int zfd, unsigned int n)
{
	struct zcopy_stats st;

	ASSERT_EQ(0, zc_wait_idle(zfd, 0, 5000, &st)) TH_LOG("fail-nth %u: not idle", n);
	EXPECT_EQ(0, st.pages_pinned) TH_LOG("fail-nth %u", n);
	EXPECT_EQ(0, st.sends_in_flight) TH_LOG("fail-nth %u", n);
}

/* A pinned send: fails whole, or sends a prefix; the stream stays intact. */
TEST_F(fault, pinned_send)
{
	const size_t len = 3 * self->ps + 100;
	uint64_t hs = ZC_FNV_INIT, hr = ZC_FNV_INIT;
	uint8_t *buf = zc_map(len);
	struct zcopy_iovec iov = { .base = (uintptr_t)buf, .len = len };
	unsigned int n, left = 0, failed = 0;
	struct zcopy_send out;
	int ret;

	ASSERT_NE(NULL, buf);
	for (n = 1; !left && n < MAX_NTH; n++) {
		zc_fill(buf, ZC_SEED(n), len);
		set_fail_nth(n);
		ret = zc_send(self->zfd, self->tx, &iov, 1, 0, n, &out);
		left = take_fail_nth();
		if (ret) {
			failed++;
			EXPECT_TRUE(alloc_errno(-ret)) TH_LOG("fail-nth %u: %s", n, strerror(-ret));
			out.bytes = 0;
		}
		ASSERT_LE(out.bytes, len);
		hs = zc_fnv(hs, buf, out.bytes);
		ASSERT_EQ(0, drain(self->rx, out.bytes, &hr));
		expect_idle(_metadata, self->zfd, n);
		drain_records(self->zfd);
	}
	TH_LOG("%u allocation sites on the way, %u calls failed", n - 2, failed);
	EXPECT_LT(2, n) TH_LOG("no allocation was ever failed");
	EXPECT_NE(0, left) TH_LOG("more than %u allocations", MAX_NTH);
	EXPECT_EQ(hs, hr) TH_LOG("the stream differs from what the sends said they sent");
	zc_unmap(buf, len);
}

/* Opening the device: fails with ENOMEM, or works. */
TEST_F(fault, open)
{
	unsigned int n, left = 0;
	int fd;

	for (n = 1; !left && n < MAX_NTH; n++) {
		set_fail_nth(n);
		fd = open(ZCOPY_DEVICE, O_RDWR);
		left = take_fail_nth();
		EXPECT_TRUE(fd >= 0 || errno == ENOMEM) TH_LOG("fail-nth %u: %s", n, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	EXPECT_LT(2, n) TH_LOG("no allocation was ever failed");
}

/* Creating a pool or a receive area by mmap(): all or nothing. */
static void map_area(struct __test_metadata *_metadata, off_t where, int prot)
{
	const size_t len = 8 * zc_page_size();
	unsigned int n, left = 0;
	uint64_t sink = 0;
	void *p;
	int fd;

	for (n = 1; !left && n < MAX_NTH; n++) {
		fd = zc_open();
		ASSERT_LE(0, fd);
		set_fail_nth(n);
		p = mmap(NULL, len, prot, MAP_SHARED, fd, where);
		left = take_fail_nth();
		EXPECT_TRUE(p != MAP_FAILED || alloc_errno(errno))
			TH_LOG("fail-nth %u: %s", n, strerror(errno));
		if (p != MAP_FAILED) {
			/*
			 * Every page of a pool there, and writable. (A
			 * receive area has no page until a receive fills a
			 * slot: reading an empty one is SIGBUS, by design.)
			 */
			if (prot & PROT_WRITE) {
				memset(p, 0x5a, len);
				sink = zc_fnv(sink, p, len);
			}
			munmap(p, len);
		}
		close(fd);
	}
	EXPECT_LT(2, n) TH_LOG("no allocation was ever failed");
	TH_LOG("%u allocation sites on the way (%llx)", n - 2, ZC_U64(sink));
}

TEST_F(fault, pool_mmap)
{
	map_area(_metadata, ZCOPY_MMAP_POOL, PROT_READ | PROT_WRITE);
}

TEST_F(fault, receive_area_mmap)
{
	map_area(_metadata, ZCOPY_MMAP_RECV, PROT_READ);
}

/* A pool send with a record: fails whole or sends a prefix, and re-arms. */
TEST_F(fault, pool_send)
{
	const size_t len = 4 * self->ps;
	uint64_t hs = ZC_FNV_INIT, hr = ZC_FNV_INIT;
	unsigned int n, left = 0, failed = 0;
	struct zcopy_stats st;
	uint8_t *p;
	int ret;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->zfd, ZCOPY_MMAP_POOL);
	ASSERT_NE(MAP_FAILED, p);
	for (n = 1; !left && n < MAX_NTH; n++) {
		struct zcopy_pool_send s = {
			.sockfd = self->tx, .flags = ZCOPY_POOL_SEND_NOTIFY,
			.offset = 10, .len = len - 10, .cookie = n,
		};

		zc_fill(p, ZC_SEED(n), len);
		set_fail_nth(n);
		ret = ioctl(self->zfd, ZCOPY_IOC_POOL_SEND, &s) ? -errno : 0;
		left = take_fail_nth();
		if (ret) {
			failed++;
			EXPECT_TRUE(alloc_errno(-ret)) TH_LOG("fail-nth %u: %s", n, strerror(-ret));
			s.bytes = 0;
		}
		ASSERT_LE(s.bytes, len - 10);
		hs = zc_fnv(hs, p + 10, s.bytes);
		ASSERT_EQ(0, drain(self->rx, s.bytes, &hr));
		expect_idle(_metadata, self->zfd, n);
		ASSERT_EQ(0, zc_stats(self->zfd, 0, &st));
		EXPECT_EQ(0, st.pool_pages_in_flight) TH_LOG("fail-nth %u", n);
		drain_records(self->zfd);
	}
	TH_LOG("%u allocation sites on the way, %u calls failed", n - 2, failed);
	EXPECT_LT(2, n) TH_LOG("no allocation was ever failed");
	EXPECT_EQ(hs, hr);
	munmap(p, len);
}

/* Release the slots @r filled, folding their bytes into @h. */
static void take_slots(struct __test_metadata *_metadata, int zfd, const uint8_t *area,
		       const struct zcopy_rx_desc *desc, unsigned int n, uint64_t *h)
{
	uint64_t offs[ZC_FAULT_DESC];
	struct zcopy_release rel = { .offsets = (uintptr_t)offs, .count = n };
	unsigned int i;

	for (i = 0; i < n; i++) {
		*h = zc_fnv(*h, area + desc[i].offset, desc[i].len);
		offs[i] = desc[i].offset;
	}
	ASSERT_EQ(0, ioctl(zfd, ZCOPY_IOC_RELEASE, &rel));
}

/*
 * A receive into the area: the first receive of each chunk runs with the
 * Nth allocation failing; it fails and leaves the data queued, or takes
 * some of it. Receives without a failure then take the rest.
 */
TEST_F(fault, receive)
{
	const size_t ps = self->ps, chunk = 3 * ps + 123;
	uint64_t hs = ZC_FNV_INIT, hr = ZC_FNV_INIT, got;
	struct zcopy_rx_desc desc[ZC_FAULT_DESC];
	unsigned int n, failed = 0;
	bool more = true, inject;
	uint8_t *area, *buf;
	int ret;

	area = mmap(NULL, 64 * ps, PROT_READ, MAP_SHARED, self->zfd, ZCOPY_MMAP_RECV);
	ASSERT_NE(MAP_FAILED, area);
	buf = malloc(chunk);
	ASSERT_NE(NULL, buf);
	for (n = 1; more && n < MAX_NTH; n++) {
		zc_fill(buf, ZC_SEED(n), chunk);
		ASSERT_EQ(chunk, write(self->tx, buf, chunk));
		hs = zc_fnv(hs, buf, chunk);
		inject = true;
		for (got = 0; got < chunk;) {
			struct zcopy_recv r = {
				.sockfd = self->rx, .flags = ZCOPY_RECV_DONTWAIT,
				.desc = (uintptr_t)desc, .desc_count = ZC_FAULT_DESC,
			};

			if (inject)
				set_fail_nth(n);
			ret = ioctl(self->zfd, ZCOPY_IOC_RECV, &r) ? -errno : 0;
			if (inject && take_fail_nth())
				more = false;	/* the Nth was never reached */
			inject = false;
			if (ret == -EAGAIN) {
				zc_sleep_ms(1);
				continue;
			}
			if (ret) {
				failed++;
				ASSERT_TRUE(alloc_errno(-ret))
					TH_LOG("fail-nth %u: %s", n, strerror(-ret));
				continue;
			}
			ASSERT_LT(0, r.bytes) TH_LOG("end of stream");
			take_slots(_metadata, self->zfd, area, desc, r.desc_count, &hr);
			got += r.bytes;
		}
		ASSERT_EQ(chunk, got);
	}
	TH_LOG("%u allocation sites on the way, %u receives failed", n - 2, failed);
	EXPECT_LT(2, n) TH_LOG("no allocation was ever failed");
	EXPECT_EQ(hs, hr) TH_LOG("data lost or changed by a failed receive");
	free(buf);
	munmap(area, 64 * ps);
}

TEST_HARNESS_MAIN
