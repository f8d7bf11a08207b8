// SPDX-License-Identifier: GPL-2.0
/*
 * The send pool (mmap of ZCOPY_MMAP_POOL, ZCOPY_IOC_POOL_SEND): what the
 * mapping accepts and refuses, the sends and their errors, and above all
 * copy-on-write: a write to a pool page the network stack (a receiver, a
 * pipe, a pin) still holds lands in a fresh copy, so the receiver gets the
 * bytes as they were at the send, and an application that rewrites only
 * buffers whose record it has read takes neither a copy nor a fault.
 *
 * Every byte a receiver gets is checksummed against what was sent. Each
 * test ends by checking that the module's pool_pages, pool_pages_in_flight
 * and pages_pinned are back where they were before it.
 *
 * POOL_TEST_SEED=N in the environment repeats a run of the randomised tests.
 */
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <grp.h>

#include <linux/io_uring.h>
#include <linux/tls.h>
#include <linux/zcopy.h>
#include <netinet/tcp.h>

#include "kselftest_harness.h"
#include "pool_test_util.h"

/* Iterations of the copy-on-write proof, per variant. */
#define COW_ITERATIONS		1000
#define COW_POOL_PAGES		32
#define COW_MAX_LEN		(5 * 4096)

/* The steady state: NOTIFY sends over e1000e from a ring of buffers (>= 10,000). */
#define SS_SENDS		10240
#define SS_SLOTS		32
#define SS_SLOT_PAGES		1

/* Concurrent writers. */
#define CW_THREADS		4
#define CW_REGIONS		8
#define CW_REGION_PAGES		4
#define CW_ITERATIONS		800

/* Writes racing the re-arm of completed sends: pages sent per ring size. */
#define RW_ITERATIONS		5000
#define RW_MAX_RING		4

/* Rounds of the fault races. */
#define RACE_ROUNDS		(getenv("RACE_ROUNDS") ? atoi(getenv("RACE_ROUNDS")) : 3000)

/* Enough to close a small receive window and keep what follows queued. */
#define BLOCK_BYTES		(256 * 1024)
#define BLOCK_SNDBUF		(4 << 20)
#define BLOCK_RCVBUF		4096

#ifndef SOL_TLS
#define SOL_TLS			282
#endif

#define NOTIFY			ZCOPY_POOL_SEND_NOTIFY
#define ADDR			ZCOPY_POOL_SEND_ADDR

static uint64_t pt_seed(void)
{
	const char *env = getenv("POOL_TEST_SEED");
	struct timespec ts;

	if (env && *env)
		return strtoull(env, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000007ULL ^ ts.tv_nsec ^ ((uint64_t)getpid() << 32);
}

/* A UDP socket connected to a discard port: valid for everything but sending. */
static int pt_udp_sock(void)
{
	struct sockaddr_storage ss;
	socklen_t sl = zc_sockaddr(AF_INET, "127.0.0.1", 9, &ss);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, sl)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A loopback TCP connection whose receiver reads nothing until released. */
static struct pt_conn *held_conn(struct __test_metadata *_metadata, struct pt_ctx *c)
{
	struct pt_conn_opts o = { .hold = true };

	return pt_connect(_metadata, c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, &o);
}

/*
 * A loopback TCP connection whose window is closed: what is sent from now
 * on stays queued in our socket, its pages held, until the receiver is
 * released.
 */
static struct pt_conn *blocked_conn(struct __test_metadata *_metadata, struct pt_ctx *c)
{
	struct pt_conn_opts o = { .hold = true, .rcvbuf = BLOCK_RCVBUF, .sndbuf = BLOCK_SNDBUF };
	struct pt_conn *k = pt_connect(_metadata, c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, &o);

	pt_send_plain(_metadata, k, BLOCK_BYTES, 0xb10c);
	return k;
}

/*
 * A loopback TCP connection whose socket is full: a send with
 * ZCOPY_SEND_DONTWAIT fails with EAGAIN. Filled with plain send()s of
 * bytes from @seed; acks of what got out free room for a while.
 */
static struct pt_conn *full_conn(struct __test_metadata *_metadata, struct pt_ctx *c,
				 uint64_t seed)
{
	struct pt_conn_opts o = { .hold = true, .rcvbuf = BLOCK_RCVBUF, .sndbuf = 16384 };
	const size_t chunk = 65536;
	struct pt_conn *k;
	uint8_t *buf = malloc(chunk);
	int idle = 0;

	if (!buf)
		return NULL;
	zc_fill(buf, seed, chunk);
	k = pt_connect(_metadata, c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, &o);
	while (k && idle < 3) {
		ssize_t r = send(k->sock, buf, chunk, MSG_DONTWAIT);

		if (r > 0) {
			pt_account(k, buf, r);
			idle = 0;
			continue;
		}
		if (errno != EAGAIN) {
			TH_LOG("filling the socket: %s", strerror(errno));
			k = NULL;
			break;
		}
		idle++;
		zc_sleep_ms(50);
	}
	free(buf);
	return k;
}

static const char *errno_name(int err)
{
	switch (err) {
	case 0: return "success";
	case EAGAIN: return "EAGAIN";
	case ENOBUFS: return "ENOBUFS";
	case ENOMEM: return "ENOMEM";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default: return strerror(err);
	}
}

#define DELTA(a, b, f)	((a).f - (b).f)

/* ---- The mapping ---- */

FIXTURE(pool)
{
	struct pt_ctx c;
};

FIXTURE_SETUP(pool)
{
	const char *why = pt_setup(_metadata, &self->c);

	if (why)
		SKIP(return, "%s", why);
}

FIXTURE_TEARDOWN(pool)
{
	pt_teardown(_metadata, &self->c);
}

TEST_F(pool, max_pool_pages_param)
{
	const char *path = "/sys/module/zcopy/parameters/max_pool_pages";
	struct stat sb;
	long v = 0;

	ASSERT_EQ(0, zc_param_read("max_pool_pages", &v));
	EXPECT_EQ(65536, v) TH_LOG("max_pool_pages defaults to 65536");
	ASSERT_EQ(0, stat(path, &sb));
	EXPECT_EQ(0644, sb.st_mode & 0777) TH_LOG("writable by root, readable by all");
}

TEST_F(pool, mmap_creates_zeroed_pool)
{
	const size_t n = 16, len = n * self->c.ps;
	struct zcopy_stats st, m;
	size_t i, nonzero = 0;
	uint8_t *p;

	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st.pool_pages);
	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, st.pool_pages);
	m = pt_stats(_metadata, self->c.zfd, ZCOPY_STATS_MODULE);
	EXPECT_EQ(self->c.base.pool_pages + n, m.pool_pages);

	for (i = 0; i < len; i++)
		nonzero += p[i] != 0;
	EXPECT_EQ(0, nonzero) TH_LOG("a new pool must be zeroed");
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st.cow_copies) TH_LOG("reads never copy");
	EXPECT_EQ(0, st.write_faults) TH_LOG("reads are no write faults");

	/* Each page read, then written: one write fault per page. */
	zc_fill(p, ZC_SEED(1), len);
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(1), len));
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, st.write_faults);
	EXPECT_EQ(0, st.cow_copies) TH_LOG("nothing in flight: no copy");
	EXPECT_EQ(0, st.pool_sends);
	EXPECT_EQ(0, st.pool_pages_in_flight);
}

TEST_F(pool, mmap_private_einval)
{
	const size_t len = 4 * self->c.ps;
	int prot[] = { PROT_READ | PROT_WRITE, PROT_READ };
	struct zcopy_stats st;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(prot); i++) {
		void *p = pt_mmap_raw(self->c.zfd, len, prot[i], MAP_PRIVATE, ZCOPY_MMAP_POOL);

		EXPECT_EQ(MAP_FAILED, p) TH_LOG("MAP_PRIVATE, prot %#x", prot[i]);
		if (p != MAP_FAILED)
			munmap(p, len);
		else
			EXPECT_EQ(EINVAL, errno) TH_LOG("MAP_PRIVATE, prot %#x: %s", prot[i],
							errno_name(errno));
	}
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st.pool_pages) TH_LOG("a refused mmap creates no pool");
}

/*
 * What a pool mapping needs is MAP_SHARED, not write access: a file opened
 * O_RDONLY maps its pool PROT_READ (the kernel makes that mapping
 * VM_MAYSHARE, without VM_SHARED), and can never make it writable. Such a
 * mapping failed with EINVAL.
 */
TEST_F(pool, mmap_read_only_file)
{
	const size_t len = 4 * self->c.ps;
	int fd = open(ZCOPY_DEVICE, O_RDONLY | O_CLOEXEC);
	struct zcopy_stats st;
	uint8_t *p;

	ASSERT_LE(0, fd) TH_LOG("open " ZCOPY_DEVICE " O_RDONLY: %s", strerror(errno));
	EXPECT_EQ(MAP_FAILED, pt_mmap_raw(fd, len, PROT_READ | PROT_WRITE, MAP_SHARED,
					  ZCOPY_MMAP_POOL));
	EXPECT_EQ(EACCES, errno) TH_LOG("PROT_WRITE: %s", errno_name(errno));
	p = pt_mmap_raw(fd, len, PROT_READ, MAP_SHARED, ZCOPY_MMAP_POOL);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("PROT_READ: %s", errno_name(errno));
	pt_track(_metadata, &self->c, p, len);
	EXPECT_EQ(0, p[0] | p[len - 1]) TH_LOG("a new pool is zeroed");
	EXPECT_EQ(-1, mprotect(p, len, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno) TH_LOG("mprotect(PROT_WRITE): %s", errno_name(errno));
	st = pt_stats(_metadata, fd, 0);
	EXPECT_EQ(4, st.pool_pages);
	EXPECT_EQ(0, st.write_faults);
	close(fd);
}

TEST_F(pool, mmap_exec_eperm)
{
	const size_t len = 4 * self->c.ps;
	int prot[] = { PROT_READ | PROT_WRITE | PROT_EXEC, PROT_READ | PROT_EXEC, PROT_EXEC };
	struct zcopy_stats st;
	unsigned int i;
	uint8_t *p;

	for (i = 0; i < ARRAY_SIZE(prot); i++) {
		void *q = pt_mmap_raw(self->c.zfd, len, prot[i], MAP_SHARED, ZCOPY_MMAP_POOL);

		EXPECT_EQ(MAP_FAILED, q) TH_LOG("prot %#x", prot[i]);
		if (q != MAP_FAILED)
			munmap(q, len);
		else
			EXPECT_EQ(EPERM, errno) TH_LOG("prot %#x: %s", prot[i], errno_name(errno));
	}
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st.pool_pages) TH_LOG("a refused mmap creates no pool");

	/* The same fd still makes a pool, of the size now asked. */
	p = pt_map_pool(_metadata, &self->c, self->c.zfd, 2);
	p[0] = 1;
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(2, st.pool_pages);
}

TEST_F(pool, mmap_bad_offset_einval)
{
	const size_t len = 4 * self->c.ps;
	off_t offs[] = { 0x1000, 0x20000000, (off_t)self->c.ps, 0x7ffff000 };
	struct zcopy_stats st;
	unsigned int i, round;

	for (round = 0; round < 2; round++) {
		for (i = 0; i < ARRAY_SIZE(offs); i++) {
			void *q = pt_mmap_raw(self->c.zfd, len, PROT_READ | PROT_WRITE,
					      MAP_SHARED, offs[i]);

			EXPECT_EQ(MAP_FAILED, q) TH_LOG("offset %#llx, %s pool", ZC_U64(offs[i]),
							 round ? "with a" : "without");
			if (q != MAP_FAILED)
				munmap(q, len);
			else
				EXPECT_EQ(EINVAL, errno) TH_LOG("offset %#llx: %s",
								ZC_U64(offs[i]),
								errno_name(errno));
		}
		st = pt_stats(_metadata, self->c.zfd, 0);
		EXPECT_EQ(round ? 4 : 0, st.pool_pages);
		/* Then again once the pool exists. */
		if (!round)
			pt_map_pool(_metadata, &self->c, self->c.zfd, 4);
	}
}

TEST_F(pool, mmap_over_max_pool_pages_einval)
{
	struct zcopy_stats st;
	long max = 0;
	void *q;
	int fd2;

	ASSERT_EQ(0, zc_param_read("max_pool_pages", &max));
	self->c.saved_max_pool_pages = max;

	/* One page over the limit as it is (a reservation, nothing touched). */
	fd2 = pt_open_fd(_metadata, &self->c);
	q = pt_mmap_raw(fd2, (max + 1) * self->c.ps, PROT_READ | PROT_WRITE, MAP_SHARED,
			ZCOPY_MMAP_POOL);
	EXPECT_EQ(MAP_FAILED, q) TH_LOG("%ld pages, max_pool_pages %ld", max + 1, max);
	if (q != MAP_FAILED)
		munmap(q, (max + 1) * self->c.ps);
	else
		EXPECT_EQ(EINVAL, errno) TH_LOG("%s", errno_name(errno));

	ASSERT_EQ(0, zc_param_write("max_pool_pages", 8));
	q = pt_mmap_raw(self->c.zfd, 9 * self->c.ps, PROT_READ | PROT_WRITE, MAP_SHARED,
			ZCOPY_MMAP_POOL);
	EXPECT_EQ(MAP_FAILED, q) TH_LOG("9 pages, max_pool_pages 8");
	if (q != MAP_FAILED)
		munmap(q, 9 * self->c.ps);
	else
		EXPECT_EQ(EINVAL, errno) TH_LOG("%s", errno_name(errno));
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st.pool_pages);

	/* At the limit: fine. */
	pt_map_pool(_metadata, &self->c, self->c.zfd, 8);
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(8, st.pool_pages);
}

TEST_F(pool, mmap_again_larger_einval)
{
	const size_t ps = self->c.ps;
	struct zcopy_stats st;
	uint8_t *p;
	void *q;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, 8);
	zc_fill(p, ZC_SEED(5), 8 * ps);
	q = pt_mmap_raw(self->c.zfd, 9 * ps, PROT_READ | PROT_WRITE, MAP_SHARED,
			ZCOPY_MMAP_POOL);
	EXPECT_EQ(MAP_FAILED, q) TH_LOG("a second mapping larger than the pool");
	if (q != MAP_FAILED)
		munmap(q, 9 * ps);
	else
		EXPECT_EQ(EINVAL, errno) TH_LOG("%s", errno_name(errno));
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(8, st.pool_pages) TH_LOG("the pool keeps its size");
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(5), 8 * ps));
}

TEST_F(pool, mmap_again_same_size_shares_pages)
{
	const size_t ps = self->c.ps, n = 8;
	struct zcopy_stats st, m;
	uint8_t *p, *q;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(6), n * ps);
	q = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	ASSERT_NE(p, q);
	EXPECT_EQ(0, memcmp(p, q, n * ps)) TH_LOG("the second mapping shows the same pages");
	zc_fill(p + 3 * ps, ZC_SEED(61), ps);
	EXPECT_TRUE(zc_check_all(q + 3 * ps, ZC_SEED(61), ps)) TH_LOG("a write through one is seen in the other");
	zc_fill(q + 5 * ps + 7, ZC_SEED(62), 100);
	EXPECT_TRUE(zc_check_all(p + 5 * ps + 7, ZC_SEED(62), 100)) TH_LOG("and the other way");
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, st.pool_pages) TH_LOG("one pool, mapped twice");
	m = pt_stats(_metadata, self->c.zfd, ZCOPY_STATS_MODULE);
	EXPECT_EQ(self->c.base.pool_pages + n, m.pool_pages);
	EXPECT_EQ(0, st.cow_copies);
}

TEST_F(pool, mmap_again_smaller_shares_pages)
{
	const size_t ps = self->c.ps, n = 8;
	struct zcopy_stats st;
	uint8_t *p, *q;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(7), n * ps);
	q = pt_map_pool(_metadata, &self->c, self->c.zfd, 2);
	EXPECT_EQ(0, memcmp(p, q, 2 * ps)) TH_LOG("a smaller mapping shows the first pages");
	zc_fill(q + ps, ZC_SEED(71), ps);
	EXPECT_TRUE(zc_check_all(p + ps, ZC_SEED(71), ps)) TH_LOG("a write through one is seen in the other");
	zc_fill(p, ZC_SEED(72), 64);
	EXPECT_TRUE(zc_check_all(q, ZC_SEED(72), 64));
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, st.pool_pages);
}

static int pool_munmap_first(uint8_t *p, size_t ps)
{
	return munmap(p, ps);
}

static int pool_munmap_middle(uint8_t *p, size_t ps)
{
	return munmap(p + 3 * ps, ps);
}

static int pool_mprotect_first(uint8_t *p, size_t ps)
{
	return mprotect(p, ps, PROT_READ);
}

static int pool_madvise_last(uint8_t *p, size_t ps)
{
	return madvise(p + 7 * ps, ps, MADV_RANDOM);
}

static int pool_mremap_shrink(uint8_t *p, size_t ps)
{
	return mremap(p, 8 * ps, 4 * ps, 0) == MAP_FAILED ? -1 : 0;
}

