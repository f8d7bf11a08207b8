// SPDX-License-Identifier: GPL-2.0
/*
 * Every page zcopy allocates for a caller is charged to the caller's memory
 * cgroup: pool pages, copies made on write, and the pages a receive copies
 * into. With CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK (common in
 * containers) the memory cgroup is the only bound on them.
 *
 * Each case moves the test into a cgroup of its own right before the step
 * it measures (sockets made before it charge their queues elsewhere), and
 * compares memory.current across that step.
 */
#include <sys/mount.h>
#include <sys/stat.h>

#include <linux/zcopy.h>

#include "kselftest_harness.h"
#include "recv_test_util.h"

#define CG_ROOT		"/sys/fs/cgroup"
#define CG_DIR		CG_ROOT "/zcopy-charge"
#define MIB		(1024 * 1024UL)

static int cg_write(const char *path, const char *what)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, what, strlen(what)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static long long cg_current(void)
{
	char buf[64] = "";
	int fd = open(CG_DIR "/memory.current", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoll(buf) : -1;
}

/* Move this process into (@in) or out of the test's cgroup. */
static int cg_enter(bool in)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%d", getpid());
	return cg_write(in ? CG_DIR "/cgroup.procs" : CG_ROOT "/cgroup.procs", pid);
}

FIXTURE(charge)
{
	int zfd;
	size_t ps;
};

FIXTURE_SETUP(charge)
{
	struct stat sb;

	self->ps = zc_page_size();
	self->zfd = zc_open();
	if (self->zfd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, self->zfd);
	if (stat(CG_ROOT "/cgroup.controllers", &sb) &&
	    mount("none", CG_ROOT, "cgroup2", 0, NULL))
		SKIP(return, "no cgroup2 at " CG_ROOT ": %s", strerror(errno));
	if (cg_write(CG_ROOT "/cgroup.subtree_control", "+memory"))
		SKIP(return, "no memory controller");
	if (mkdir(CG_DIR, 0755) && errno != EEXIST)
		SKIP(return, "mkdir " CG_DIR ": %s", strerror(errno));
}

FIXTURE_TEARDOWN(charge)
{
	if (self->zfd >= 0)
		close(self->zfd);
	cg_enter(false);
	rmdir(CG_DIR);
}

/* At least 90% of @bytes charged: the per-CPU charge batches blur the rest. */
#define EXPECT_CHARGED(before, after, bytes, what)				\
	EXPECT_LE((long long)((bytes) * 9 / 10), (after) - (before))		\
		TH_LOG("%s: %lld bytes charged for %lu", what,			\
		       (long long)((after) - (before)), (unsigned long)(bytes))

TEST_F(charge, pool_pages)
{
	const size_t len = 16 * MIB;
	long long c0, c1;
	void *p;

	ASSERT_EQ(0, cg_enter(true));
	c0 = cg_current();
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->zfd, ZCOPY_MMAP_POOL);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("%s", strerror(errno));
	c1 = cg_current();
	EXPECT_CHARGED(c0, c1, len, "a pool");
	munmap(p, len);
}

TEST_F(charge, copies_on_write)
{
	const size_t len = 4 * MIB;
	int cli, srv, big = 16 * MIB;
	long long c0, c1;
	uint8_t *p;

	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &cli, &srv));
	setsockopt(srv, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(cli, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->zfd, ZCOPY_MMAP_POOL);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 1, len);
	/* By reference to a receiver that reads nothing: every page is held. */
	ASSERT_EQ(0, rt_pool_send(self->zfd, cli, 0, len, 0));
	ASSERT_EQ(0, cg_enter(true));
	c0 = cg_current();
	memset(p, 2, len);
	c1 = cg_current();
	EXPECT_CHARGED(c0, c1, len, "copies made on write");
	munmap(p, len);
	close(cli);
	close(srv);
}

TEST_F(charge, receive_copies)
{
	const size_t len = 4 * MIB, pages = len / self->ps;
	struct zcopy_rx_desc *d = calloc(ZCOPY_MAX_RX_DESC, sizeof(*d));
	int cli, srv, big = 16 * MIB;
	uint64_t got = 0;
	long long c0, c1;

	ASSERT_NE(NULL, d);
	ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &cli, &srv));
	setsockopt(srv, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	ASSERT_NE(MAP_FAILED, rt_mmap_area(self->zfd, pages, PROT_READ));
	/* send() data: it arrives in compound pages, which a receive copies. */
	ASSERT_EQ(0, rt_write_pattern(cli, 0, len));
	ASSERT_EQ(0, rt_wait_readable(srv, len, 10000));
	ASSERT_EQ(0, cg_enter(true));
	c0 = cg_current();
	while (got < len) {
		struct zcopy_recv r;
		int ret = zc_recv(self->zfd, srv, d, ZCOPY_MAX_RX_DESC, 0, 5000, &r);

		ASSERT_EQ(0, ret) TH_LOG("after %llu bytes: %s", ZC_U64(got), strerror(-ret));
		ASSERT_LT(0, r.bytes);
		got += r.bytes;
	}
	c1 = cg_current();
	EXPECT_CHARGED(c0, c1, len, "pages received into by copying");
	close(cli);
	close(srv);
	free(d);
}

TEST_HARNESS_MAIN
