// SPDX-License-Identifier: GPL-2.0
/*
 * zcopy cannot be unloaded while the stack still holds pages of its sends,
 * even with no zcopy file open; once they are let go it unloads, and loads
 * again from $ZCOPY_KO. Runs last: it unloads the module.
 */
#include <pthread.h>
#include <sys/stat.h>

#include <linux/zcopy.h>

#include "kselftest_harness.h"
#include "zcopy_test_util.h"

#define KB	1024UL
#define MB	(1024 * KB)

static bool zcopy_loaded(void)
{
	return access("/sys/module/zcopy", F_OK) == 0;
}

static int zcopy_unload(void)
{
	return syscall(SYS_delete_module, "zcopy", O_NONBLOCK) ? -errno : 0;
}

static int zcopy_load(const char *ko)
{
	int fd = open(ko, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

FIXTURE(rmmod)
{
	struct zc_tx t;
	char *buf;
	const char *ko;
};

FIXTURE_SETUP(rmmod)
{
	const char *why;

	self->ko = getenv("ZCOPY_KO");
	if (!self->ko)
		SKIP(return, "ZCOPY_KO is not set: no module to load again");
	if (!zcopy_loaded())
		SKIP(return, "zcopy is not loaded");
	why = zc_tx_init(_metadata, &self->t, ZC_LOOPBACK, AF_INET, SOCK_STREAM);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_LE(0, self->t.zfd) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
	if (!self->t.stats)
		SKIP(return, "the module has no ZCOPY_FEAT_STATS");
	self->buf = zc_map(MB);
	ASSERT_NE(NULL, self->buf);
	zc_fill(self->buf, ZC_SEED(113), MB);
}

FIXTURE_TEARDOWN(rmmod)
{
	zc_tx_fini(&self->t);
	zc_unmap(self->buf, MB);
	/* Whatever happened, leave the module loaded. */
	if (self->ko && !zcopy_loaded() && zcopy_load(self->ko))
		TH_LOG("could not load %s again", self->ko);
}

TEST_F_TIMEOUT(rmmod, busy_while_in_flight, 60)
{
	struct zc_tx *t = &self->t;
	struct zcopy_info info = { 0 };
	struct linger lg = { 1, 0 };
	struct zcopy_stats st;
	int64_t deadline;
	unsigned int n;
	int err, ret;

	/* A holding receiver, small buffers: sends the socket keeps. */
	zc_tx_start(_metadata, t, true, 4096, 64 * KB, false);
	n = zc_tx_fill(t, self->buf, MB, 16 * KB, 0, &err);
	ASSERT_EQ(EAGAIN, err) TH_LOG("after %u sends: %s", n, strerror(err));
	ASSERT_EQ(0, zc_stats(t->zfd, 0, &st));
	ASSERT_LT(0, st.sends_in_flight);
	ASSERT_EQ(0, close(t->zfd));
	t->zfd = -1;

	/* No zcopy file is open, but the stack holds the pages. */
	ret = zcopy_unload();
	ASSERT_NE(0, ret) TH_LOG("zcopy unloaded with %llu sends in flight",
				 ZC_U64(st.sends_in_flight));
	ASSERT_TRUE(ret == -EAGAIN || ret == -EBUSY) TH_LOG("delete_module: %s", strerror(-ret));
	TH_LOG("delete_module with %llu sends in flight: %s", ZC_U64(st.sends_in_flight),
	       strerror(-ret));
	ASSERT_TRUE(zcopy_loaded());

	/* Reset the connection: the stack lets go, and it unloads. */
	ASSERT_EQ(0, setsockopt(t->sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	ASSERT_EQ(0, close(t->sock));
	t->sock = -1;
	deadline = zc_now_ms() + 10000;
	while ((ret = zcopy_unload()) == -EAGAIN || ret == -EBUSY) {
		if (zc_now_ms() > deadline)
			break;
		zc_sleep_ms(20);
	}
	ASSERT_EQ(0, ret) TH_LOG("delete_module after the reset: %s", strerror(-ret));
	ASSERT_FALSE(zcopy_loaded());

	/* And it comes back. */
	ret = zcopy_load(self->ko);
	ASSERT_EQ(0, ret) TH_LOG("finit_module(%s): %s", self->ko, strerror(-ret));
	deadline = zc_now_ms() + 5000;
	while ((t->zfd = zc_open()) < 0 && zc_now_ms() < deadline)
		zc_sleep_ms(20);
	ASSERT_LE(0, t->zfd) TH_LOG("open " ZCOPY_DEVICE " after loading: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(t->zfd, ZCOPY_IOC_INFO, &info));
	EXPECT_EQ(ZCOPY_ABI_VERSION, info.abi_version);
	ASSERT_EQ(0, zc_wait_idle(t->zfd, ZCOPY_STATS_MODULE, 1000, &st));
	EXPECT_EQ(0, st.sends);

	/* A send through the new module. */
	zc_rx_free(&t->rx);
	zc_log_free(&t->log);
	t->hash = ZC_FNV_INIT;
	t->bytes = 0;
	zc_tx_start(_metadata, t, false, 0, 0, false);
	ASSERT_EQ(0, zc_tx_send_buf(t, self->buf + 1, 50000));
	zc_tx_verify(_metadata, t);
}

#define RACE_ROUNDS	20
#define RACE_SENDS	32

static void *unload_spin(void *arg)
{
	bool *done = arg;
	int64_t deadline = zc_now_ms() + 20000;

	while (zcopy_unload() && zc_now_ms() < deadline)
		;
	__atomic_store_n(done, !zcopy_loaded(), __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Unload racing the last completions: sends queued behind a closed window
 * complete when the connection is reset, in the resetting process, while
 * another thread retries delete_module. The completion callback may be
 * preempted right where it hands the send to the workqueue; the module
 * must stay until it has returned (the debug kernel's KASAN would see it
 * run freed text).
 */
TEST_F_TIMEOUT(rmmod, unload_racing_completions, 300)
{
	struct linger lg = { 1, 0 };
	int round, i, ret;

	for (round = 0; round < RACE_ROUNDS; round++) {
		struct zc_tx *t = &self->t;
		bool unloaded = false;
		pthread_t th;
		int err;

		zc_rx_free(&t->rx);
		zc_log_free(&t->log);
		if (t->zfd < 0) {
			t->zfd = zc_open();
			ASSERT_LE(0, t->zfd) TH_LOG("round %d: open: %s", round, strerror(errno));
		}
		zc_tx_start(_metadata, t, true, 4096, 64 * KB, false);
		i = zc_tx_fill(t, self->buf, MB, 16 * KB, RACE_SENDS, &err);
		ASSERT_LT(0, i) TH_LOG("round %d: %s", round, strerror(err));
		ASSERT_EQ(0, close(t->zfd));
		t->zfd = -1;
		ASSERT_EQ(0, pthread_create(&th, NULL, unload_spin, &unloaded));
		ASSERT_EQ(0, setsockopt(t->sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
		ASSERT_EQ(0, close(t->sock));
		t->sock = -1;
		pthread_join(th, NULL);
		ASSERT_TRUE(unloaded) TH_LOG("round %d: zcopy did not unload", round);
		ret = zcopy_load(self->ko);
		ASSERT_EQ(0, ret) TH_LOG("round %d: finit_module: %s", round, strerror(-ret));
		t->hash = ZC_FNV_INIT;
		t->bytes = 0;
	}
	self->t.zfd = zc_open();
	ASSERT_LE(0, self->t.zfd);
}

TEST_HARNESS_MAIN