TEST_F(pool, mprotect_exec_eacces)
{
	const size_t len = 4 * self->c.ps;
	uint8_t *p = pt_map_pool(_metadata, &self->c, self->c.zfd, 4);

	zc_fill(p, ZC_SEED(8), len);
	EXPECT_EQ(-1, mprotect(p, len, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno) TH_LOG("%s", errno_name(errno));
	EXPECT_EQ(-1, mprotect(p, self->c.ps, PROT_READ | PROT_WRITE | PROT_EXEC));
	EXPECT_EQ(EACCES, errno) TH_LOG("%s", errno_name(errno));
	/* The mapping is as it was. */
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(8), len));
	zc_fill(p, ZC_SEED(81), len);
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(81), len));
}

/*
 * The pool is mapped whole or not at all, as the receive area: a piece
 * would be a mapping that sends by address and re-arming do not find.
 */
TEST_F(pool, partial_map_ops_einval)
{
	const size_t ps = self->c.ps, n = 8;
	struct pt_conn *k;
	uint8_t *p;
	void *q;
	size_t i;
	int ret;
	static const struct {
		const char *what;
		int (*op)(uint8_t *p, size_t ps);
	} cases[] = {
		{ "munmap of the first page", pool_munmap_first },
		{ "munmap of a middle page", pool_munmap_middle },
		{ "mprotect(PROT_READ) of the first page", pool_mprotect_first },
		{ "madvise(MADV_NORMAL -> MADV_RANDOM) of the last page", pool_madvise_last },
		{ "mremap shrinking it", pool_mremap_shrink },
	};

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(10), n * ps);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		errno = 0;
		ret = cases[i].op(p, ps);
		EXPECT_EQ(-1, ret) TH_LOG("%s: done", cases[i].what);
		EXPECT_EQ(EINVAL, errno) TH_LOG("%s: %s", cases[i].what, errno_name(errno));
	}
	/* Whole, it moves and comes back. */
	q = mremap(p, n * ps, n * ps, MREMAP_MAYMOVE);
	ASSERT_NE(MAP_FAILED, q);
	pt_untrack(&self->c, p);
	pt_track(_metadata, &self->c, q, n * ps);
	p = q;
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(10), n * ps));
	/* By address, from a page past the first. */
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	ASSERT_EQ(0, pt_send(&self->c, k, p, 4 * ps + 10, ps, ADDR | NOTIFY, 1, NULL, NULL));
	pt_check_data(_metadata, k);
	pt_check_records(_metadata, &self->c);
}

/* The steps of memlock_child(), each an errno (0: mapped), -1 if not run. */
enum {
	ML_CAP_64,		/* with CAP_IPC_LOCK: 64 pages over a 16-page limit */
	ML_8,			/* 8 pages of 16 */
	ML_8_16,		/* 16 more */
	ML_12_AFTER_FREE,	/* the 8 freed: 12 */
	ML_12_AGAIN,		/* the same pool mapped again */
	ML_12_5,		/* 5 more */
	ML_16_EXACT,		/* all freed: exactly the limit */
	ML_STEPS
};

static const char * const ml_step[] = {
	"64 pages with CAP_IPC_LOCK", "8 pages", "8 + 16 pages", "12 pages after freeing the 8",
	"the 12-page pool mapped again", "12 + 5 pages", "16 pages, all else freed",
};

/*
 * In a child: open, set RLIMIT_MEMLOCK to 16 pages, maybe become nobody
 * (losing CAP_IPC_LOCK), and try pools; the errno of each step goes back
 * through @wfd.
 */
static void memlock_child(int wfd, bool drop, size_t ps)
{
	struct rlimit rl = { 16 * ps, 16 * ps };
	int fd[4], res[ML_STEPS], i;
	void *p[3] = { MAP_FAILED, MAP_FAILED, MAP_FAILED }, *q;

	for (i = 0; i < ML_STEPS; i++)
		res[i] = -1;
	for (i = 0; i < 4; i++)
		fd[i] = zc_open();
	if (fd[0] < 0 || fd[1] < 0 || fd[2] < 0 || fd[3] < 0 ||
	    setrlimit(RLIMIT_MEMLOCK, &rl))
		_exit(2);
#define ML_MAP(n, f) mmap(NULL, (n) * ps, PROT_READ | PROT_WRITE, MAP_SHARED, (f), 0)
#define ML_RES(step, addr) (res[step] = (addr) == MAP_FAILED ? errno : 0)
	if (!drop) {
		q = ML_MAP(64, fd[0]);
		ML_RES(ML_CAP_64, q);
		goto out;
	}
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		_exit(3);
	p[0] = ML_MAP(8, fd[0]);
	ML_RES(ML_8, p[0]);
	q = ML_MAP(16, fd[1]);
	ML_RES(ML_8_16, q);
	if (q != MAP_FAILED)
		munmap(q, 16 * ps);
	/* The first pool gone (its last mapping and its file), its charge too. */
	if (p[0] != MAP_FAILED)
		munmap(p[0], 8 * ps);
	close(fd[0]);
	p[1] = ML_MAP(12, fd[1]);
	ML_RES(ML_12_AFTER_FREE, p[1]);
	/* A second mapping of a pool is no new charge. */
	p[2] = ML_MAP(12, fd[1]);
	ML_RES(ML_12_AGAIN, p[2]);
	q = ML_MAP(5, fd[2]);
	ML_RES(ML_12_5, q);
	if (q != MAP_FAILED)
		munmap(q, 5 * ps);
	/* Everything freed: a pool of exactly the limit. */
	if (p[1] != MAP_FAILED)
		munmap(p[1], 12 * ps);
	if (p[2] != MAP_FAILED)
		munmap(p[2], 12 * ps);
	close(fd[1]);
	q = ML_MAP(16, fd[3]);
	ML_RES(ML_16_EXACT, q);
#undef ML_MAP
#undef ML_RES
out:
	if (write(wfd, res, sizeof(res)) != sizeof(res))
		_exit(4);
	_exit(0);
}

static void run_memlock_child(struct __test_metadata *_metadata, bool drop, size_t ps,
			      int res[ML_STEPS])
{
	int pfd[2], status;
	pid_t pid;

	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		memlock_child(pfd[1], drop, ps);
	close(pfd[1]);
	EXPECT_EQ(ML_STEPS * sizeof(int), read(pfd[0], res, ML_STEPS * sizeof(int)));
	close(pfd[0]);
	status = zc_wait_child(pid, 10000);
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("child status %#x", status);
}

#define ML_EXPECT_OK(res, step)						\
	EXPECT_EQ(0, res[step]) TH_LOG("%s within a 16-page RLIMIT_MEMLOCK: %s",	\
				       ml_step[step], errno_name(res[step]))
#define ML_EXPECT_OVER(res, step)					\
	EXPECT_TRUE(res[step] == EAGAIN || res[step] == ENOBUFS)	\
		TH_LOG("%s over a 16-page RLIMIT_MEMLOCK: %s", ml_step[step],	\
		       errno_name(res[step]))

TEST_F(pool, memlock_limit_unprivileged)
{
	int res[ML_STEPS];

	run_memlock_child(_metadata, true, self->c.ps, res);
	TH_LOG("over RLIMIT_MEMLOCK, mmap fails with %s", errno_name(res[ML_8_16]));
	ML_EXPECT_OK(res, ML_8);
	ML_EXPECT_OVER(res, ML_8_16);
	ML_EXPECT_OK(res, ML_12_AFTER_FREE);
	ML_EXPECT_OK(res, ML_12_AGAIN);
	ML_EXPECT_OVER(res, ML_12_5);
	ML_EXPECT_OK(res, ML_16_EXACT);
}

TEST_F(pool, memlock_limit_skipped_with_cap_ipc_lock)
{
	int res[ML_STEPS];

	run_memlock_child(_metadata, false, self->c.ps, res);
	EXPECT_EQ(0, res[ML_CAP_64]) TH_LOG("%s over a 16-page RLIMIT_MEMLOCK: %s",
					    ml_step[ML_CAP_64], errno_name(res[ML_CAP_64]));
}

/* ---- ZCOPY_IOC_POOL_SEND: what it refuses ---- */

TEST_F(pool, send_without_pool_enxio)
{
	int s = pt_udp_sock();

	ASSERT_LE(0, s);
	EXPECT_EQ(-ENXIO, zc_pool_send(self->c.zfd, s, 0, 1, 0, 0, NULL));
	EXPECT_EQ(-ENXIO, zc_pool_send(self->c.zfd, s, 0, 1, NOTIFY, 0, NULL));
	EXPECT_EQ(-ENXIO, zc_pool_send(self->c.zfd, s, 0x10000, 1, ADDR, 0, NULL));
	close(s);
}

TEST_F(pool, send_bad_range_einval)
{
	const uint64_t L = 4 * self->c.ps;
	struct {
		uint64_t off, len;
	} cases[] = {
		{ L, 1 }, { L - 1, 2 }, { 0, L + 1 }, { L + self->c.ps, 1 },
		{ ~0ULL, 1 }, { 1, ~0ULL }, { 2 * self->c.ps, ~0ULL - self->c.ps },
		{ 0, 0 }, { L - 1, 0 },
	};
	struct zcopy_stats st;
	unsigned int i;
	int s = pt_udp_sock();

	ASSERT_LE(0, s);
	pt_map_pool(_metadata, &self->c, self->c.zfd, 4);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int ret = zc_pool_send(self->c.zfd, s, cases[i].off, cases[i].len, 0, 0, NULL);

		EXPECT_EQ(-EINVAL, ret) TH_LOG("offset %#llx len %#llx: %s", ZC_U64(cases[i].off),
					       ZC_U64(cases[i].len), errno_name(-ret));
	}
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st.pool_sends);
	close(s);
}

TEST_F(pool, send_bad_flags_reserved_einval)
{
	uint32_t flags[] = { 1U << 4, 1U << 31, ~ZCOPY_POOL_SEND_FLAGS, NOTIFY | (1U << 8) };
	struct zcopy_pool_send ps;
	struct zcopy_stats st;
	unsigned int i;
	int s = pt_udp_sock();

	ASSERT_LE(0, s);
	pt_map_pool(_metadata, &self->c, self->c.zfd, 1);
	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		int ret = zc_pool_send(self->c.zfd, s, 0, 1, flags[i], 0, NULL);

		EXPECT_EQ(-EINVAL, ret) TH_LOG("flags %#x: %s", flags[i], errno_name(-ret));
	}
	for (i = 0; i < ARRAY_SIZE(ps.reserved); i++) {
		memset(&ps, 0, sizeof(ps));
		ps.sockfd = s;
		ps.len = 1;
		ps.reserved[i] = 1ULL << 63;
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->c.zfd, ZCOPY_IOC_POOL_SEND, &ps));
		EXPECT_EQ(EINVAL, errno) TH_LOG("reserved[%u]: %s", i, errno_name(errno));
	}
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st.pool_sends);
	close(s);
}

TEST_F(pool, send_addr_outside_pool_efault)
{
	const size_t ps = self->c.ps, L = 4 * ps;
	uint8_t *p, *anon, *other;
	struct zcopy_stats st;
	int s = pt_udp_sock(), fd2, ret;
	struct {
		uint64_t addr, len;
		const char *what;
	} cases[5];
	unsigned int i;

	ASSERT_LE(0, s);
	p = pt_map_pool(_metadata, &self->c, self->c.zfd, 4);
	anon = mmap(NULL, L, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, anon);
	pt_track(_metadata, &self->c, anon, L);
	anon[0] = 1;
	fd2 = pt_open_fd(_metadata, &self->c);
	other = pt_map_pool(_metadata, &self->c, fd2, 4);
	other[0] = 1;

	cases[0] = (typeof(cases[0])){ 0, 1, "NULL" };
	cases[1] = (typeof(cases[0])){ (uintptr_t)anon, 1, "anonymous memory" };
	cases[2] = (typeof(cases[0])){ (uintptr_t)other, 1, "another fd's pool" };
	cases[3] = (typeof(cases[0])){ 0xffff888000000000ULL, 1, "a kernel address" };
	cases[4] = (typeof(cases[0])){ (uintptr_t)(p + 64 * L), 1, "far past the pool" };
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		ret = zc_pool_send(self->c.zfd, s, cases[i].addr, cases[i].len, ADDR, 0, NULL);
		EXPECT_EQ(-EFAULT, ret) TH_LOG("ADDR in %s: %s", cases[i].what, errno_name(-ret));
	}

	/* Starting in the mapping, ending past it: not defined beyond failing. */
	ret = zc_pool_send(self->c.zfd, s, (uintptr_t)(p + L - 10), 20, ADDR, 0, NULL);
	EXPECT_TRUE(ret == -EFAULT || ret == -EINVAL)
		TH_LOG("ADDR range crossing the end of the mapping: %s", errno_name(-ret));
	TH_LOG("an ADDR range crossing the end of the mapping fails with %s", errno_name(-ret));

	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st.pool_sends);
	close(s);
}

TEST_F(pool, send_socket_errors)
{
	struct {
		int fd, err;
		const char *what;
	} cases[9];
	int pfd[2], unx[2], udx[2], tcp, lst, udp, raw, n = 0, i, ret;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct zcopy_stats st;

	pt_map_pool(_metadata, &self->c, self->c.zfd, 1);
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, unx));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, udx));
	tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	udp = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
	ASSERT_LE(0, tcp);
	ASSERT_LE(0, lst);
	ASSERT_LE(0, udp);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(0, bind(lst, (struct sockaddr *)&sin, sizeof(sin)));
	ASSERT_EQ(0, listen(lst, 1));

	cases[n++] = (typeof(cases[0])){ -1, EBADF, "fd -1" };
	cases[n++] = (typeof(cases[0])){ pfd[1], ENOTSOCK, "a pipe" };
	cases[n++] = (typeof(cases[0])){ self->c.zfd, ENOTSOCK, "the zcopy fd" };
	cases[n++] = (typeof(cases[0])){ unx[0], EOPNOTSUPP, "AF_UNIX stream" };
	cases[n++] = (typeof(cases[0])){ udx[0], EOPNOTSUPP, "AF_UNIX datagram" };
	cases[n++] = (typeof(cases[0])){ tcp, ENOTCONN, "unconnected TCP" };
	cases[n++] = (typeof(cases[0])){ lst, ENOTCONN, "listening TCP" };
	cases[n++] = (typeof(cases[0])){ udp, ENOTCONN, "unconnected UDP" };
	if (raw >= 0)
		cases[n++] = (typeof(cases[0])){ raw, EOPNOTSUPP, "raw IPv4" };
	for (i = 0; i < n; i++) {
		ret = zc_pool_send(self->c.zfd, cases[i].fd, 0, 1, 0, 0, NULL);
		EXPECT_EQ(-cases[i].err, ret) TH_LOG("%s: %s", cases[i].what, errno_name(-ret));
		ret = zc_pool_send(self->c.zfd, cases[i].fd, 0, 1, NOTIFY, 0, NULL);
		EXPECT_EQ(-cases[i].err, ret) TH_LOG("%s, NOTIFY: %s", cases[i].what,
						     errno_name(-ret));
	}
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st.pool_sends);
	EXPECT_EQ(0, st.records_queued);
	close(pfd[0]);
	close(pfd[1]);
	close(unx[0]);
	close(unx[1]);
	close(udx[0]);
	close(udx[1]);
	close(tcp);
	close(lst);
	close(udp);
	if (raw >= 0)
		close(raw);
}

/* kTLS encrypts into buffers of its own: no pool pages on such a socket. */
TEST_F(pool, send_ktls_eopnotsupp)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info.version = TLS_1_2_VERSION,
		.info.cipher_type = TLS_CIPHER_AES_GCM_128,
	};
	struct zcopy_stats st;
	struct pt_conn *k;
	int ret;

	pt_map_pool(_metadata, &self->c, self->c.zfd, 1);
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	if (setsockopt(k->sock, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		SKIP(return, "no kTLS: %s", strerror(errno));
	/* gcm(aes) may be a module the VM does not have. */
	if (setsockopt(k->sock, SOL_TLS, TLS_TX, &ci, sizeof(ci)))
		SKIP(return, "no kTLS AES-GCM-128 transmit: %s", strerror(errno));
	ret = zc_pool_send(self->c.zfd, k->sock, 0, 1, 0, 0, NULL);
	EXPECT_EQ(-EOPNOTSUPP, ret) TH_LOG("%s", errno_name(-ret));
	ret = zc_pool_send(self->c.zfd, k->sock, 0, 1, NOTIFY, 0, NULL);
	EXPECT_EQ(-EOPNOTSUPP, ret) TH_LOG("NOTIFY: %s", errno_name(-ret));
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st.pool_sends);
}

/*
 * A full socket and ZCOPY_SEND_DONTWAIT: EAGAIN, and the send leaves
 * nothing behind: no record, nothing in flight, nothing to copy on write.
 */
