// SPDX-License-Identifier: GPL-2.0
/*
 * Who may use /dev/zcopy, and how much: the access policy.
 *
 * Anyone may open the device (mode 0666), as anyone may use MSG_ZEROCOPY
 * or io_uring: a caller sends only on sockets it holds and pins only its
 * own memory, and every page zcopy holds for it (pinned sends, the pool,
 * the receive area) is charged to its user's RLIMIT_MEMLOCK, the counter
 * MSG_ZEROCOPY and io_uring charge too; CAP_IPC_LOCK is exempt. The module
 * parameters are root's.
 *
 * Each test runs in its own process (the harness forks), which drops to
 * nobody with a small RLIMIT_MEMLOCK where the test says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "zcopy_test_util.h"

#define NOBODY		65534
#define PARAM_DIR	"/sys/module/zcopy/parameters"

static int set_memlock_pages(unsigned long pages)
{
	struct rlimit rl = {
		.rlim_cur = pages * zc_page_size(),
		.rlim_max = pages * zc_page_size(),
	};

	return setrlimit(RLIMIT_MEMLOCK, &rl);
}

/* Become nobody, with no capability and @pages of RLIMIT_MEMLOCK. */
static void drop_to_nobody(struct __test_metadata *_metadata, unsigned long pages)
{
	ASSERT_EQ(0, set_memlock_pages(pages));
	ASSERT_EQ(0, setgroups(0, NULL));
	ASSERT_EQ(0, setgid(NOBODY));
	ASSERT_EQ(0, setuid(NOBODY));
	ASSERT_EQ(NOBODY, geteuid());
}

static void *map_area(int zfd, unsigned long pages, off_t where)
{
	return mmap(NULL, pages * zc_page_size(), PROT_READ | (where ? 0 : PROT_WRITE),
		    MAP_SHARED, zfd, where);
}

/* A TCP connection to ourselves on loopback: the sending end; *@peer the other. */
static int connect_loopback(struct __test_metadata *_metadata, int *peer)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int l, s;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, bind(l, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, listen(l, 1));
	ASSERT_EQ(0, getsockname(l, (struct sockaddr *)&a, &len));
	s = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, connect(s, (struct sockaddr *)&a, sizeof(a)));
	*peer = accept(l, NULL, NULL);
	ASSERT_LE(0, *peer);
	close(l);
	return s;
}

TEST(device_is_world_accessible)
{
	struct stat st;

	ASSERT_EQ(0, stat(ZCOPY_DEVICE, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0666, st.st_mode & 07777);
}

TEST(nobody_opens_and_asks)
{
	struct zcopy_info info = { 0 };
	int zfd;

	drop_to_nobody(_metadata, 16);
	zfd = zc_open();
	ASSERT_LE(0, zfd) TH_LOG("open as nobody: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(zfd, ZCOPY_IOC_INFO, &info));
	EXPECT_EQ(ZCOPY_ABI_VERSION, info.abi_version);
	close(zfd);
}

TEST(nobody_pool_within_memlock)
{
	int zfd;
	void *p;

	drop_to_nobody(_metadata, 16);
	zfd = zc_open();
	ASSERT_LE(0, zfd);
	p = map_area(zfd, 32, ZCOPY_MMAP_POOL);
	ASSERT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EAGAIN, errno) TH_LOG("a pool over RLIMIT_MEMLOCK: %s", strerror(errno));
	p = map_area(zfd, 16, ZCOPY_MMAP_POOL);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("a pool at RLIMIT_MEMLOCK: %s", strerror(errno));
	memset(p, 0x5a, 16 * zc_page_size());
	munmap(p, 16 * zc_page_size());
	close(zfd);
}

TEST(nobody_receive_area_within_memlock)
{
	int zfd;
	void *p;

	drop_to_nobody(_metadata, 8);
	zfd = zc_open();
	ASSERT_LE(0, zfd);
	p = map_area(zfd, 9, ZCOPY_MMAP_RECV);
	ASSERT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EAGAIN, errno);
	p = map_area(zfd, 8, ZCOPY_MMAP_RECV);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("%s", strerror(errno));
	munmap(p, 8 * zc_page_size());
	close(zfd);
}