TEST_F(pool, send_dontwait_full_socket_eagain)
{
	const size_t ps = self->c.ps, n = 4;
	struct pollfd pfd = { self->c.zfd, POLLIN, 0 };
	struct zcopy_stats st0, st1, st2;
	struct pt_conn *k;
	uint8_t *p;
	int ret;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(24), n * ps);
	k = full_conn(_metadata, &self->c, ZC_SEED(241));
	ASSERT_NE(NULL, k);

	/* Pages 0-1 with a record, 2-3 by reference. */
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	ret = zc_pool_send(self->c.zfd, k->sock, 0, 2 * ps, ZCOPY_SEND_DONTWAIT | NOTIFY,
			       1, NULL);
	EXPECT_EQ(-EAGAIN, ret) TH_LOG("NOTIFY send on a full socket: %s", errno_name(-ret));
	ret = zc_pool_send(self->c.zfd, k->sock, 2 * ps, 2 * ps, ZCOPY_SEND_DONTWAIT, 2,
			       NULL);
	EXPECT_EQ(-EAGAIN, ret) TH_LOG("send by reference on a full socket: %s",
				       errno_name(-ret));
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, DELTA(st1, st0, pool_sends));
	EXPECT_EQ(0, DELTA(st1, st0, pool_send_bytes));
	EXPECT_EQ(0, st1.pool_pages_in_flight);
	EXPECT_EQ(0, st1.sends_in_flight);
	EXPECT_EQ(0, st1.records_queued);
	EXPECT_EQ(0, poll(&pfd, 1, 200)) TH_LOG("a record for a send that failed");

	/* Nothing was sent, so nothing is held: the pages are written in place. */
	zc_fill(p, ZC_SEED(242), 2 * ps);
	st2 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, DELTA(st2, st1, cow_copies))
		TH_LOG("pages of a NOTIFY send that failed were copied on write");
	zc_fill(p + 2 * ps, ZC_SEED(243), 2 * ps);
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, DELTA(st1, st2, cow_copies))
		TH_LOG("pages of a send by reference that failed were copied on write");
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(242), 2 * ps));
	EXPECT_TRUE(zc_check_all(p + 2 * ps, ZC_SEED(243), 2 * ps));
	pt_check_data(_metadata, k);
}

/* ---- ZCOPY_IOC_POOL_SEND_BATCH ---- */

static int pool_batch_errno(int zfd, struct zcopy_send_batch *b)
{
	return ioctl(zfd, ZCOPY_IOC_POOL_SEND_BATCH, b) ? errno : 0;
}

/* Refused as a whole: each its errno, nothing sent, nothing held. */
TEST_F(pool, batch_rejected)
{
	const size_t ps = self->c.ps;
	struct zcopy_pool_send good[2], first_bad[2];
	uint64_t g = (uintptr_t)good, fb = (uintptr_t)first_bad;
	struct {
		const char *what;
		int err;
		struct zcopy_send_batch b;
	} cases[] = {
		{ "a flag", EINVAL, { .sends = g, .count = 2, .flags = 1 } },
		{ "__pad", EINVAL, { .sends = g, .count = 2, .__pad = 1 } },
		{ "reserved[0]", EINVAL, { .sends = g, .count = 2, .reserved = { 1 } } },
		{ "no entries", EINVAL, { .sends = g, .count = 0 } },
		{ "past ZCOPY_MAX_BATCH", EINVAL, { .sends = g, .count = ZCOPY_MAX_BATCH + 1 } },
		{ "entries at NULL", EFAULT, { .sends = 0, .count = 2 } },
		{ "the first entry past the pool", EINVAL, { .sends = fb, .count = 2 } },
	};
	struct zcopy_send_batch nopool = { .sends = g, .count = 2 }, *ro;
	struct zcopy_stats st;
	unsigned int i;
	int s = pt_udp_sock();

	ASSERT_LE(0, s);
	for (i = 0; i < 2; i++)
		good[i] = (struct zcopy_pool_send){ .sockfd = s, .offset = i * ps, .len = ps };
	memcpy(first_bad, good, sizeof(good));
	first_bad[0].offset = 4 * ps;
	/* Entries are checked as ZCOPY_IOC_POOL_SEND checks them: no pool, no send. */
	EXPECT_EQ(ENXIO, pool_batch_errno(self->c.zfd, &nopool)) TH_LOG("without a pool");
	pt_map_pool(_metadata, &self->c, self->c.zfd, 4);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *what = cases[i].what;

		EXPECT_EQ(cases[i].err, pool_batch_errno(self->c.zfd, &cases[i].b))
			TH_LOG("%s", what);
	}
	EXPECT_EQ(EFAULT, pool_batch_errno(self->c.zfd, NULL)) TH_LOG("a NULL argument");
	/* The count cannot be written back: nothing is sent. */
	ro = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	*ro = (struct zcopy_send_batch){ .sends = g, .count = 2 };
	ASSERT_EQ(0, mprotect(ro, ps, PROT_READ));
	EXPECT_EQ(EFAULT, pool_batch_errno(self->c.zfd, ro)) TH_LOG("a read-only argument");
	munmap(ro, ps);
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st.pool_sends);
	EXPECT_EQ(0, st.pool_pages_in_flight);
	EXPECT_EQ(0, st.records_queued);
	close(s);
}

/*
 * A batch ends before its first refused entry, whatever the run it would
 * have joined: those before it are sent and counted in done, it and those
 * after are untouched; sent first, the refused one says why.
 */
TEST_F(pool, batch_stops_at_refused_entry)
{
	const size_t ps = self->c.ps;
	struct zcopy_pool_send b[3];
	struct pt_conn *k;
	unsigned int i, j;
	uint8_t *p;
	int ret;
	/* What spoils entry 1: flags added, another offset, another socket. */
	struct {
		const char *what;
		int err;
		uint32_t flags;
		uint64_t offset;	/* ~0: as is */
		int sockfd;		/* 0: as is */
	} cases[] = {
		{ "an unknown flag", EINVAL, 1U << 30, ~0ULL, 0 },
		{ "a range past the pool", EINVAL, 0, 8 * ps, 0 },
		{ "an address outside the pool", EFAULT, ADDR, (uintptr_t)&ret, 0 },
		{ "a closed socket", EBADF, 0, ~0ULL, 1000 },
	};

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, 8);
	zc_fill(p, ZC_SEED(27), 8 * ps);
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		/* In a run of copied sends, and in one of sends with records. */
		for (j = 0; j < 2; j++) {
			const char *run = j ? "pages" : "copied";
			size_t len = j ? 2 * ps : 100;

			memset(b, 0, sizeof(b));
			b[0] = (struct zcopy_pool_send){ .sockfd = k->sock, .flags = NOTIFY,
							 .offset = (2 * i + j) * 100, .len = len,
							 .cookie = 2 * i + j };
			b[1] = b[0];
			b[1].offset += len;
			b[2] = b[1];
			b[2].offset += len;
			b[1].flags |= cases[i].flags;
			if (cases[i].offset != ~0ULL)
				b[1].offset = cases[i].offset;
			if (cases[i].sockfd)
				b[1].sockfd = cases[i].sockfd;
			ret = zc_pool_send_batch(self->c.zfd, b, 3);
			ASSERT_EQ(1, ret) TH_LOG("%s, %s: %s", cases[i].what, run, errno_name(-ret));
			ASSERT_EQ(0, pt_sent(&self->c, k, &b[0], b[0].offset, p + b[0].offset));
			EXPECT_EQ(0, b[1].bytes) TH_LOG("the refused entry was written to");
			EXPECT_EQ(0, b[2].bytes) TH_LOG("an entry after the refused one was written to");
			ret = zc_pool_send_batch(self->c.zfd, &b[1], 2);
			EXPECT_EQ(-cases[i].err, ret) TH_LOG("%s, sent first: %s", cases[i].what,
							     errno_name(-ret));
		}
	}
	pt_check_data(_metadata, k);
	pt_check_records(_metadata, &self->c);
}

/*
 * Pool sends of @len bytes with @flags and ZCOPY_SEND_DONTWAIT, in batches,
 * into a socket that fills: a batch stops at the send its run got in part
 * or not at all, done and that send's bytes say so, the entries after are
 * untouched, and later calls go on from there until EAGAIN; then, the
 * receiver let go, the rest goes. The receiver gets every byte once, and
 * records (NOTIFY) cover every send.
 */
static void pool_batch_dontwait(struct __test_metadata *_metadata, struct pt_ctx *c,
				uint8_t *p, size_t len, uint32_t flags)
{
	struct pt_conn_opts o = { .hold = true, .rcvbuf = BLOCK_RCVBUF, .sndbuf = 16384 };
	struct zcopy_pool_send b[256];
	const unsigned int nsends = 256;
	struct zcopy_stats st;
	unsigned int first = 0, i, calls;
	bool stopped_short = false;
	struct pt_conn *k;
	int ret = 0;

	k = pt_connect(_metadata, c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, &o);
	for (i = 0; i < nsends; i++)
		b[i] = (struct zcopy_pool_send){ .sockfd = k->sock,
						 .flags = flags | ZCOPY_SEND_DONTWAIT,
						 .offset = i * len, .len = len, .cookie = i };
	for (calls = 0; calls < 1000 && first < nsends; calls++) {
		ret = zc_pool_send_batch(c->zfd, b + first, nsends - first);
		if (ret < 0)
			break;
		for (i = first; i < first + ret; i++) {
			ASSERT_LT(0, b[i].bytes) TH_LOG("entry %u counted, nothing sent", i);
			ASSERT_EQ(0, pt_sent(c, k, &b[i], b[i].offset, p + b[i].offset));
		}
		for (; i < nsends; i++)
			ASSERT_EQ(0, b[i].bytes) TH_LOG("entry %u after done was written", i);
		i = first + ret - 1;
		if (first + ret < nsends || b[i].bytes < b[i].len)
			stopped_short = true;
		first = i + 1;
		if (b[i].bytes < b[i].len) {
			b[i].offset += b[i].bytes;
			b[i].len -= b[i].bytes;
			b[i].bytes = 0;
			first = i;
		}
	}
	ASSERT_EQ(-EAGAIN, ret) TH_LOG("the socket took %zu bytes: %s", nsends * len,
				       errno_name(-ret));
	EXPECT_TRUE(stopped_short);
	/* In flight are sends, however many of them went as one. */
	ASSERT_EQ(0, zc_stats(c->zfd, 0, &st));
	EXPECT_EQ(st.sends - st.send_completions, st.sends_in_flight);
	pt_release(_metadata, k);
	for (i = first; i < nsends; i++)
		b[i].flags &= ~ZCOPY_SEND_DONTWAIT;
	while (first < nsends) {
		ret = zc_pool_send_batch(c->zfd, b + first, nsends - first);
		ASSERT_LT(0, ret) TH_LOG("ZCOPY_IOC_POOL_SEND_BATCH: %s", errno_name(-ret));
		for (i = first; i < first + ret; i++)
			ASSERT_EQ(0, pt_sent(c, k, &b[i], b[i].offset, p + b[i].offset));
		first += ret;
		ASSERT_EQ(b[first - 1].len, b[first - 1].bytes) TH_LOG("a blocking send short");
	}
	pt_check_data(_metadata, k);
	pt_conn_free(k);
}

/* Copied runs: one sendmsg of their bytes, cut where the socket filled. */
TEST_F(pool, batch_copied_dontwait)
{
	uint8_t *p = pt_map_pool(_metadata, &self->c, self->c.zfd, 64);

	zc_fill(p, ZC_SEED(28), 64 * self->c.ps);
	pool_batch_dontwait(_metadata, &self->c, p, 1000, NOTIFY);
	pt_check_records(_metadata, &self->c);
}

/* Runs of pages, with records and by reference: trimmed where the socket filled. */
TEST_F(pool, batch_pages_dontwait)
{
	uint8_t *p = pt_map_pool(_metadata, &self->c, self->c.zfd, 256);

	zc_fill(p, ZC_SEED(29), 256 * self->c.ps);
	pool_batch_dontwait(_metadata, &self->c, p, 4000, NOTIFY);
	pool_batch_dontwait(_metadata, &self->c, p, 4000, 0);
	pt_check_records(_metadata, &self->c);
}

/* ADDR works in any mapping of the pool, as the offset it maps. */
TEST_F(pool, send_by_addr_in_second_mapping)
{
	const size_t ps = self->c.ps, n = 8;
	struct pt_conn *k;
	uint8_t *p, *q;
	int ret;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(25), n * ps);
	q = pt_map_pool(_metadata, &self->c, self->c.zfd, 2);
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	ASSERT_EQ(0, pt_send(&self->c, k, q, ps + 10, 100, ADDR, 1, p + ps + 10, NULL));
	ASSERT_EQ(0, pt_send(&self->c, k, q, 0, 2 * ps, ADDR, 2, p, NULL));
	ASSERT_EQ(0, pt_send(&self->c, k, p, 5 * ps - 1, 2 * ps, ADDR, 3, NULL, NULL));
	/* Past the end of the smaller mapping, though within the pool. */
	ret = zc_pool_send(self->c.zfd, k->sock, (uintptr_t)(q + ps), 2 * ps, ADDR, 4, NULL);
	EXPECT_TRUE(ret == -EFAULT || ret == -EINVAL) TH_LOG("%s", errno_name(-ret));
	TH_LOG("an ADDR range past the end of its mapping, within the pool, fails with %s",
	       errno_name(-ret));
	pt_check_data(_metadata, k);
}

/* ---- Sends and records, ZCOPY_IOC_SEND and pool sends on one fd ---- */

TEST_F(pool, iov_and_pool_sends_share_sequence)
{
	const size_t ps = self->c.ps;
	struct zcopy_iovec iov;
	struct pt_conn *k;
	struct zcopy_send s = { 0 };
	uint8_t *p, *buf;
	int i;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, 4);
	zc_fill(p, ZC_SEED(9), 4 * ps);
	buf = zc_map(2 * ps);
	ASSERT_NE(NULL, buf);
	zc_fill(buf, ZC_SEED(91), 2 * ps);
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);

	for (i = 0; i < 2; i++) {
		iov = (struct zcopy_iovec){ (uintptr_t)(buf + i * ps + 3), ps - 3 };
		ASSERT_EQ(0, zc_send(self->c.zfd, k->sock, &iov, 1, 0, 100 + i, &s));
		ASSERT_EQ(iov.len, s.bytes);
		zc_log_add(&self->c.log, &s, zc_expected_flags(&k->net, s.bytes), 1);
		pt_account(k, (void *)(uintptr_t)iov.base, s.bytes);
		EXPECT_EQ(2 * i, s.seq);
		ASSERT_EQ(0, pt_send(&self->c, k, p, 2 * i * ps + 1, ps + 5, NOTIFY, 200 + i,
				     NULL, NULL));
		EXPECT_EQ(2 * i + 1, self->c.log.sent[self->c.log.nsent - 1].seq);
	}
	pt_check_data(_metadata, k);
	pt_check_records(_metadata, &self->c);
	zc_unmap(buf, 2 * ps);
}

/* ---- Copy-on-write, held pages ---- */

TEST_F(pool, cow_one_copy_per_page_touched)
{
	const size_t ps = self->c.ps, n = 8;
	struct zcopy_stats st0, st1, st2;
	struct pt_conn *k;
	uint8_t *p, *orig;
	size_t i;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, 16);
	zc_fill(p, ZC_SEED(10), 16 * ps);
	orig = malloc(16 * ps);
	ASSERT_NE(NULL, orig);
	memcpy(orig, p, 16 * ps);
	k = held_conn(_metadata, &self->c);

	/* Pages 0-7 by reference: the receiver holds them until it reads. */
	ASSERT_EQ(0, pt_send(&self->c, k, p, 0, n * ps, 0, 0, NULL, NULL));
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, st0.pool_pages_in_flight) TH_LOG("the receiver holds the pages sent");

	/* One byte of page 0, three across pages 2 and 3, all of page 5. */
	p[100] = ~orig[100];
	memset(p + 4 * ps - 1, 0x5a, 3);
	memset(p + 5 * ps, 0xa5, ps);
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(4, DELTA(st1, st0, cow_copies)) TH_LOG("pages 0, 2, 3, 5 touched");
	EXPECT_LE(DELTA(st1, st0, cow_copies), DELTA(st1, st0, write_faults))
		TH_LOG("each copy comes from a write fault");
	TH_LOG("4 pages touched: cow_copies +%llu, write_faults +%llu",
	       ZC_U64(DELTA(st1, st0, cow_copies)), ZC_U64(DELTA(st1, st0, write_faults)));

	/* The copies are ours now: writing them again copies nothing. */
	p[101] = 1;
	p[4 * ps - 2] = 2;
	p[3 * ps + 7] = 3;
	memset(p + 5 * ps, 0x3c, ps);
	/* Nor does writing pages never sent. */
	memset(p + 9 * ps, 0x11, 2 * ps);
	/* Nor reading held ones. */
	for (i = 0; i < n * ps; i += 64)
		(void)__atomic_load_n(p + i, __ATOMIC_RELAXED);
	st2 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, DELTA(st2, st1, cow_copies));

	/* The application sees its writes, and the untouched pages as they were. */
	EXPECT_EQ(1, p[101]);
	EXPECT_EQ(0x5a, p[4 * ps]);
	EXPECT_EQ(0x3c, p[6 * ps - 1]);
	EXPECT_EQ(0, memcmp(p + ps, orig + ps, ps));
	EXPECT_EQ(0, memcmp(p + 4 * ps + 2, orig + 4 * ps + 2, ps - 2));
	EXPECT_EQ(0, memcmp(p + 6 * ps, orig + 6 * ps, 2 * ps));

	/* The receiver gets the pages as they were at the send. */
	pt_check_data(_metadata, k);
	/* The four pages rewritten are the pool's again; the others stay given. */
	st2 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n - 4, st2.pool_pages_in_flight);
	free(orig);
}

TEST_F(pool, reads_never_copy)
{
	const size_t ps = self->c.ps, n = 4;
	struct zcopy_stats st0, st1;
	struct pt_conn *k;
	uint64_t sum = 0;
	uint8_t *p;
	size_t i;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(11), n * ps);
	k = held_conn(_metadata, &self->c);
	ASSERT_EQ(0, pt_send(&self->c, k, p, 0, n * ps, 0, 0, NULL, NULL));
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, st0.pool_pages_in_flight);
	for (i = 0; i < n * ps; i++)
		sum += p[i];
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(11), n * ps));
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, DELTA(st1, st0, cow_copies)) TH_LOG("reading held pages copied (sum %llu)",
						       ZC_U64(sum));
	EXPECT_EQ(0, DELTA(st1, st0, write_faults));
	EXPECT_EQ(n, st1.pool_pages_in_flight);
	pt_check_data(_metadata, k);
}

/*
 * Pages sent by reference and since read: the receiver may have kept them
 * (the very pages), so they stay given until rewritten, and the first
 * write to each copies it, once.
 */
TEST_F(pool, write_after_release)
{
	const size_t ps = self->c.ps, n = 4;
	struct zcopy_stats st0, st1, st2;
	struct pt_conn *k;
	uint8_t *p;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(12), n * ps);
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	ASSERT_EQ(0, pt_send(&self->c, k, p, 0, n * ps, 0, 0, NULL, NULL));
	ASSERT_EQ(0, zc_rx_wait_for(&k->rx, k->bytes, 10000));
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, st0.pool_pages_in_flight) TH_LOG("given by reference: held until rewritten");
	zc_fill(p, ZC_SEED(121), n * ps);
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, DELTA(st1, st0, cow_copies)) TH_LOG("one copy per page");
	EXPECT_EQ(0, st1.pool_pages_in_flight);
	zc_fill(p, ZC_SEED(122), n * ps);
	st2 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, DELTA(st2, st1, cow_copies)) TH_LOG("the second write copied again");
	EXPECT_EQ(0, DELTA(st2, st1, write_faults)) TH_LOG("the second write faulted again");
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(122), n * ps));
	pt_check_data(_metadata, k);
}

/* A child has no pool, and MADV_DOFORK cannot give it one (EINVAL). */
TEST_F(pool, fork_child_has_no_pool)
{
	const size_t ps = self->c.ps, n = 4;
	struct zcopy_stats st;
	struct pt_conn *k;
	int mode, status;
	uint8_t *p;
	pid_t pid;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(13), n * ps);
	EXPECT_EQ(-1, madvise(p, n * ps, MADV_DOFORK)) TH_LOG("MADV_DOFORK undid MADV_DONTFORK");
	EXPECT_EQ(EINVAL, errno);
	for (mode = 0; mode < 2; mode++) {
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			signal(SIGSEGV, SIG_DFL);
			if (mode)
				__atomic_store_n(p + ps, 1, __ATOMIC_RELAXED);
			else
				(void)__atomic_load_n(p + ps, __ATOMIC_RELAXED);
			_exit(0);
		}
		status = zc_wait_child(pid, 10000);
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV)
			TH_LOG("the child %s the pool's address: status %#x, not SIGSEGV",
			       mode ? "wrote" : "read", status);
	}
	/* The parent's pool is untouched and still sends. */
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(13), n * ps));
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, st.pool_pages);
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	ASSERT_EQ(0, pt_send(&self->c, k, p, 10, n * ps - 20, 0, 0, NULL, NULL));
	pt_check_data(_metadata, k);
}

/*
 * Records read by a process with no mapping of the pool (here a child,
 * which inherits none) map nothing there, and their pages are not mapped
 * writable at the owner's next read either: that one re-arms what its own
 * records cover.
 */
TEST_F(pool, records_read_elsewhere_rearm_nothing)
{
	const size_t ps = self->c.ps, n = 4;
	struct zcopy_completion r[8];
	struct zcopy_stats st0, st1;
	struct pt_conn *k;
	int status;
	uint8_t *p;
	pid_t pid;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n + 1);
	zc_fill(p, ZC_SEED(14), (n + 1) * ps);
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	ASSERT_EQ(0, zc_pool_send(self->c.zfd, k->sock, 0, n * ps, NOTIFY, 0, NULL));
	pt_account(k, p, n * ps);
	ASSERT_EQ(0, zc_wait_idle(self->c.zfd, 0, 5000, &st0));
	ASSERT_LT(0, st0.records_queued);

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(read(self->c.zfd, r, sizeof(r)) > 0 ? 0 : 1);
	status = zc_wait_child(pid, 10000);
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("child status %#x", status);
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, st1.records_queued);
	EXPECT_EQ(0, DELTA(st1, st0, pages_rearmed)) TH_LOG("re-armed in a child with no pool");

	ASSERT_EQ(0, zc_pool_send(self->c.zfd, k->sock, n * ps, ps, NOTIFY, 1, NULL));
	pt_account(k, p + n * ps, ps);
	ASSERT_EQ(0, zc_wait_idle(self->c.zfd, 0, 5000, &st0));
	ASSERT_EQ(sizeof(r[0]), read(self->c.zfd, r, sizeof(r)));
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	/* 0 if the stack had yet to drop the page's last skb reference. */
	EXPECT_GE(1, DELTA(st1, st0, pages_rearmed))
		TH_LOG("the owner's read re-armed %llu pages, its record covers 1",
		       ZC_U64(DELTA(st1, st0, pages_rearmed)));
	pt_check_data(_metadata, k);
}

/*
 * Pages read between their send and their record are mapped read-only by
 * then; reading the record maps them writable all the same, with the
 * pages not read, and the write after takes no fault.
 */
TEST_F(pool, rearm_maps_pages_read_since)
{
	const size_t ps = self->c.ps, n = 4;
	struct zcopy_stats st0, st1, st2;
	struct pt_conn *k;
	uint64_t sum = 0;
	uint8_t *p;
	size_t i;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(15), n * ps);
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	ASSERT_EQ(0, pt_send(&self->c, k, p, 0, n * ps, NOTIFY, 15, NULL, NULL));
	/* Pages 1 and 2 read: a read fault maps each read-only. */
	for (i = ps; i < 3 * ps; i += 64)
		sum += __atomic_load_n(&p[i], __ATOMIC_RELAXED);
	pt_check_records(_metadata, &self->c);
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, DELTA(st1, st0, pages_rearmed)) TH_LOG("read since: sum %llu", ZC_U64(sum));
	zc_fill(p, ZC_SEED(151), n * ps);
	st2 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, DELTA(st2, st1, write_faults)) TH_LOG("a re-armed page faulted");
	EXPECT_EQ(0, DELTA(st2, st1, cow_copies));
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(151), n * ps));
	pt_check_data(_metadata, k);
}

/* What a page-checking receiver found. */
struct rw_check {
	int64_t pages;		/* pages received */
	int64_t bad;		/* of which with bytes other than written */
	int64_t first;		/* the first bad one */
	int64_t whose;		/* the send whose bytes it carried, or INT64_MIN */
};

/*
 * Receive @n pages on a connection accepted from @lfd: page i must hold
 * zc_fill(page, ZC_SEED(i + 1), ps).
 */
static void __noreturn rw_receiver(int lfd, long n, size_t ps, struct rw_check *r)
{
	uint8_t *buf = malloc(ps), *want = malloc(ps);
	long i, j;
	int c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	c = accept(lfd, NULL, NULL);
	for (i = 0; c >= 0 && buf && want && i < n; i++) {
		size_t got = 0;
		ssize_t m;

		while (got < ps && (m = read(c, buf + got, ps - got)) > 0)
			got += m;
		if (got < ps)
			break;
		r->pages++;
		zc_fill(want, ZC_SEED(i + 1), ps);
		if (!memcmp(buf, want, ps) || r->bad++)
			continue;
		r->first = i;
		r->whose = INT64_MIN;
		for (j = i - 8; j < i; j++) {
			zc_fill(want, ZC_SEED(j + 1), ps);
			if (j >= 0 && !memcmp(buf, want, ps))
				r->whose = j;
		}
	}
	_exit(0);
}

/*
 * A ring of K pages, each written just before its send with a record: the
 * write often meets the re-arm of the page's previous send, which completes
 * at about that time. Whatever the interleaving, each send must carry what
 * was written before it. A stress test: passing proves no absence of races.
 * At 10,000 sends per ring it took over 180 s on the debug kernel (make
 * check-debug): the limit is there to catch a hang, not to time it.
 */
TEST_F_TIMEOUT(pool, write_while_rearming, 900)
{
	const size_t ps = self->c.ps;
	struct zcopy_stats st;
	int ring;

	for (ring = 1; ring <= RW_MAX_RING; ring++) {
		struct sockaddr_storage ss;
		socklen_t sl = zc_sockaddr(AF_INET, "127.0.0.1", 0, &ss);
		unsigned int app_wrong = 0;
		struct zc_log log = { 0 };
		struct rw_check *r;
		int lfd, s, fd, status;
		uint8_t *p;
		pid_t pid;
		long i;

		r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			 -1, 0);
		ASSERT_NE(MAP_FAILED, r);
		pt_track(_metadata, &self->c, r, sizeof(*r));
		lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, lfd);
		ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&ss, sl));
		ASSERT_EQ(0, listen(lfd, 1));
		sl = sizeof(ss);
		ASSERT_EQ(0, getsockname(lfd, (struct sockaddr *)&ss, &sl));
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			rw_receiver(lfd, RW_ITERATIONS, ps, r);
		close(lfd);
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, s);
		ASSERT_EQ(0, connect(s, (struct sockaddr *)&ss, sl));
		fd = pt_open_fd(_metadata, &self->c);
		p = pt_map_pool(_metadata, &self->c, fd, ring);

		for (i = 0; i < RW_ITERATIONS; i++) {
			size_t off = (i % ring) * ps;
			struct zcopy_pool_send out;
			int ret;

			zc_fill(p + off, ZC_SEED(i + 1), ps);
			app_wrong += !zc_check_all(p + off, ZC_SEED(i + 1), ps);
			ret = zc_pool_send(fd, s, off, ps, NOTIFY, i, &out);
			ASSERT_EQ(0, ret) TH_LOG("send %ld: %s", i, strerror(-ret));
			ASSERT_EQ(ps, out.bytes);
			if (!(i % 16))
				while (zc_log_records(fd, &log, 0) > 0)
					;
		}
		shutdown(s, SHUT_WR);
		status = zc_wait_child(pid, 30000);
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("receiver %#x", status);
		st = pt_stats(_metadata, fd, 0);
		TH_LOG("ring of %d: %d sends, cow_copies %llu, write_faults %llu, pages_rearmed %llu",
		       ring, RW_ITERATIONS, ZC_U64(st.cow_copies), ZC_U64(st.write_faults),
		       ZC_U64(st.pages_rearmed));
		EXPECT_EQ(RW_ITERATIONS, r->pages) TH_LOG("ring of %d: pages received", ring);
		EXPECT_EQ(0, app_wrong) TH_LOG("ring of %d: the pool read back other bytes", ring);
		EXPECT_EQ(0, r->bad)
			TH_LOG("ring of %d: %lld of %d sends carried other bytes than written before them; the first, send %lld, carried those of send %lld: the write went to a page that was no longer the pool's",
			       ring, (long long)r->bad, RW_ITERATIONS, (long long)r->first,
			       (long long)r->whose);
		close(s);
		zc_log_free(&log);
		pt_unmap(&self->c, p, ring * ps);
		pt_close_fd(&self->c, fd);
		pt_unmap(&self->c, r, sizeof(*r));
	}
}

/* ---- munmap, close, exit with pages in flight ---- */

TEST_F(pool, munmap_with_pages_in_flight)
{
	const size_t ps = self->c.ps, n = 8;
	struct zcopy_stats st, m;
	struct pt_conn *k, *k2;
	uint8_t *p, *orig;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(14), n * ps);
	orig = malloc(n * ps);
	ASSERT_NE(NULL, orig);
	memcpy(orig, p, n * ps);
	k = blocked_conn(_metadata, &self->c);
	/* Queued behind a closed window: a send with a record, one without. */
	ASSERT_EQ(0, pt_send(&self->c, k, p, 0, 4 * ps, NOTIFY, 1, NULL, NULL));
	ASSERT_EQ(0, pt_send(&self->c, k, p, 4 * ps, 4 * ps, 0, 2, NULL, NULL));
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, st.pool_pages_in_flight);
	pt_unmap(&self->c, p, n * ps);

	/* The pool lives on with the file. */
	m = pt_stats(_metadata, self->c.zfd, ZCOPY_STATS_MODULE);
	EXPECT_EQ(self->c.base.pool_pages + n, m.pool_pages);
	pt_check_data(_metadata, k);
	pt_check_records(_metadata, &self->c);

	/* Mapped again, it shows the same bytes, and sends them. */
	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	EXPECT_EQ(0, memcmp(p, orig, n * ps)) TH_LOG("the pool's bytes after munmap and mmap");
	k2 = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	ASSERT_EQ(0, pt_send(&self->c, k2, p, 0, n * ps, 0, 3, orig, NULL));
	pt_check_data(_metadata, k2);
	free(orig);
}

TEST_F(pool, close_with_pages_in_flight)
{
	const size_t ps = self->c.ps, n = 8;
	struct pt_conn *k;
	uint8_t *p;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(15), n * ps);
	k = blocked_conn(_metadata, &self->c);
	ASSERT_EQ(0, pt_send(&self->c, k, p, 0, 4 * ps, NOTIFY, 1, NULL, NULL));
	ASSERT_EQ(0, pt_send(&self->c, k, p, 4 * ps, 4 * ps, 0, 2, NULL, NULL));
	/* Gone from under the sends: the file and the mapping. */
	pt_close_fd(&self->c, self->c.zfd);
	pt_unmap(&self->c, p, n * ps);
	pt_check_data(_metadata, k);
	/* The teardown checks that the pool's pages went back. */
}

TEST_F(pool, close_keeps_mapping_until_munmap)
{
	const size_t ps = self->c.ps, n = 8;
	int fd = self->c.zfd, fd2, ret;
	struct zcopy_stats m;
	uint8_t *p;

	fd2 = pt_open_fd(_metadata, &self->c);
	p = pt_map_pool(_metadata, &self->c, fd, n);
	zc_fill(p, ZC_SEED(16), n * ps);
	pt_close_fd(&self->c, fd);
	m = pt_stats(_metadata, fd2, ZCOPY_STATS_MODULE);
	EXPECT_EQ(self->c.base.pool_pages + n, m.pool_pages)
		TH_LOG("the mapping keeps the pool after close");
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(16), n * ps));
	zc_fill(p, ZC_SEED(161), n * ps);
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(161), n * ps));
	pt_unmap(&self->c, p, n * ps);
	ret = pt_wait_in_flight(fd2, ZCOPY_STATS_MODULE, self->c.base.pool_pages_in_flight,
				2000, &m);
	EXPECT_EQ(0, ret);
	EXPECT_EQ(self->c.base.pool_pages, m.pool_pages)
		TH_LOG("the pool is freed with its last mapping");
}

TEST_F(pool, exit_with_pages_in_flight)
{
	const size_t ps = self->c.ps, n = 8;
	struct pt_conn_opts o = { .hold = true, .rcvbuf = BLOCK_RCVBUF, .sndbuf = BLOCK_SNDBUF };
	struct zc_rx_shared *sh;
	struct pt_conn *k;
	int status, ret;
	pid_t pid;

	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, &o);
	sh = k->rx.sh;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* A sender of its own: fd, pool, sends in flight, then exit. */
		uint64_t hash = ZC_FNV_INIT, bytes = 0;
		int zfd = zc_open();
		uint8_t *p, *plain = malloc(BLOCK_BYTES);

		if (zfd < 0 || !plain)
			_exit(2);
		p = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_SHARED, zfd, ZCOPY_MMAP_POOL);
		if (p == MAP_FAILED)
			_exit(3);
		zc_fill(plain, ZC_SEED(17), BLOCK_BYTES);
		if (send(k->sock, plain, BLOCK_BYTES, 0) != BLOCK_BYTES)
			_exit(4);
		hash = zc_fnv(hash, plain, BLOCK_BYTES);
		bytes += BLOCK_BYTES;
		zc_fill(p, ZC_SEED(171), n * ps);
		hash = zc_fnv(hash, p, n * ps);
		bytes += n * ps;
		if (zc_pool_send(zfd, k->sock, 0, 4 * ps, NOTIFY, 0, NULL) ||
		    zc_pool_send(zfd, k->sock, 4 * ps, 4 * ps, 0, 0, NULL))
			_exit(5);
		sh->extra[0] = bytes;
		sh->extra[1] = hash;
		_exit(0);
	}
	/* The child's socket is the only one left: its exit ends the stream. */
	close(k->sock);
	k->sock = -1;
	status = zc_wait_child(pid, 10000);
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("sender status %#x", status);
	pt_release(_metadata, k);
	ret = zc_rx_finish(&k->rx, 0, 30000);
	ASSERT_EQ(0, ret) TH_LOG("receiver: %s after %llu bytes", strerror(-ret),
				 ZC_U64(sh->bytes));
	EXPECT_EQ(0, sh->err);
	EXPECT_EQ(sh->extra[0], sh->bytes);
	EXPECT_EQ(sh->extra[1], sh->hash) TH_LOG("the stream's checksum differs");
}