/* A registered buffer is charged the pages it pins, no slack: ENOBUFS past. */
TEST(nobody_register_within_memlock)
{
	size_t ps = zc_page_size();
	char *buf = zc_map(17 * ps);
	int zfd, a, b;

	ASSERT_NE(NULL, buf);
	drop_to_nobody(_metadata, 16);
	zfd = zc_open();
	ASSERT_LE(0, zfd);
	EXPECT_EQ(-ENOBUFS, zc_register(zfd, buf, 17 * ps));
	a = zc_register(zfd, buf, 16 * ps);
	ASSERT_LE(0, a) TH_LOG("16 pages at RLIMIT_MEMLOCK 16: %s", strerror(-a));
	EXPECT_EQ(-ENOBUFS, zc_register(zfd, buf, 1));
	ASSERT_EQ(0, zc_unregister(zfd, a));
	b = zc_register(zfd, buf + 100, 1);
	EXPECT_LE(0, b) TH_LOG("the charge came back: %s", strerror(-b));
	close(zfd);
	zc_unmap(buf, 17 * ps);
}

/* One user's charge spans its fds, and comes back when they are gone. */
TEST(nobody_memlock_is_per_user_and_returned)
{
	int a, b, c;
	void *pa, *pb, *pc;

	drop_to_nobody(_metadata, 16);
	a = zc_open();
	b = zc_open();
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	pa = map_area(a, 12, ZCOPY_MMAP_POOL);
	ASSERT_NE(MAP_FAILED, pa);
	EXPECT_EQ(MAP_FAILED, map_area(b, 8, ZCOPY_MMAP_POOL)) TH_LOG("12 + 8 > 16 pages");
	pb = map_area(b, 4, ZCOPY_MMAP_RECV);
	ASSERT_NE(MAP_FAILED, pb) TH_LOG("12 + 4 pages: %s", strerror(errno));

	c = zc_open();
	ASSERT_LE(0, c);
	EXPECT_EQ(MAP_FAILED, map_area(c, 1, ZCOPY_MMAP_RECV)) TH_LOG("the user's 16 pages are used");
	EXPECT_EQ(EAGAIN, errno);

	/* The pool's charge goes with its last mapping and its file. */
	munmap(pa, 12 * zc_page_size());
	close(a);
	pc = map_area(c, 12, ZCOPY_MMAP_POOL);
	EXPECT_NE(MAP_FAILED, pc) TH_LOG("the charge was not returned: %s", strerror(errno));
	if (pc != MAP_FAILED)
		munmap(pc, 12 * zc_page_size());
	munmap(pb, 4 * zc_page_size());
	close(b);
	close(c);
}

/* Pinned sends are charged as MSG_ZEROCOPY charges: -ENOBUFS over it. */
TEST(nobody_pinned_send_within_memlock)
{
	const size_t ps = zc_page_size();
	struct zcopy_iovec iov;
	struct zcopy_stats st;
	int zfd, s, peer, ret;
	uint8_t *buf;

	drop_to_nobody(_metadata, 8);
	zfd = zc_open();
	ASSERT_LE(0, zfd);
	s = connect_loopback(_metadata, &peer);
	buf = zc_map(16 * ps);
	ASSERT_NE(NULL, buf);
	memset(buf, 0x33, 16 * ps);

	iov = (struct zcopy_iovec){ .base = (uintptr_t)buf, .len = 16 * ps };
	ret = zc_send(zfd, s, &iov, 1, 0, 1, NULL);
	EXPECT_EQ(-ENOBUFS, ret) TH_LOG("16 pages pinned over a limit of 8: %s", strerror(-ret));

	iov.len = 4 * ps;
	ret = zc_send(zfd, s, &iov, 1, 0, 2, NULL);
	EXPECT_EQ(0, ret) TH_LOG("4 pages within a limit of 8: %s", strerror(-ret));
	EXPECT_EQ(0, zc_wait_idle(zfd, 0, 5000, &st));
	EXPECT_EQ(0, st.pages_pinned);

	close(s);
	close(peer);
	close(zfd);
	zc_unmap(buf, 16 * ps);
}

/* CAP_IPC_LOCK is exempt, as for mlock(2). */
TEST(root_is_exempt_from_memlock)
{
	int zfd;
	void *p;

	ASSERT_EQ(0, set_memlock_pages(4));
	zfd = zc_open();
	ASSERT_LE(0, zfd);
	p = map_area(zfd, 32, ZCOPY_MMAP_POOL);
	EXPECT_NE(MAP_FAILED, p) TH_LOG("root, 32 pages over 4: %s", strerror(errno));
	if (p != MAP_FAILED)
		munmap(p, 32 * zc_page_size());
	close(zfd);
}

TEST(nobody_cannot_set_parameters)
{
	int fd;

	if (access(PARAM_DIR "/max_send_pages", F_OK))
		SKIP(return, "no %s", PARAM_DIR);
	drop_to_nobody(_metadata, 16);
	fd = open(PARAM_DIR "/max_send_pages", O_WRONLY);
	EXPECT_EQ(-1, fd);
	EXPECT_EQ(EACCES, errno);
	if (fd >= 0)
		close(fd);
}

TEST_HARNESS_MAIN