/* ---- mremap ---- */

TEST_F(pool, mremap_moves_pool)
{
	const size_t ps = self->c.ps, n = 8;
	struct zcopy_stats st0, st1;
	struct pt_conn *k, *kh;
	uint8_t *p, *q, *r;
	unsigned char vec;
	int ret;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(18), n * ps);
	r = mmap(NULL, n * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	q = mremap(p, n * ps, n * ps, MREMAP_MAYMOVE | MREMAP_FIXED, r);
	ASSERT_EQ(r, q) TH_LOG("mremap: %s", strerror(errno));
	pt_untrack(&self->c, p);
	pt_track(_metadata, &self->c, q, n * ps);
	EXPECT_EQ(-1, mincore(p, ps, &vec)) TH_LOG("the old address is unmapped");
	EXPECT_TRUE(zc_check_all(q, ZC_SEED(18), n * ps)) TH_LOG("the pool's bytes at the new address");

	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	kh = held_conn(_metadata, &self->c);
	/* By address at the new place; the old one is no pool any more. */
	ASSERT_EQ(0, pt_send(&self->c, k, q, 100, 5000, ADDR, 0, NULL, NULL));
	ret = zc_pool_send(self->c.zfd, k->sock, (uintptr_t)p, 10, ADDR, 0, NULL);
	EXPECT_EQ(-EFAULT, ret) TH_LOG("ADDR at the old address: %s", errno_name(-ret));

	/* Copy-on-write there. */
	ASSERT_EQ(0, pt_send(&self->c, kh, q, 2 * ps, 2 * ps, ADDR, 0, NULL, NULL));
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	memset(q + 2 * ps, 0x77, 2 * ps);
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(2, DELTA(st1, st0, cow_copies)) TH_LOG("two held pages written at the new address");

	/* A send with a record re-arms the page where it is mapped now. */
	ASSERT_EQ(0, pt_send(&self->c, k, q, 6 * ps, ps, ADDR | NOTIFY, 7, NULL, NULL));
	pt_check_records(_metadata, &self->c);
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(1, DELTA(st0, st1, pages_rearmed)) TH_LOG("the page sent, once completed");
	memset(q + 6 * ps, 0x66, ps);
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, DELTA(st1, st0, write_faults)) TH_LOG("a re-armed page takes no fault");
	EXPECT_EQ(0, DELTA(st1, st0, cow_copies));

	pt_check_data(_metadata, k);
	pt_check_data(_metadata, kh);
}

TEST_F(pool, mremap_grow_fails)
{
	const size_t ps = self->c.ps, n = 4;
	struct zcopy_stats st;
	uint8_t *p;
	void *q;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(19), n * ps);
	q = mremap(p, n * ps, 2 * n * ps, MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, q) TH_LOG("growing the pool by mremap");
	if (q != MAP_FAILED) {
		pt_untrack(&self->c, p);
		pt_track(_metadata, &self->c, q, 2 * n * ps);
		p = q;
	} else {
		TH_LOG("growing by mremap fails with %s", errno_name(errno));
	}
	q = mremap(p, n * ps, (n + 1) * ps, 0);
	EXPECT_EQ(MAP_FAILED, q) TH_LOG("growing the pool in place");
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(19), n * ps));
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(n, st.pool_pages);
}

/* ---- Nothing but zcopy holds a pool page ---- */

/* io_uring without liburing: just what it takes to register a buffer. */
struct pt_uring {
	int fd;
	struct io_uring_params p;
};

static int pt_uring_init(struct pt_uring *u)
{
	memset(u, 0, sizeof(*u));
	u->fd = syscall(__NR_io_uring_setup, 4, &u->p);
	return u->fd < 0 ? -errno : 0;
}

/* What the cases below work on: pool page 0, which a receiver holds. */
struct ref_ctx {
	uint8_t *p;		/* the pool */
	size_t ps;
	int zfd;
	int sock;		/* a connected loopback TCP socket */
	uint64_t word;		/* what a writing case writes at p[0] */
};

static int ret_errno(long ret)
{
	return ret < 0 ? -errno : 0;
}

static int ref_vmsplice(struct ref_ctx *x)
{
	struct iovec iv = { x->p, x->ps };
	int pfd[2], ret;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	ret = ret_errno(vmsplice(pfd[1], &iv, 1, 0));
	if (!ret && splice(pfd[0], NULL, x->sock, NULL, x->ps, 0) != (ssize_t)x->ps)
		ret = -EPROTO;
	close(pfd[0]);
	close(pfd[1]);
	return ret;
}

static int ref_odirect(struct ref_ctx *x, bool read)
{
	int fd = open("/dev/ram0", O_RDWR | O_DIRECT | O_CLOEXEC), ret;

	if (fd < 0)
		return -ENODEV;
	if (read)
		ret = ret_errno(pread(fd, x->p, x->ps, 0));
	else
		ret = ret_errno(pwrite(fd, x->p, x->ps, 8 * x->ps));
	close(fd);
	return ret;
}

static int ref_odirect_read(struct ref_ctx *x)
{
	return ref_odirect(x, true);
}

static int ref_odirect_write(struct ref_ctx *x)
{
	return ref_odirect(x, false);
}

static int ref_io_uring(struct ref_ctx *x)
{
	struct iovec iv = { x->p, x->ps };
	struct pt_uring u;
	int ret = pt_uring_init(&u);

	if (ret)
		return -ENODEV;
	ret = ret_errno(syscall(__NR_io_uring_register, u.fd, IORING_REGISTER_BUFFERS, &iv, 1));
	close(u.fd);
	return ret;
}

static int ref_process_vm_readv(struct ref_ctx *x)
{
	uint8_t buf[64];
	struct iovec local = { buf, sizeof(buf) }, remote = { x->p, sizeof(buf) };

	return ret_errno(process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
}

static int ref_process_vm_writev(struct ref_ctx *x)
{
	struct iovec local = { &x->word, 8 }, remote = { x->p, 8 };

	return ret_errno(process_vm_writev(getpid(), &local, 1, &remote, 1, 0));
}

static int ref_msg_zerocopy(struct ref_ctx *x)
{
	int one = 1;

	if (setsockopt(x->sock, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)))
		return -ENODEV;
	return ret_errno(send(x->sock, x->p, x->ps, MSG_ZEROCOPY));
}

static int ref_zcopy_send(struct ref_ctx *x)
{
	struct zcopy_iovec iov = { (uintptr_t)x->p, x->ps };
	struct zcopy_send s = { 0 };

	return zc_send(x->zfd, x->sock, &iov, 1, 0, 0, &s);
}

/* A child attaches to us with ptrace and pokes the word into the page. */
static int ref_ptrace_poke(struct ref_ctx *x)
{
	pid_t parent = getpid(), pid;
	int status;

	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		long peek;

		if (ptrace(PTRACE_ATTACH, parent, NULL, NULL) ||
		    waitpid(parent, &status, __WALL) != parent)
			_exit(1);
		if (ptrace(PTRACE_POKEDATA, parent, x->p, (void *)(uintptr_t)x->word))
			_exit(2);
		errno = 0;
		peek = ptrace(PTRACE_PEEKDATA, parent, x->p, NULL);
		ptrace(PTRACE_DETACH, parent, NULL, NULL);
		_exit(errno ? 3 : (uint64_t)peek == x->word ? 0 : 4);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EPROTO;
}

static int ref_proc_mem(struct ref_ctx *x)
{
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC), ret;

	if (fd < 0)
		return -ENODEV;
	ret = ret_errno(pwrite(fd, &x->word, 8, (off_t)(uintptr_t)x->p));
	close(fd);
	return ret;
}

static int ref_read_into(struct ref_ctx *x)
{
	int pfd[2], ret;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	ret = write(pfd[1], &x->word, 8) == 8 ? ret_errno(read(pfd[0], x->p, 8)) : -EIO;
	close(pfd[0]);
	close(pfd[1]);
	return ret;
}

static int ref_send_from(struct ref_ctx *x)
{
	return ret_errno(send(x->sock, x->p, x->ps, 0));
}

enum ref_outcome {
	REFUSED,	/* fails with err (or err2), nothing taken or written */
	WRITTEN,	/* the word lands in a copy; the receiver keeps the page */
	READ_ONLY,	/* succeeds without a reference, writing nothing */
};

static const struct ref_case {
	const char *name;
	int (*op)(struct ref_ctx *x);
	enum ref_outcome outcome;
	int err, err2;
	const char *why;
} ref_cases[] = {
	{ "vmsplice, then splice to a socket", ref_vmsplice, REFUSED, EFAULT, 0,
	  "the pipe would hold the page itself, and a receiver after it" },
	{ "O_DIRECT read into the page", ref_odirect_read, REFUSED, EFAULT, 0,
	  "a device would write into the page behind the pool" },
	{ "O_DIRECT write from the page", ref_odirect_write, REFUSED, EFAULT, 0,
	  "the device would hold the page past any copy-on-write" },
	{ "io_uring buffer registration", ref_io_uring, REFUSED, EFAULT, EOPNOTSUPP,
	  "a long-term pin, written by later reads" },
	{ "process_vm_readv", ref_process_vm_readv, REFUSED, EFAULT, 0,
	  "it pins the page to read it" },
	{ "process_vm_writev", ref_process_vm_writev, REFUSED, EFAULT, 0,
	  "it pins the page to write it" },
	{ "MSG_ZEROCOPY send", ref_msg_zerocopy, REFUSED, EFAULT, 0,
	  "the stack would hold the page with no copy-on-write" },
	{ "ZCOPY_IOC_SEND (pinned send)", ref_zcopy_send, REFUSED, EFAULT, 0,
	  "pool pages go out through ZCOPY_IOC_POOL_SEND" },
	{ "ptrace(PTRACE_POKEDATA)", ref_ptrace_poke, WRITTEN, 0, 0,
	  "a debugger writes through the mapping's access, like a write fault" },
	{ "write to /proc/PID/mem", ref_proc_mem, WRITTEN, 0, 0,
	  "the same path as ptrace" },
	{ "read(2) into the page", ref_read_into, WRITTEN, 0, 0,
	  "copy_to_user() faults like any store" },
	{ "send(2) from the page", ref_send_from, READ_ONLY, 0, 0,
	  "a copying send reads it and keeps nothing" },
};

/*
 * Every way another subsystem can reach a pool page, here one a receiver
 * holds (sent by reference): what takes a reference is refused, so no one
 * but zcopy ever holds a pool page; what writes without one lands in a
 * copy, as the application's own writes do. The receiver gets each page
 * as it was sent.
 */
TEST_F(pool, other_references)
{
	const size_t ps = self->c.ps;
	struct zcopy_stats st0, st1;
	struct ref_ctx x = { .ps = ps, .zfd = self->c.zfd };
	uint8_t *orig = malloc(ps);
	struct pt_conn *k, *sink;
	size_t i;

	ASSERT_NE(NULL, orig);
	x.p = pt_map_pool(_metadata, &self->c, self->c.zfd, 2);
	k = held_conn(_metadata, &self->c);
	sink = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	x.sock = sink->sock;

	for (i = 0; i < ARRAY_SIZE(ref_cases); i++) {
		const struct ref_case *rc = &ref_cases[i];
		int ret;

		zc_fill(x.p, ZC_SEED(300 + i), ps);
		memcpy(orig, x.p, ps);
		x.word = 0x5eed000000000000ULL | i;
		ASSERT_EQ(0, pt_send(&self->c, k, x.p, 0, ps, 0, 0, NULL, NULL));
		st0 = pt_stats(_metadata, self->c.zfd, 0);
		ret = rc->op(&x);
		st1 = pt_stats(_metadata, self->c.zfd, 0);
		if (ret == -ENODEV) {
			TH_LOG("%s: not available here", rc->name);
			continue;
		}
		switch (rc->outcome) {
		case REFUSED:
			EXPECT_TRUE(ret == -rc->err || (rc->err2 && ret == -rc->err2))
				TH_LOG("%s: %s, not %s (%s)", rc->name, errno_name(-ret),
				       errno_name(rc->err), rc->why);
			EXPECT_EQ(0, memcmp(x.p, orig, ps)) TH_LOG("%s changed the page", rc->name);
			EXPECT_EQ(0, DELTA(st1, st0, cow_copies)) TH_LOG("%s", rc->name);
			break;
		case WRITTEN:
			EXPECT_EQ(0, ret) TH_LOG("%s: %s (%s)", rc->name, errno_name(-ret), rc->why);
			EXPECT_EQ(x.word, *(uint64_t *)x.p) TH_LOG("%s: the word written", rc->name);
			EXPECT_EQ(0, memcmp(x.p + 8, orig + 8, ps - 8)) TH_LOG("%s", rc->name);
			EXPECT_EQ(1, DELTA(st1, st0, cow_copies))
				TH_LOG("%s wrote a held page: one copy", rc->name);
			break;
		case READ_ONLY:
			EXPECT_EQ(0, ret) TH_LOG("%s: %s", rc->name, errno_name(-ret));
			if (!ret)
				pt_account(sink, orig, ps);
			EXPECT_EQ(0, memcmp(x.p, orig, ps)) TH_LOG("%s", rc->name);
			EXPECT_EQ(0, DELTA(st1, st0, cow_copies)) TH_LOG("%s", rc->name);
			break;
		}
	}
	/* The holding receiver gets every page as it was sent. */
	pt_check_data(_metadata, k);
	pt_check_data(_metadata, sink);
	free(orig);
}

/* ---- Faults racing copy-on-write ---- */

struct race_state {
	uint8_t *p;
	size_t ps;
	bool stop;
	uint64_t done;			/* the last generation written whole */
	uint64_t reads, stale, stale_seen, stale_after;
};

/* Read slot 0 again and again, unmapping it first where that is allowed. */
static void *race_reader(void *arg)
{
	struct race_state *r = arg;
	uint64_t *w = (uint64_t *)r->p;
	size_t last = r->ps / 8 - 1;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		uint64_t done = __atomic_load_n(&r->done, __ATOMIC_ACQUIRE), a, b;

		madvise(r->p, r->ps, MADV_DONTNEED);
		a = __atomic_load_n(&w[0], __ATOMIC_RELAXED);
		b = __atomic_load_n(&w[last], __ATOMIC_RELAXED);
		r->reads++;
		if (a < done || b < done) {
			if (!r->stale++) {
				r->stale_seen = a < b ? a : b;
				r->stale_after = done;
			}
		}
	}
	return NULL;
}

/*
 * A read fault of slot 0 racing the copy-on-write of a write to it: the
 * reader must never see a generation older than one already written whole,
 * and the writer must never stall (the harness's timeout catches that).
 */
TEST_F_TIMEOUT(pool, read_fault_racing_copy_on_write, 300)
{
	const size_t ps = self->c.ps, words = ps / 8;
	struct race_state r = { .ps = ps };
	uint64_t *expect = malloc(ps), g, copies;
	struct zcopy_stats st0, st1;
	struct pt_conn *k;
	pthread_t th;
	size_t i;

	ASSERT_NE(NULL, expect);
	r.p = pt_map_pool(_metadata, &self->c, self->c.zfd, 1);
	memset(r.p, 0, ps);
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	ASSERT_EQ(0, pthread_create(&th, NULL, race_reader, &r));
	for (g = 1; g <= RACE_ROUNDS && !r.stale; g++) {
		struct zcopy_pool_send s = { 0 };

		/* By reference: the page is the receiver's now, and writing it copies. */
		if (!zc_pool_send(self->c.zfd, k->sock, 0, ps, ZCOPY_SEND_DONTWAIT, 0, &s)) {
			for (i = 0; i < words; i++)
				expect[i] = g - 1;
			pt_account(k, expect, s.bytes);
		}
		for (i = 0; i < words; i++)
			__atomic_store_n((uint64_t *)r.p + i, g, __ATOMIC_RELAXED);
		__atomic_store_n(&r.done, g, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	copies = DELTA(st1, st0, cow_copies);
	TH_LOG("%llu generations, %llu reads, %llu copies on write",
	       ZC_U64(g - 1), ZC_U64(r.reads), ZC_U64(copies));
	EXPECT_EQ(0, r.stale) TH_LOG("a read saw generation %llu after %llu was written whole",
				     ZC_U64(r.stale_seen), ZC_U64(r.stale_after));
	EXPECT_LT(0, copies) TH_LOG("no write raced a send: the test proved nothing");
	pt_check_data(_metadata, k);
	free(expect);
}

/* On CPU 0: the first store to slot 0, whose write fault is held up. */
static void *mkwrite_writer(void *arg)
{
	struct race_state *r = arg;

	zc_pin_cpu(0);
	memset(r->p, 0xbb, r->ps);
	return NULL;
}

/*
 * The first write to a free pool page mapped read-only, racing a send of
 * that page: the send carries the page as it was, and the write lands in
 * a copy. Once ->pfn_mkwrite lets a write through, the core makes the PTE
 * writable if it is still the one it saw; a send that zaps it, then a read
 * that maps the page read-only again, leave one just like it. The
 * selftests' module holds the writer up right after ->pfn_mkwrite, on CPU
 * 0, while CPU 1 sends the page and reads it.
 */
TEST_F_TIMEOUT(pool, write_fault_racing_send, 120)
{
	const size_t ps = self->c.ps;
	struct race_state r = { .ps = ps };
	uint8_t *zero = calloc(1, ps);
	struct zcopy_stats st0, st1;
	int64_t deadline;
	struct pt_conn *k;
	long held = 0;
	pthread_t th;
	int ret;

	ASSERT_NE(NULL, zero);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "one CPU: the writer would hold up the sender");
	ret = zc_testmod_load("delay_ms=500");
	if (ret == -ENOENT)
		SKIP(return, "no " ZC_TESTMOD_KO);
	ASSERT_EQ(0, ret) TH_LOG("load zcopy_testmod: %s", strerror(-ret));

	r.p = pt_map_pool(_metadata, &self->c, self->c.zfd, 1);
	/* Mapped read-only by the read, the slot free. */
	ASSERT_EQ(0, __atomic_load_n(r.p, __ATOMIC_RELAXED));
	k = held_conn(_metadata, &self->c);
	ASSERT_EQ(0, zc_pin_cpu(1));
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	ASSERT_EQ(0, zc_testmod_write("armed", 1));
	ASSERT_EQ(0, pthread_create(&th, NULL, mkwrite_writer, &r));
	for (deadline = zc_now_ms() + 10000; !held && zc_now_ms() < deadline;)
		ASSERT_EQ(0, zc_testmod_read("held", &held));
	ASSERT_EQ(1, held) TH_LOG("the write did not reach ->pfn_mkwrite");

	/* By reference, to a receiver that holds it: in flight for good. */
	ASSERT_EQ(0, pt_send(&self->c, k, r.p, 0, ps, 0, 0, zero, NULL));
	EXPECT_EQ(0, __atomic_load_n(r.p, __ATOMIC_RELAXED)) TH_LOG("the write went through early");
	pthread_join(th, NULL);
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(1, DELTA(st1, st0, cow_copies)) TH_LOG("the write was not copied");
	EXPECT_EQ(0xbb, r.p[ps - 1]);
	pt_release(_metadata, k);
	pt_check_data(_metadata, k);
	EXPECT_EQ(0, zc_testmod_unload());
	free(zero);
}

struct gap_send {
	int zfd, sock;
	int ret;
};

/* Send slot 0 with a record; its release may run in this thread. */
static void *gap_sender(void *arg)
{
	struct gap_send *g = arg;

	g->ret = zc_pool_send(g->zfd, g->sock, 0, getpagesize(), NOTIFY, 2, NULL);
	return NULL;
}

/*
 * A send's release lets go of its slots, then of its pages. A read of
 * another record in between finds the slot to re-arm with its page still
 * taken by the send, leaves it to fault and forgets it, and the read of
 * the send's own record re-arms nothing: the write after it faults. The
 * selftests' module holds the release up in that gap (in zcopy's worker,
 * or in the sending thread where the stack let go before the call
 * returned) while the other record is read.
 */
TEST_F_TIMEOUT(pool, rearm_during_release, 120)
{
	const size_t ps = self->c.ps;
	struct zcopy_completion rec[4];
	struct zcopy_stats st0, st1;
	struct gap_send g;
	int64_t deadline;
	struct pt_conn *k;
	long held = 0;
	pthread_t th;
	uint8_t *p;
	int ret;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "one CPU: the held release would hold up the reader");
	p = pt_map_pool(_metadata, &self->c, self->c.zfd, 2);
	zc_fill(p, ZC_SEED(31), 2 * ps);
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	ret = zc_testmod_load("symbol=mutex_unlock caller=zcopy_pool_tx_put delay_ms=500");
	if (ret == -ENOENT)
		SKIP(return, "no " ZC_TESTMOD_KO);
	ASSERT_EQ(0, ret) TH_LOG("load zcopy_testmod: %s", strerror(-ret));

	/* Slot 1's record queued, not read. */
	ASSERT_EQ(0, zc_pool_send(self->c.zfd, k->sock, ps, ps, NOTIFY, 1, NULL));
	pt_account(k, p + ps, ps);
	ASSERT_EQ(0, zc_wait_idle(self->c.zfd, 0, 5000, &st0));
	ASSERT_EQ(1, st0.records_queued);

	ASSERT_EQ(0, zc_testmod_write("armed", 1));
	g = (struct gap_send){ .zfd = self->c.zfd, .sock = k->sock };
	pt_account(k, p, ps);
	ASSERT_EQ(0, pthread_create(&th, NULL, gap_sender, &g));
	for (deadline = zc_now_ms() + 10000; !held && zc_now_ms() < deadline;)
		ASSERT_EQ(0, zc_testmod_read("held", &held));
	ASSERT_EQ(1, held) TH_LOG("slot 0's release was not held up");
	/* Slot 0's record comes once its release goes on. */
	ASSERT_EQ(sizeof(rec[0]), read(self->c.zfd, rec, sizeof(rec)));
	EXPECT_EQ(1, rec[0].cookie);
	pthread_join(th, NULL);
	ASSERT_EQ(0, g.ret);

	ASSERT_EQ(0, zc_wait_idle(self->c.zfd, 0, 5000, &st0));
	ASSERT_EQ(sizeof(rec[0]), read(self->c.zfd, rec, sizeof(rec)));
	EXPECT_EQ(2, rec[0].cookie);
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	zc_fill(p, ZC_SEED(32), ps);
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, DELTA(st1, st0, write_faults)) TH_LOG("slot 0 was not re-armed");
	EXPECT_EQ(0, DELTA(st1, st0, cow_copies));
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(32), ps));
	pt_check_data(_metadata, k);
	EXPECT_EQ(0, zc_testmod_unload());
}

struct gap_writer {
	int zfd;
	uint8_t *p;
	size_t len;
	long held;
};

/*
 * Wait for the send to be held up with its slots let go of (the module
 * may hold up an earlier return too, where the compiler inlined the
 * taking of the slots), then write its pages.
 */
static void *gap_writer(void *arg)
{
	struct gap_writer *w = arg;
	int64_t deadline = zc_now_ms() + 10000;
	struct zcopy_stats st;

	while (zc_now_ms() < deadline) {
		if (zc_testmod_read("held", &w->held) ||
		    zc_stats(w->zfd, 0, &st))
			break;
		if (w->held && !st.pool_pages_in_flight) {
			zc_fill(w->p, ZC_SEED(34), w->len);
			return NULL;
		}
	}
	w->held = 0;
	return NULL;
}

/*
 * A send by reference that the socket refuses lets go of its slots, then
 * of its pages; a write in between found the page still taken by the
 * send and copied it, though nothing had it in flight. The selftests'
 * module holds the sender up in that gap while another thread writes.
 */
TEST_F_TIMEOUT(pool, write_after_refused_send_by_ref, 120)
{
	const size_t ps = self->c.ps, n = 2;
	struct gap_writer w = { .zfd = self->c.zfd, .len = n * ps };
	struct zcopy_stats st0, st1;
	struct pt_conn *k;
	pthread_t th;
	int ret;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "one CPU: the held sender would hold up the writer");
	w.p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(w.p, ZC_SEED(33), n * ps);
	k = full_conn(_metadata, &self->c, ZC_SEED(331));
	ASSERT_NE(NULL, k);
	ret = zc_testmod_load("symbol=mutex_unlock caller=zcopy_pool_send_by_ref delay_ms=500");
	if (ret == -ENOENT)
		SKIP(return, "no " ZC_TESTMOD_KO);
	ASSERT_EQ(0, ret) TH_LOG("load zcopy_testmod: %s", strerror(-ret));
	ASSERT_EQ(0, zc_testmod_write("tgid", getpid()));
	ASSERT_EQ(0, zc_testmod_write("armed", 2));

	st0 = pt_stats(_metadata, self->c.zfd, 0);
	ASSERT_EQ(0, pthread_create(&th, NULL, gap_writer, &w));
	ret = zc_pool_send(self->c.zfd, k->sock, 0, n * ps, ZCOPY_SEND_DONTWAIT, 1, NULL);
	pthread_join(th, NULL);
	EXPECT_EQ(-EAGAIN, ret) TH_LOG("send by reference on a full socket: %s",
				       errno_name(-ret));
	ASSERT_LE(1, w.held) TH_LOG("the send was not held up");
	st1 = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(0, DELTA(st1, st0, cow_copies)) TH_LOG("pages no one had were copied");
	EXPECT_EQ(0, st1.pool_pages_in_flight);
	EXPECT_TRUE(zc_check_all(w.p, ZC_SEED(34), n * ps));
	pt_check_data(_metadata, k);
	EXPECT_EQ(0, zc_testmod_unload());
}

struct wr_state {
	uint64_t *a;
	size_t words;
	uint64_t gen;
	int go;
};

static void *writer_a(void *arg)
{
	struct wr_state *w = arg;
	size_t i;

	while (!__atomic_load_n(&w->go, __ATOMIC_ACQUIRE))
		;
	for (i = 0; i < w->words; i++)
		__atomic_store_n(&w->a[i], w->gen, __ATOMIC_RELAXED);
	return NULL;
}

/*
 * The pool mapped twice, slot 0 held by a receiver: thread 1 writes k into
 * every word through mapping A while the main thread writes once through
 * mapping B, which copies the page. A word of thread 1's that lands in the
 * old page after the copy was made would be lost: none may end at k - 1.
 */
TEST_F_TIMEOUT(pool, copy_on_write_keeps_other_mappings_writes, 300)
{
	const size_t ps = self->c.ps, words = ps / 8;
	struct wr_state w = { .words = words };
	uint64_t k_gen, lost = 0, lost_rounds = 0, first_lost = 0, *src = malloc(ps);
	uint8_t *a, *b;
	struct pt_conn *k;
	size_t i;

	ASSERT_NE(NULL, src);
	a = pt_map_pool(_metadata, &self->c, self->c.zfd, 1);
	b = pt_map_pool(_metadata, &self->c, self->c.zfd, 1);
	w.a = (uint64_t *)a;
	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	for (k_gen = 1; k_gen <= RACE_ROUNDS / 10; k_gen++) {
		pthread_t th;
		size_t n = 0;

		memcpy(src, a, ps);
		ASSERT_EQ(0, pt_send(&self->c, k, a, 0, ps, 0, 0, src, NULL));
		w.gen = k_gen;
		w.go = 0;
		ASSERT_EQ(0, pthread_create(&th, NULL, writer_a, &w));
		__atomic_store_n(&w.go, 1, __ATOMIC_RELEASE);
		/* Somewhere in thread 1's run, one write through B. */
		for (i = 0; i < (k_gen * 37) % 2000; i++)
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
		__atomic_store_n((uint64_t *)b + words - 1, k_gen, __ATOMIC_RELAXED);
		pthread_join(th, NULL);
		for (i = 0; i < words; i++)
			n += ((uint64_t *)a)[i] != k_gen;
		if (n) {
			if (!lost_rounds++)
				first_lost = k_gen;
			lost += n;
		}
	}
	EXPECT_EQ(0, lost) TH_LOG("%llu words lost in %llu rounds, the first in round %llu",
				  ZC_U64(lost), ZC_U64(lost_rounds), ZC_U64(first_lost));
	pt_check_data(_metadata, k);
	free(src);
}

/* ---- Completions do not wait ---- */

#define HELD_FDS	16
#define HELD_SENDS	20
#define LAT_SENDS	50

struct lat_state {
	int zfd, sock;
	char *buf;
	int64_t us[LAT_SENDS];
	int n, err;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Pinned sends of another user, each timed from the send to its record. */
static void *lat_sender(void *arg)
{
	struct lat_state *l = arg;
	struct zcopy_completion rec;
	int i;

	for (i = 0; i < LAT_SENDS; i++) {
		struct zcopy_iovec iov = { (uintptr_t)l->buf, 4096 };
		struct zcopy_send s = { 0 };
		struct pollfd pfd = { l->zfd, POLLIN, 0 };
		int64_t t0 = now_us();
		int ret = zc_send(l->zfd, l->sock, &iov, 1, 0, i, &s);

		if (ret || poll(&pfd, 1, 10000) != 1 ||
		    read(l->zfd, &rec, sizeof(rec)) != sizeof(rec)) {
			l->err = ret ? -ret : EIO;
			break;
		}
		l->us[l->n++] = now_us() - t0;
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int64_t median(struct lat_state *l)
{
	qsort(l->us, l->n, sizeof(l->us[0]), cmp_i64);
	return l->n ? l->us[l->n / 2] : -1;
}

/*
 * Sixteen files, each with a pool whose slot 0 a receiver holds for good,
 * send slot 0 with records again and again; meanwhile another sender's
 * records must come as they do without that load: no completion waits for
 * a page someone else holds, or holds another process's locks. The two
 * latencies are reported; what is asserted is that every record came.
 */
TEST_F_TIMEOUT(pool, held_page_does_not_delay_records, 300)
{
	const size_t ps = self->c.ps;
	int zfds[HELD_FDS], hold[HELD_FDS][2], busy[HELD_FDS][2], i, j;
	uint8_t *pools[HELD_FDS];
	struct lat_state l = { 0 };
	const char *how = "";
	struct iovec iv;
	int64_t quiet, loaded;
	struct pt_conn *k;
	char sink[65536];
	pthread_t th;

	k = pt_connect(_metadata, &self->c, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NULL);
	l.zfd = pt_open_fd(_metadata, &self->c);
	l.sock = k->sock;
	l.buf = zc_map(4096);
	ASSERT_NE(NULL, l.buf);
	zc_fill(l.buf, ZC_SEED(9), 4096);
	ASSERT_EQ(0, pthread_create(&th, NULL, lat_sender, &l));
	pthread_join(th, NULL);
	ASSERT_EQ(0, l.err) TH_LOG("%s", strerror(l.err));
	quiet = median(&l);

	for (i = 0; i < HELD_FDS; i++) {
		zfds[i] = zc_open();
		ASSERT_LE(0, zfds[i]);
		pools[i] = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, zfds[i],
				ZCOPY_MMAP_POOL);
		ASSERT_NE(MAP_FAILED, pools[i]);
		memset(pools[i], i, ps);
		ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &busy[i][0], &busy[i][1]));
		/*
		 * Held in a pipe where the kernel allows vmsplice() of a pool
		 * page; else by reference, to a receiver that never reads.
		 */
		ASSERT_EQ(0, pipe2(hold[i], O_CLOEXEC));
		iv = (struct iovec){ pools[i], ps };
		if (vmsplice(hold[i][1], &iv, 1, 0) == (ssize_t)ps) {
			how = "in a pipe";
			continue;
		}
		close(hold[i][0]);
		close(hold[i][1]);
		ASSERT_EQ(0, zc_tcp_pair(AF_INET, 0, &hold[i][0], &hold[i][1]));
		ASSERT_EQ(0, zc_pool_send(zfds[i], hold[i][0], 0, ps, 0, 0, NULL));
		how = "by a receiver";
	}
	l.n = 0;
	ASSERT_EQ(0, pthread_create(&th, NULL, lat_sender, &l));
	for (j = 0; j < HELD_SENDS; j++) {
		for (i = 0; i < HELD_FDS; i++) {
			struct zcopy_completion rec;
			struct pollfd pfd = { zfds[i], POLLIN, 0 };
			size_t got = 0;

			ASSERT_EQ(0, zc_pool_send(zfds[i], busy[i][0], 0, ps,
						      ZCOPY_POOL_SEND_NOTIFY, j, NULL));
			while (got < ps) {
				ssize_t r = recv(busy[i][1], sink, sizeof(sink), 0);

				ASSERT_LT(0, r);
				got += r;
			}
			ASSERT_EQ(1, poll(&pfd, 1, 10000)) TH_LOG("fd %d, send %d: no record", i, j);
			ASSERT_EQ(sizeof(rec), read(zfds[i], &rec, sizeof(rec)));
		}
	}
	pthread_join(th, NULL);
	ASSERT_EQ(0, l.err) TH_LOG("%s", strerror(l.err));
	loaded = median(&l);
	TH_LOG("another sender's send-to-record latency, median of %d: %lld us alone, %lld us beside %d files re-sending pages held %s",
	       LAT_SENDS, (long long)quiet, (long long)loaded, HELD_FDS, how);
	for (i = 0; i < HELD_FDS; i++) {
		close(hold[i][0]);
		close(hold[i][1]);
		close(busy[i][0]);
		close(busy[i][1]);
		munmap(pools[i], ps);
		close(zfds[i]);
	}
	for (i = 0; i < 2 * LAT_SENDS; i++)
		pt_account(k, l.buf, 4096);
	pt_check_data(_metadata, k);
	zc_unmap(l.buf, 4096);
}

/* ---- The steady state: no copy, no fault ---- */

TEST_F_TIMEOUT(pool, steady_state_ring_over_nic, 240)
{
	const size_t ps = self->c.ps, slot = SS_SLOT_PAGES * ps;
	unsigned int pending[SS_SLOTS] = { 0 };
	struct zcopy_stats st;
	uint64_t pages = 0;
	uint16_t *seq_slot;
	size_t cap = 4 * SS_SENDS, i, done = 0;
	int64_t t0;
	struct pt_conn *k;
	uint8_t *p;
	int s;

	if (zc_path_missing(ZC_NIC))
		SKIP(return, "%s", zc_path_missing(ZC_NIC));
	seq_slot = calloc(cap, sizeof(*seq_slot));
	ASSERT_NE(NULL, seq_slot);
	p = pt_map_pool(_metadata, &self->c, self->c.zfd, SS_SLOTS * SS_SLOT_PAGES);
	k = pt_connect(_metadata, &self->c, ZC_NIC, AF_INET, SOCK_STREAM, NULL);

	t0 = zc_now_ms();
	for (i = 0; i < SS_SENDS; i++) {
		size_t before = self->c.log.nsent, j;

		s = i % SS_SLOTS;
		/* Rewrite a buffer only once its record was read. */
		while (pending[s]) {
			int ret = zc_log_records(self->c.zfd, &self->c.log, 10000);

			ASSERT_LT(0, ret) TH_LOG("no record for 10 s at send %zu: %s", i,
						 ret ? strerror(-ret) : "timeout");
			for (; done < self->c.log.nrec; done++) {
				const struct zcopy_completion *r = &self->c.log.rec[done];
				uint64_t q;

				for (q = r->seq; q < r->seq + r->sends; q++) {
					ASSERT_LT(q, self->c.log.nsent) TH_LOG("record for seq %llu",
									      ZC_U64(q));
					ASSERT_LT(0, pending[seq_slot[q]]);
					pending[seq_slot[q]]--;
				}
			}
		}
		zc_fill(p + s * slot, ZC_SEED(i), slot);
		ASSERT_EQ(0, pt_send(&self->c, k, p, s * slot, slot, NOTIFY, i, NULL, NULL));
		for (j = before; j < self->c.log.nsent; j++) {
			uint64_t q = self->c.log.sent[j].seq;

			ASSERT_LT(q, cap);
			seq_slot[q] = s;
			pending[s]++;
			pages += self->c.log.sent[j].npages;
		}
	}
	pt_check_data(_metadata, k);
	pt_check_records(_metadata, &self->c);
	st = pt_stats(_metadata, self->c.zfd, 0);
	TH_LOG("%d sends of %zu pages in %lld ms: %llu pages sent, cow_copies %llu, write_faults %llu, pages_rearmed %llu",
	       SS_SENDS, (size_t)SS_SLOT_PAGES, (long long)(zc_now_ms() - t0), ZC_U64(pages),
	       ZC_U64(st.cow_copies), ZC_U64(st.write_faults), ZC_U64(st.pages_rearmed));
	EXPECT_EQ(SS_SENDS, st.pool_sends);
	EXPECT_EQ(0, st.cow_copies) TH_LOG("a buffer rewritten after its record was copied");
	EXPECT_GT(pages, 100 * st.write_faults)
		TH_LOG("write_faults / pages sent = %llu / %llu, must be < 0.01",
		       ZC_U64(st.write_faults), ZC_U64(pages));
	EXPECT_EQ(0, st.pool_pages_in_flight);
	free(seq_slot);
}

/*
 * Sends with records where TCP may send MTU probes, which from 6.5 take
 * the pages of the skbs they merge without holding the sends (see
 * tx_test's mtu_probe): the module copies them. The receiver, over veth,
 * reads nothing until the records are read and the pages rewritten in
 * place, and still gets what was sent.
 */
FIXTURE(pool_mtu_probe)
{
	struct pt_ctx c;
	long saved;	/* >= 0: restore at teardown */
};

FIXTURE_SETUP(pool_mtu_probe)
{
	const char *why = pt_setup(_metadata, &self->c);

	self->saved = -1;
	if (why)
		SKIP(return, "%s", why);
	if (zc_path_missing(ZC_VETH))
		SKIP(return, "%s", zc_path_missing(ZC_VETH));
	ASSERT_EQ(0, zc_mtu_probing_read(&self->saved));
	ASSERT_EQ(0, zc_mtu_probing_write(2));
}

FIXTURE_TEARDOWN(pool_mtu_probe)
{
	pt_teardown(_metadata, &self->c);
	if (self->saved >= 0)
		zc_mtu_probing_write(self->saved);
}

TEST_F_TIMEOUT(pool_mtu_probe, rewrite_after_record, 120)
{
	const size_t ps = self->c.ps, npages = 256, chunk = 16 * 1024;
	struct pt_conn_opts o = { .hold = true, .rcvbuf = 4 << 20 };
	struct zcopy_stats st;
	struct pt_conn *k;
	long long probes;
	size_t off;
	uint8_t *p;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, npages);
	zc_fill(p, ZC_SEED(12), npages * ps);
	probes = zc_tcp_mtu_probes();
	k = pt_connect(_metadata, &self->c, ZC_VETH, AF_INET, SOCK_STREAM, &o);
	for (off = 0; off < npages * ps; off += chunk)
		ASSERT_EQ(0, pt_send(&self->c, k, p, off, chunk, NOTIFY, off, NULL, NULL));
	pt_check_records(_metadata, &self->c);
	memset(p, 0xee, npages * ps);
	pt_check_data(_metadata, k);
	st = pt_stats(_metadata, self->c.zfd, 0);
	if (!zc_kernel_before(6, 5))
		EXPECT_EQ(npages * ps, st.pool_send_copied_bytes);
	EXPECT_LT(0, zc_tcp_mtu_probes() - probes)
		TH_LOG("TCP sent no MTU probe: the test proves nothing");
}

/*
 * Sends that the module did not copy, made while the sysctl was 0, still
 * queued when it is set to 1 and a black hole makes TCP turn probing on
 * (after tcp_retries1 timeouts, 0 here). From 6.5 the probes
 * then take pages of those sends, which complete while the receiver, which
 * reads nothing yet, keeps the probes' pages: the pool must not map them
 * writable again, and a write must copy. The black hole is netem dropping
 * every packet: TCP sees its segments sent, and times out.
 */
FIXTURE(pool_probe_later)
{
	struct pt_ctx c;
	struct zc_probe_env env;
};

FIXTURE_SETUP(pool_probe_later)
{
	const char *why = pt_setup(_metadata, &self->c);

	self->env = (struct zc_probe_env){ .saved_probing = -1, .saved_retries1 = -1 };
	if (why)
		SKIP(return, "%s", why);
	if (zc_path_missing(ZC_VETH))
		SKIP(return, "%s", zc_path_missing(ZC_VETH));
	ASSERT_EQ(0, zc_probe_env_init(&self->env));
}

FIXTURE_TEARDOWN(pool_probe_later)
{
	zc_probe_env_restore(&self->env);
	pt_teardown(_metadata, &self->c);
}

TEST_F_TIMEOUT(pool_probe_later, write_after_record_copies, 120)
{
	const size_t ps = self->c.ps, npages = 256, chunk = 16 * 1024;
	struct pt_conn_opts o = { .hold = true, .rcvbuf = 4 << 20, .sndbuf = 4 << 20 };
	struct zcopy_stats st0, st;
	unsigned int mss;
	long long probes;
	struct pt_conn *k;
	size_t off;
	uint8_t *p;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, npages);
	zc_fill(p, ZC_SEED(13), npages * ps);
	probes = zc_tcp_mtu_probes();
	k = pt_connect(_metadata, &self->c, ZC_VETH, AF_INET, SOCK_STREAM, &o);
	mss = zc_tcp_snd_mss(k->sock);
	ASSERT_EQ(0, zc_probe_env_black_hole(&self->env, true));

	st0 = pt_stats(_metadata, self->c.zfd, 0);
	for (off = 0; off < npages * ps; off += chunk)
		ASSERT_EQ(0, pt_send(&self->c, k, p, off, chunk, NOTIFY, off, NULL, NULL));
	st = pt_stats(_metadata, self->c.zfd, 0);
	ASSERT_EQ(0, DELTA(st, st0, pool_send_copied_bytes))
		TH_LOG("sends made before the socket could probe were copied");
	/* A send whose skbs a probe took completes as if sent uncopied. */
	for (off = 0; off < self->c.log.nsent; off++)
		self->c.log.sent[off].eflags = 0;

	ASSERT_EQ(0, zc_probe_env_arm(&self->env));
	ASSERT_EQ(0, zc_tcp_wait_mss_below(k->sock, mss, 10000))
		TH_LOG("no black hole found in 10 s");
	ASSERT_EQ(0, zc_probe_env_black_hole(&self->env, false));

	pt_check_records(_metadata, &self->c);
	memset(p, 0xee, npages * ps);
	pt_check_data(_metadata, k);
	EXPECT_LT(0, zc_tcp_mtu_probes() - probes)
		TH_LOG("TCP sent no MTU probe: the test proves nothing");
	st = pt_stats(_metadata, self->c.zfd, 0);
	/* Before 6.5 the probes copied, and every page could be rewritten in place. */
	if (!zc_kernel_before(6, 5))
		EXPECT_LT(0, DELTA(st, st0, cow_copies))
			TH_LOG("no page that a probe kept was written: the test proves nothing");
}

/* ---- Over each path: sends with and without records, concurrent writers ---- */

FIXTURE(pool_path)
{
	struct pt_ctx c;
};

FIXTURE_VARIANT(pool_path)
{
	enum zc_path path;
	int family;
};

FIXTURE_VARIANT_ADD(pool_path, loopback_v4) { .path = ZC_LOOPBACK, .family = AF_INET };
FIXTURE_VARIANT_ADD(pool_path, loopback_v6) { .path = ZC_LOOPBACK, .family = AF_INET6 };
FIXTURE_VARIANT_ADD(pool_path, nic_v4) { .path = ZC_NIC, .family = AF_INET };
FIXTURE_VARIANT_ADD(pool_path, nic_v6) { .path = ZC_NIC, .family = AF_INET6 };

FIXTURE_SETUP(pool_path)
{
	const char *why = pt_setup(_metadata, &self->c);

	if (!why)
		why = zc_path_missing(variant->path);
	if (why)
		SKIP(return, "%s", why);
}

FIXTURE_TEARDOWN(pool_path)
{
	pt_teardown(_metadata, &self->c);
}

TEST_F(pool_path, tcp_send_by_reference_has_no_record)
{
	const size_t ps = self->c.ps, n = 16;
	struct {
		uint64_t off, len;
		uint32_t flags;
	} sends[] = {
		{ 0, 1, 0 }, { 100, ps, ADDR }, { ps - 1, 2, 0 }, { 3 * ps, 5 * ps + 17, ADDR },
		{ 15 * ps, ps, 0 }, { 9 * ps + 5, 3 * ps, ZCOPY_SEND_MORE }, { 0, n * ps, ADDR },
	};
	struct pollfd pfd = { self->c.zfd, POLLIN, 0 };
	unsigned int i, nsends = 0;
	struct zcopy_stats st0, st;
	uint64_t total = 0;
	struct pt_conn *k;
	uint8_t *p;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(30), n * ps);
	k = pt_connect(_metadata, &self->c, variant->path, variant->family, SOCK_STREAM, NULL);
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	for (i = 0; i < ARRAY_SIZE(sends); i++) {
		int ret = pt_send(&self->c, k, p, sends[i].off, sends[i].len, sends[i].flags, i,
				  NULL, &nsends);

		/* -EPROTO: the send said it has a seq or stream offset. */
		ASSERT_EQ(0, ret) TH_LOG("send %u: %s", i, strerror(-ret));
		total += sends[i].len;
	}
	pt_check_data(_metadata, k);
	EXPECT_EQ(0, poll(&pfd, 1, 300)) TH_LOG("a record for a send without one");
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(nsends, DELTA(st, st0, pool_sends));
	EXPECT_EQ(total, DELTA(st, st0, pool_send_bytes));
	EXPECT_EQ(0, st.pool_send_copied_bytes);
	EXPECT_EQ(0, st.records_queued);
	EXPECT_EQ(0, st.cow_copies);
	/* Given by reference: held until a write gives each slot a copy. */
	EXPECT_EQ(n, st.pool_pages_in_flight);
}

/*
 * Sends shorter than copy_below are copied from the pool: nothing is held
 * or zapped, so rewriting the bytes at once takes neither a fault nor a
 * copy-on-write copy, and the far end still gets what was sent. With
 * NOTIFY the record is there at once and says COPIED, SMALL.
 */
TEST_F(pool_path, short_sends_copied_nothing_held)
{
	const size_t ps = self->c.ps, n = 8;
	struct {
		uint64_t off, len;
		uint32_t flags;
	} sends[] = {
		{ 0, 1, NOTIFY }, { ps + 10, ps, NOTIFY | ADDR }, { 3 * ps - 5, 2 * ps - 1, 0 },
		{ 6 * ps, ps, 0 }, { 7 * ps, 100, NOTIFY },
	};
	struct zcopy_stats st0, st;
	uint64_t total = 0, notified = 0;
	struct pt_conn *k;
	unsigned int i;
	uint8_t *p;

	ASSERT_EQ(0, zc_param_read("copy_below", &self->c.saved_copy_below));
	ASSERT_EQ(0, zc_param_write("copy_below", 2 * ps));
	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(41), n * ps);
	k = pt_connect(_metadata, &self->c, variant->path, variant->family, SOCK_STREAM, NULL);
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	for (i = 0; i < ARRAY_SIZE(sends); i++) {
		ASSERT_EQ(0, pt_send(&self->c, k, p, sends[i].off, sends[i].len, sends[i].flags,
				     0x300 + i, NULL, NULL));
		/* Not held: the next send's bytes are still what was sent. */
		zc_fill(p + sends[i].off, ZC_SEED(0x400 + i), sends[i].len);
		total += sends[i].len;
		if (sends[i].flags & NOTIFY)
			notified += sends[i].len;
	}
	pt_check_data(_metadata, k);
	pt_check_records(_metadata, &self->c);
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(total, DELTA(st, st0, pool_send_bytes));
	EXPECT_EQ(total, DELTA(st, st0, pool_send_copied_bytes));
	EXPECT_EQ(notified, DELTA(st, st0, tx_copied_small));
	EXPECT_EQ(notified, DELTA(st, st0, tx_copied_bytes));
	EXPECT_EQ(0, DELTA(st, st0, write_faults)) TH_LOG("rewriting sent bytes faulted");
	EXPECT_EQ(0, DELTA(st, st0, cow_copies));
	EXPECT_EQ(0, st.pool_pages_in_flight);
}

/*
 * ZCOPY_IOC_POOL_SEND_BATCH: sends in a row to the socket with the same
 * flags, all copied or none, go as one; each entry still gets its bytes,
 * sequence number and stream offset, and every way of sending holds what
 * it sent: the pool, overwritten the moment the batch returns, is not what
 * the receiver gets.
 */
TEST_F(pool_path, batch_runs_overwritten_at_once)
{
	const size_t ps = self->c.ps, n = 64, nshort = 40;
	struct {
		uint64_t off, len;
		uint32_t flags;
	} sends[] = {
		/* Copied, with records: one run, the same page thrice. */
		{ 0, 1000, NOTIFY }, { 1000, 1000, NOTIFY | ADDR }, { 2000, 100, NOTIFY },
		/* Pages with records: one run, the same pages twice. */
		{ ps, 3 * ps, NOTIFY }, { 4 * ps + 100, 2 * ps, NOTIFY | ADDR },
		{ 4 * ps + 100, 2 * ps, NOTIFY },
		/* Other flags: a run of its own. */
		{ 8 * ps, ps, NOTIFY | ZCOPY_SEND_MORE },
		/* By reference: one run. */
		{ 9 * ps, ps, 0 }, { 10 * ps, 2 * ps + 5, ADDR },
		/* Copied, no record: one run. */
		{ 12 * ps + 7, 500, 0 }, { 13 * ps - 3, 1000, ADDR },
		/* 64 KiB, a run's most; then longer than a run takes: alone. */
		{ 14 * ps, 16 * ps, NOTIFY }, { 30 * ps + 1, 17 * ps, NOTIFY },
	};
	const size_t count = ARRAY_SIZE(sends) + nshort;
	struct zcopy_pool_send *b = calloc(count, sizeof(*b));
	uint8_t *p, *was = malloc(n * ps);
	struct zcopy_stats st0, st;
	uint64_t total = 0;
	struct pt_conn *k;
	unsigned int i;
	int ret;

	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, was);
	p = pt_map_pool(_metadata, &self->c, self->c.zfd, n);
	zc_fill(p, ZC_SEED(43), n * ps);
	memcpy(was, p, n * ps);
	k = pt_connect(_metadata, &self->c, variant->path, variant->family, SOCK_STREAM, NULL);
	for (i = 0; i < count; i++) {
		/* Then 40 copied sends with records: more than a run takes. */
		uint64_t off = i < ARRAY_SIZE(sends) ? sends[i].off :
			       48 * ps + (i - ARRAY_SIZE(sends)) * 1000;
		uint64_t len = i < ARRAY_SIZE(sends) ? sends[i].len : 1000;
		uint32_t flags = i < ARRAY_SIZE(sends) ? sends[i].flags : NOTIFY;

		b[i] = (struct zcopy_pool_send){
			.sockfd = k->sock, .flags = flags, .len = len, .cookie = 0x500 + i,
			.offset = (flags & ADDR) ? (uintptr_t)(p + off) : off,
		};
		total += len;
	}
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	ret = zc_pool_send_batch(self->c.zfd, b, count);
	ASSERT_EQ((int)count, ret) TH_LOG("ZCOPY_IOC_POOL_SEND_BATCH: %s", errno_name(-ret));
	/* At once: every page sent, and those around. */
	zc_fill(p, ZC_SEED(44), n * ps);
	for (i = 0; i < count; i++) {
		uint64_t off = (b[i].flags & ADDR) ? b[i].offset - (uintptr_t)p : b[i].offset;

		ASSERT_EQ(b[i].len, b[i].bytes) TH_LOG("entry %u sent short", i);
		ret = pt_sent(&self->c, k, &b[i], off, was + off);
		ASSERT_EQ(0, ret) TH_LOG("entry %u: %s", i, errno_name(-ret));
	}
	pt_check_data(_metadata, k);
	pt_check_records(_metadata, &self->c);
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(count, DELTA(st, st0, pool_sends));
	EXPECT_EQ(total, DELTA(st, st0, pool_send_bytes));
	/* Pages given by reference are held for good: the overwrite copied them. */
	EXPECT_LT(0, DELTA(st, st0, cow_copies));
	EXPECT_TRUE(zc_check_all(p, ZC_SEED(44), n * ps)) TH_LOG("the pool lost a write");
	free(was);
	free(b);
}

/*
 * Sends of distinct pages with a record: once read, the pages were re-armed
 * and take no fault.
 */
static void records_then_no_fault(struct __test_metadata *_metadata, struct pt_ctx *c,
				  struct pt_conn *k, uint32_t flags)
{
	const size_t ps = c->ps, n = 16;
	struct {
		uint64_t off, len;
		uint32_t flags;
	} sends[] = {
		{ 0, ps, 0 }, { ps + 10, ps, ADDR }, { 3 * ps, 3 * ps, 0 },
		{ 8 * ps + 1, 1, ADDR }, { 10 * ps, 4 * ps - 7, 0 },
	};
	struct zcopy_stats st0, st1, st2;
	unsigned int i, pages = 0;
	uint64_t total = 0;
	uint8_t *p;

	p = pt_map_pool(_metadata, c, c->zfd, n);
	zc_fill(p, ZC_SEED(31), n * ps);
	st0 = pt_stats(_metadata, c->zfd, 0);
	for (i = 0; i < ARRAY_SIZE(sends); i++) {
		ASSERT_EQ(0, pt_send(c, k, p, sends[i].off, sends[i].len, flags | sends[i].flags,
				     0x100 + i, NULL, NULL));
		pages += zc_pages_spanned(sends[i].off, sends[i].len);
		total += sends[i].len;
	}
	pt_check_data(_metadata, k);
	pt_check_records(_metadata, c);
	st1 = pt_stats(_metadata, c->zfd, 0);
	EXPECT_EQ(ARRAY_SIZE(sends), DELTA(st1, st0, pool_sends));
	EXPECT_EQ(total, DELTA(st1, st0, pool_send_bytes));
	EXPECT_EQ(0, st1.pool_pages_in_flight) TH_LOG("records read, nothing in flight");
	EXPECT_EQ(pages, DELTA(st1, st0, pages_rearmed)) TH_LOG("every page sent re-armed");
	EXPECT_EQ(0, st1.records_queued);

	/* Rewrite every page sent: no fault, no copy. */
	for (i = 0; i < ARRAY_SIZE(sends); i++)
		zc_fill(p + sends[i].off, ZC_SEED(0x200 + i), sends[i].len);
	st2 = pt_stats(_metadata, c->zfd, 0);
	EXPECT_EQ(0, DELTA(st2, st1, write_faults)) TH_LOG("rewriting completed pages faulted");
	EXPECT_EQ(0, DELTA(st2, st1, cow_copies));
}

TEST_F(pool_path, tcp_notify_records_and_rearm)
{
	struct pt_conn *k = pt_connect(_metadata, &self->c, variant->path, variant->family,
				       SOCK_STREAM, NULL);

	records_then_no_fault(_metadata, &self->c, k, NOTIFY);
}

TEST_F(pool_path, udp_always_records_and_rearm)
{
	struct pt_conn *k = pt_connect(_metadata, &self->c, variant->path, variant->family,
				       SOCK_DGRAM, NULL);

	records_then_no_fault(_metadata, &self->c, k, 0);
}

/*
 * One datagram of two pool sends, the first with ZCOPY_SEND_MORE, on a UDP
 * socket with UDP_SEGMENT: the module copies a corked datagram's sends
 * (see tx_test's send_more_udp_gso), so the stack neither refuses the
 * second nor drops the first; nothing stays held.
 */
TEST_F(pool_path, udp_corked_datagram_copied)
{
	const size_t ps = self->c.ps, len[2] = { 100, 200 };
	const uint64_t off[2] = { 0, ps };
	struct pt_conn *k = pt_connect(_metadata, &self->c, variant->path, variant->family,
				       SOCK_DGRAM, NULL);
	struct zcopy_stats st0, st;
	uint8_t *p, whole[300];
	int gso = 1000, i;

	p = pt_map_pool(_metadata, &self->c, self->c.zfd, 2);
	zc_fill(p, ZC_SEED(32), 2 * ps);
	ASSERT_EQ(0, setsockopt(k->sock, IPPROTO_UDP, UDP_SEGMENT, &gso, sizeof(gso)));
	st0 = pt_stats(_metadata, self->c.zfd, 0);
	for (i = 0; i < 2; i++) {
		struct zcopy_pool_send s = { 0 };
		struct zcopy_send as;
		int ret;

		ret = zc_pool_send(self->c.zfd, k->sock, off[i], len[i],
				   i ? 0 : ZCOPY_SEND_MORE, i, &s);
		ASSERT_EQ(0, ret) TH_LOG("pool send %d: %s", i, strerror(-ret));
		ASSERT_EQ(len[i], s.bytes);
		as = (struct zcopy_send){ .cookie = i, .bytes = s.bytes, .seq = s.seq,
					  .offset = s.stream_offset };
		zc_log_add(&self->c.log, &as, ZCOPY_COMPL_COPIED | ZCOPY_COPIED_NOT_OFFLOADED, 1);
		memcpy(whole + (i ? len[0] : 0), p + off[i], len[i]);
	}
	pt_account(k, whole, sizeof(whole));
	pt_check_data(_metadata, k);
	pt_check_records(_metadata, &self->c);
	st = pt_stats(_metadata, self->c.zfd, 0);
	EXPECT_EQ(sizeof(whole), DELTA(st, st0, pool_send_copied_bytes));
	EXPECT_EQ(sizeof(whole), DELTA(st, st0, tx_copied_not_offloaded));
	EXPECT_EQ(0, st.pool_pages_in_flight);
}

struct cw_shared {
	uint8_t *pool;
	size_t ps;
	pthread_rwlock_t lock[CW_REGIONS];
	int stop;
	uint64_t writes[CW_THREADS];
};

struct cw_arg {
	struct cw_shared *w;
	int id;
};

/* Scribble on regions not being filled: the same pages, and others. */
static void *cw_writer(void *arg)
{
	struct cw_arg *a = arg;
	struct cw_shared *w = a->w;
	const size_t ps = w->ps, region = CW_REGION_PAGES * ps;
	uint64_t rng = 0x5eed + a->id;

	while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
		unsigned int r = zc_rand(&rng) % CW_REGIONS;
		uint8_t *base = w->pool + r * region;
		size_t off, len;

		pthread_rwlock_rdlock(&w->lock[r]);
		if (zc_rand(&rng) & 1) {
			/* The region's first page: every writer hits it. */
			off = zc_rand(&rng) % (ps - 64);
			memset(base + off, a->id, 64);
		} else {
			off = zc_rand(&rng) % region;
			len = zc_rand(&rng) % (region - off) + 1;
			memset(base + off, 0x50 + a->id, len);
		}
		pthread_rwlock_unlock(&w->lock[r]);
		w->writes[a->id]++;
	}
	return NULL;
}

TEST_F_TIMEOUT(pool_path, concurrent_writers, 120)
{
	const size_t ps = self->c.ps, region = CW_REGION_PAGES * ps;
	pthread_t th[CW_THREADS];
	struct cw_arg args[CW_THREADS];
	pthread_rwlockattr_t attr;
	struct cw_shared w;
	struct zcopy_stats st;
	uint64_t rng = pt_seed(), writes = 0;
	unsigned int i, nsends = 0;
	struct pt_conn *k;
	int ret = 0;

	TH_LOG("seed %#llx", ZC_U64(rng));
	memset(&w, 0, sizeof(w));
	w.ps = ps;
	w.pool = pt_map_pool(_metadata, &self->c, self->c.zfd, CW_REGIONS * CW_REGION_PAGES);
	k = pt_connect(_metadata, &self->c, variant->path, variant->family, SOCK_STREAM, NULL);
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (i = 0; i < CW_REGIONS; i++)
		pthread_rwlock_init(&w.lock[i], &attr);
	for (i = 0; i < CW_THREADS; i++) {
		args[i] = (struct cw_arg){ &w, i };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, cw_writer, &args[i]));
	}

	for (i = 0; i < CW_ITERATIONS && !ret; i++) {
		unsigned int r = i % CW_REGIONS;
		size_t len = zc_rand_range(&rng, 1, region);
		size_t off = r * region + zc_rand(&rng) % (region - len + 1);

		/* The region is ours while we fill it and send it; then theirs. */
		pthread_rwlock_wrlock(&w.lock[r]);
		zc_fill(w.pool + off, ZC_SEED(i), len);
		ret = pt_send(&self->c, k, w.pool, off, len, (i & 1) ? NOTIFY : 0, i, NULL,
			      &nsends);
		pthread_rwlock_unlock(&w.lock[r]);
		if (!(i % 32))
			pt_drain_records(_metadata, &self->c);
	}
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < CW_THREADS; i++) {
		pthread_join(th[i], NULL);
		writes += w.writes[i];
	}
	ASSERT_EQ(0, ret) TH_LOG("send: %s", strerror(-ret));
	pt_check_data(_metadata, k);
	pt_check_records(_metadata, &self->c);
	st = pt_stats(_metadata, self->c.zfd, 0);
	TH_LOG("%u sends, %llu writes by %d threads: cow_copies %llu, write_faults %llu, pages_rearmed %llu",
	       nsends, ZC_U64(writes), CW_THREADS, ZC_U64(st.cow_copies),
	       ZC_U64(st.write_faults), ZC_U64(st.pages_rearmed));
	EXPECT_EQ(nsends, st.pool_sends);
	EXPECT_LT(0, writes);
}

/* ---- The copy-on-write proof: send, overwrite at once, the wire has the old ---- */

FIXTURE(pool_cow)
{
	struct pt_ctx c;
	bool held;	/* eth0's netem holds datagrams 10 ms in flight */
};

FIXTURE_VARIANT(pool_cow)
{
	enum zc_path path;
	int family;
	int type;
	uint32_t flags;
};

#define COW_VARIANT(name, P, FAM, TYPE, FLAGS)				\
	FIXTURE_VARIANT_ADD(pool_cow, name)				\
	{								\
		.path = P, .family = FAM, .type = TYPE, .flags = FLAGS,	\
	}

COW_VARIANT(loopback_tcp_v4, ZC_LOOPBACK, AF_INET, SOCK_STREAM, 0);
COW_VARIANT(loopback_tcp_v6, ZC_LOOPBACK, AF_INET6, SOCK_STREAM, 0);
COW_VARIANT(loopback_tcp_notify_v4, ZC_LOOPBACK, AF_INET, SOCK_STREAM, NOTIFY);
COW_VARIANT(loopback_tcp_notify_v6, ZC_LOOPBACK, AF_INET6, SOCK_STREAM, NOTIFY);
COW_VARIANT(loopback_udp_v4, ZC_LOOPBACK, AF_INET, SOCK_DGRAM, 0);
COW_VARIANT(loopback_udp_v6, ZC_LOOPBACK, AF_INET6, SOCK_DGRAM, 0);
COW_VARIANT(nic_tcp_v4, ZC_NIC, AF_INET, SOCK_STREAM, 0);
COW_VARIANT(nic_tcp_v6, ZC_NIC, AF_INET6, SOCK_STREAM, 0);
COW_VARIANT(nic_tcp_notify_v4, ZC_NIC, AF_INET, SOCK_STREAM, NOTIFY);
COW_VARIANT(nic_tcp_notify_v6, ZC_NIC, AF_INET6, SOCK_STREAM, NOTIFY);
COW_VARIANT(nic_udp_v4, ZC_NIC, AF_INET, SOCK_DGRAM, 0);
COW_VARIANT(nic_udp_v6, ZC_NIC, AF_INET6, SOCK_DGRAM, 0);

FIXTURE_SETUP(pool_cow)
{
	const char *why = pt_setup(_metadata, &self->c);

	if (!why)
		why = zc_path_missing(variant->path);
	if (why)
		SKIP(return, "%s", why);
	/*
	 * e1000e frees a datagram's skb as soon as it is sent, before the
	 * next write: a delay on the way keeps the pages in flight, so the
	 * overwrite meets them. (TCP keeps them until acked anyway.)
	 */
	if (variant->path == ZC_NIC && variant->type == SOCK_DGRAM) {
		self->held = !system("/usr/bin/tc qdisc replace dev eth0 root netem delay 10ms limit 100000");
		if (!self->held)
			SKIP(return, "no netem on eth0: no datagram would be in flight");
	}
}

FIXTURE_TEARDOWN(pool_cow)
{
	if (self->held)
		system("/usr/bin/tc qdisc del dev eth0 root");
	pt_teardown(_metadata, &self->c);
}

TEST_F_TIMEOUT(pool_cow, overwrite_at_once, 300)
{
	const size_t ps = self->c.ps, pool_len = COW_POOL_PAGES * ps;
	uint64_t seed = pt_seed(), rng = seed, total = 0;
	unsigned int i, nsends = 0, wrong_before = 0, wrong_after = 0;
	bool records = variant->type == SOCK_DGRAM || (variant->flags & NOTIFY);
	size_t fit = 0;
	struct zcopy_stats st;
	uint8_t *p, *a, *b;
	struct pt_conn *k;
	int64_t t0;

	TH_LOG("seed %#llx (POOL_TEST_SEED=%#llx repeats it), %d iterations", ZC_U64(seed),
	       ZC_U64(seed), COW_ITERATIONS);
	a = malloc(COW_MAX_LEN);
	b = malloc(COW_MAX_LEN);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	p = pt_map_pool(_metadata, &self->c, self->c.zfd, COW_POOL_PAGES);
	k = pt_connect(_metadata, &self->c, variant->path, variant->family, variant->type, NULL);

	t0 = zc_now_ms();
	/* Half the datagrams fit the MTU, held by netem; IP fragments the rest, copied. */
	if (self->held)
		fit = zc_udp_mtu_payload(&k->net);
	for (i = 0; i < COW_ITERATIONS; i++) {
		size_t len = zc_rand_range(&rng, 1, (i & 1) && fit ? fit : COW_MAX_LEN);
		size_t off = zc_rand_range(&rng, 0, pool_len - len);
		uint32_t flags = variant->flags | ((zc_rand(&rng) & 1) ? ADDR : 0);
		uint64_t sa = zc_rand(&rng), sb = zc_rand(&rng);
		int ret;

		/* Pattern A into the pool (maybe over pages still in flight)... */
		zc_fill(a, ZC_SEED(sa), len);
		memcpy(p + off, a, len);
		wrong_before += !!memcmp(p + off, a, len);
		/* ...sent, the receiver must get A... */
		ret = pt_send(&self->c, k, p, off, len, flags, i, a, &nsends);
		ASSERT_EQ(0, ret) TH_LOG("iteration %u: send of [%zu, +%zu): %s", i, off, len,
					 strerror(-ret));
		/* ...while B overwrites it at once. */
		zc_fill(b, ZC_SEED(sb), len);
		memcpy(p + off, b, len);
		wrong_after += !!memcmp(p + off, b, len);
		total += len;
		if (records && !(i % 64))
			pt_drain_records(_metadata, &self->c);
	}
	EXPECT_EQ(0, wrong_before) TH_LOG("the pool did not read back what was written");
	EXPECT_EQ(0, wrong_after) TH_LOG("the pool did not read back what was written");
	pt_check_data(_metadata, k);
	if (records)
		pt_check_records(_metadata, &self->c);
	st = pt_stats(_metadata, self->c.zfd, 0);
	TH_LOG("%u sends, %llu bytes in %lld ms: cow_copies %llu, write_faults %llu, pages_rearmed %llu",
	       nsends, ZC_U64(total), (long long)(zc_now_ms() - t0), ZC_U64(st.cow_copies),
	       ZC_U64(st.write_faults), ZC_U64(st.pages_rearmed));
	EXPECT_EQ(nsends, st.pool_sends);
	EXPECT_EQ(total, st.pool_send_bytes);
	EXPECT_EQ(0, st.pool_send_copied_bytes);
	/*
	 * Over the NIC, TCP holds the pages until acked, and netem holds
	 * datagrams that fit the MTU (longer ones leave as copies made by
	 * IP fragmentation): the proof copied.
	 */
	if (variant->path == ZC_NIC)
		EXPECT_LT(0, st.cow_copies) TH_LOG("no write hit a page in flight: nothing proven");
	free(a);
	free(b);
}

TEST_HARNESS_MAIN
