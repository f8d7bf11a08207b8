// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl fuzzer: every command of /dev/zcopy, and numbers it does not
 * have, called with random and mutated arguments. Fds of every kind
 * (closed, not a socket, another zcopy fd, listening, unconnected, shut
 * down, reset, TCP and UDP over IPv4 and IPv6); buffers of every kind
 * (NULL, unmapped, PROT_NONE, read-only, across a guard page, a huge page,
 * shared memory, the pool and the receive area, kernel addresses); random
 * offsets, lengths, flags and reserved fields. Meanwhile one thread maps,
 * unmaps, mprotect()s and mremap()s the memory the calls use, pools and
 * receive areas included, and another closes and reopens their fds; now
 * and then a forked child makes calls of its own on what it inherited.
 *
 * Every call must return 0 or fail with an errno its command gives; the
 * process must take no signal; the records of the one zcopy fd that is
 * never closed must cover its sends exactly; and once everything is
 * closed, the module's ledger must show nothing pinned, mapped or in
 * flight. The harness outside fails the run on any kernel splat.
 *
 * ZCOPY_FUZZ_SEED=N repeats a run's choices (the seed is always logged),
 * ZCOPY_FUZZ_ITERS=N sets how many calls are made, and ZCOPY_FUZZ_CHAOS=0
 * stops the two threads: a seed then makes the same calls, as far as the
 * answers, which can depend on timing (has the data arrived yet?), allow.
 * An iteration stuck for 10 s is logged with what it was doing.
 */
#include <limits.h>
#include <pthread.h>
#include <sys/time.h>

#include <linux/zcopy.h>

#include "kselftest_harness.h"
#include "recv_test_util.h"

/* About 11 s in the TCG VM (0.5 to 0.8 ms each); the soak sets 100000 and more. */
#define FZ_ITERS_DEFAULT	15000

#define FZ_ZFDS		4	/* zcopy fds; [0], the anchor, stays open */
#define FZ_SOCKS	12	/* sockets and other fds passed as sockfd */
#define FZ_MAPS		12	/* pool and receive area mappings */
#define FZ_STALE	32	/* where mappings were before munmap() */
#define FZ_RXOFFS	256	/* receive slots given out, to release */
#define FZ_VOL		8	/* regions the mapper thread plays with */
#define FZ_VOL_PAGES	8
#define FZ_CHILD_ITERS	40	/* calls of a forked child */
#define FZ_MAX_FAILS	20	/* failures logged before giving up */
#define FZ_ERRNOS	134	/* errno values counted */

/* The good buffer: read-write, between guard pages, never unmapped. */
#define FZ_GOOD		(4 << 20)
#define FZ_ARGS		0		/* the structures passed */
#define FZ_IOVS		(64 << 10)	/* iovec arrays */
#define FZ_OFFS		(96 << 10)	/* offset arrays to release */
#define FZ_DESCS	(128 << 10)	/* receive descriptors */
#define FZ_SCRATCH	(192 << 10)	/* what is read: records, drained bytes */
#define FZ_SCRATCH_LEN	(256 << 10)
#define FZ_DATA		(448 << 10)	/* bytes to send, to the end */

/* The memfd: mapped shared, and a staging area for fz_poke(). */
#define FZ_MEMFD_LEN	(2 << 20)
#define FZ_STAGE	(1 << 20)

#define FZ_THP		(2 << 20)

enum fz_cmd {
	FZ_INFO,
	FZ_SEND,
	FZ_STATS,
	FZ_POOL_SEND,
	FZ_RECV,
	FZ_RELEASE,
	FZ_FORWARD,
	FZ_REGISTER,
	FZ_UNREGISTER,
	FZ_SEND_BATCH,
	FZ_POOL_SEND_BATCH,
	FZ_UNKNOWN,
	FZ_READ,	/* read(2) of completion records */
	FZ_NR_CMDS
};

static const char *const fz_cmd_name[FZ_NR_CMDS] = {
	"INFO", "SEND", "STATS", "POOL_SEND", "RECV", "RELEASE", "FORWARD", "REGISTER",
	"UNREGISTER", "SEND_BATCH", "POOL_SEND_BATCH", "unknown", "read",
};

/*
 * What each command may answer, from kmod/: its own checks, and what the
 * socket, GUP and the allocator pass on. ENOTTY and EBADF come on top for
 * an fd that another thread may have closed, or reopened as something else.
 */
static const int fz_errs_info[] = { EFAULT, EINVAL, 0 };
static const int fz_errs_stats[] = { EFAULT, EINVAL, 0 };
static const int fz_errs_send[] = {
	EFAULT, EINVAL, ENOENT, EBADF, ENOTSOCK, EOPNOTSUPP, ENOTCONN, EPIPE, ECONNRESET,
	ECONNREFUSED, EMSGSIZE, EAGAIN, ENOMEM, ENOBUFS, ENOSPC, 0
};
static const int fz_errs_pool_send[] = {
	EFAULT, EINVAL, ENXIO, EBADF, ENOTSOCK, EOPNOTSUPP, ENOTCONN, EPIPE, ECONNRESET,
	ECONNREFUSED, EMSGSIZE, EAGAIN, ENOMEM, ENOBUFS, ENOSPC, 0
};
static const int fz_errs_recv[] = {
	EFAULT, EINVAL, ENXIO, ENOENT, EBADF, ENOTSOCK, EOPNOTSUPP, ENOTCONN, EAGAIN,
	ENOSPC, EMSGSIZE, ENOMEM, ECONNRESET, EPIPE, ECONNREFUSED, 0
};
static const int fz_errs_release[] = { EFAULT, EINVAL, ENXIO, ENOENT, 0 };
static const int fz_errs_forward[] = {
	EFAULT, EINVAL, ENXIO, ENOENT, EBADF, ENOTSOCK, EOPNOTSUPP, ENOTCONN, EPIPE,
	ECONNRESET, ECONNREFUSED, EMSGSIZE, EAGAIN, ENOMEM, ENOBUFS, ENOSPC, 0
};
static const int fz_errs_register[] = { EFAULT, EINVAL, ENOBUFS, ENOSPC, ENOMEM, 0 };
static const int fz_errs_unregister[] = { EFAULT, EINVAL, ENOENT, 0 };
static const int fz_errs_unknown[] = { ENOTTY, 0 };
static const int fz_errs_read[] = { EFAULT, EINVAL, 0 };

static const int *const fz_errs[FZ_NR_CMDS] = {
	fz_errs_info, fz_errs_send, fz_errs_stats, fz_errs_pool_send, fz_errs_recv,
	fz_errs_release, fz_errs_forward, fz_errs_register, fz_errs_unregister,
	fz_errs_send, fz_errs_pool_send, fz_errs_unknown, fz_errs_read,
};

/* ZCOPY_IOC_STATS of ABI 1's first headers, before the receive causes. */
#define FZ_IOC_STATS_ABI1	_IOC(_IOC_READ | _IOC_WRITE, ZCOPY_IOC_MAGIC, \
				     _IOC_NR(ZCOPY_IOC_STATS), 264)

static const unsigned long fz_nr[FZ_NR_CMDS] = {
	ZCOPY_IOC_INFO, ZCOPY_IOC_SEND, ZCOPY_IOC_STATS, ZCOPY_IOC_POOL_SEND,
	ZCOPY_IOC_RECV, ZCOPY_IOC_RELEASE, ZCOPY_IOC_FORWARD, ZCOPY_IOC_REGISTER,
	ZCOPY_IOC_UNREGISTER, ZCOPY_IOC_SEND_BATCH, ZCOPY_IOC_POOL_SEND_BATCH,
};

/* What is passed as a socket. */
enum fz_kind {
	FZ_TCP4,		/* a connected pair over loopback */
	FZ_TCP6,
	FZ_UDP4,		/* a pair connected to each other */
	FZ_UDP6,
	FZ_UDP_REFUSED,		/* connected to a port nobody has */
	FZ_UDP_UNCONN,
	FZ_TCP_UNCONN,
	FZ_TCP_LISTEN,
	FZ_TCP_SHUT,		/* connected, shut down for sending */
	FZ_TCP_RESET,		/* connected, reset by its peer */
	FZ_UNIX,
	FZ_PIPE,
	FZ_NULL,		/* /dev/null */
	FZ_MEMFD,
	FZ_ZCOPY,		/* another /dev/zcopy */
	FZ_NR_KINDS
};

struct fz_sock {
	int kind;
	int fd;
	int peer;	/* the other end, or -1 */
};

enum fz_map_kind {
	FZ_MAP_NONE,
	FZ_MAP_POOL,
	FZ_MAP_RECV,
};

struct fz_map {
	uint8_t *addr;
	size_t len;
	int kind;
	int slot;	/* of the zcopy fd mapped */
};

struct fz {
	/* The tables below; never held across a call under test. */
	pthread_mutex_t lock;
	uint64_t seed;
	size_t ps;
	bool chaos;
	bool child;		/* a forked child: leaves the anchor's sends alone */
	int stop;
	int zfd[FZ_ZFDS];
	struct fz_sock sock[FZ_SOCKS];
	struct fz_map map[FZ_MAPS];
	uint64_t stale[FZ_STALE];	/* rings: the oldest go first */
	unsigned int nstale, stale_next;
	struct {
		uint64_t off;
		int slot;
	} rxoff[FZ_RXOFFS];
	unsigned int nrxoff, rxoff_next;

	uint8_t *good;
	uint8_t *ro;		/* a read-only page of zeroes */
	uint8_t *none;		/* a PROT_NONE page */
	uint8_t *thp;		/* 2 MiB, aligned, MADV_HUGEPAGE */
	uint8_t *thp_map;
	uint8_t *shm;		/* the memfd, mapped shared */
	int memfd;
	off_t stage;		/* where in the memfd fz_poke() stages */
	uint8_t *vol;
	bool vol_dead[FZ_VOL];	/* lost to a mapping that took its place */

	/*
	 * The anchor's sends with a record, of which forwards (the ledger
	 * counts those apart), and its receive area's size.
	 */
	struct zc_log log;
	uint64_t fwd_logged, fwd_logged_bytes;
	size_t anchor_area;
	long saved_copy_below;	/* >= 0: restore at teardown */

	uint64_t iter;
	const char *doing;	/* the call in progress, for the watchdog */
	pid_t tid;		/* of the thread making the calls */
	pthread_t main;
	uint64_t kicked;	/* the iteration the watchdog interrupted, + 1 */
	/* This call starts as a good one, mutated here and there. */
	bool sane;
	uint64_t calls[FZ_NR_CMDS], ok[FZ_NR_CMDS];
	uint32_t errs[FZ_NR_CMDS][FZ_ERRNOS];
	uint64_t forks, mem_ops, fd_ops;
	unsigned int fails;

	pthread_t mapper, closer, watchdog;
	bool threads, watching;
};

/* For the signal handler: what was going on (read and written atomically). */
static uint64_t fz_sig_iter, fz_sig_seed;

/* ---- random choices ---- */

static const uint64_t fz_vals[] = {
	0, 1, 2, 3, 7, 8, 16, 40, 64, 100, 511, 512, 4095, 4096, 4097, 8192, 16383, 16384,
	65507, 65508, 65527, 65535, 65536, 65537, 1 << 20, 16 << 20, 0x7fffffff, 0x80000000,
	0xfffff000, 0xffffffff, 0x100000000ULL, 0x7ffffffff000ULL, 0x800000000000ULL,
	1ULL << 62, 1ULL << 63, ~0ULL >> 1, ~0ULL - 4095, ~0ULL,
};

static uint64_t fz_below(uint64_t *rng, uint64_t n)
{
	return n ? zc_rand(rng) % n : 0;
}

static bool fz_pct(uint64_t *rng, unsigned int pct)
{
	return fz_below(rng, 100) < pct;
}

/* Mostly in [@lo, @hi], sometimes a value from the edges, or anything. */
static uint64_t fz_val(uint64_t *rng, uint64_t lo, uint64_t hi)
{
	unsigned int r = fz_below(rng, 100);

	if (r < 80)
		return zc_rand_range(rng, lo, hi);
	if (r < 95)
		return fz_vals[fz_below(rng, ARRAY_SIZE(fz_vals))];
	return zc_rand(rng) >> fz_below(rng, 64);
}

/* A length: mostly one that fits the buffers, some that run past them. */
static uint64_t fz_len(struct fz *f, uint64_t *rng)
{
	if (f->sane && fz_pct(rng, 95))
		return fz_pct(rng, 50) ? zc_rand_range(rng, 1, 8192) : zc_rand_range(rng, 1, 65536);
	switch (fz_below(rng, 10)) {
	case 0:
		return 0;
	case 1:
	case 2:
	case 3:
		return zc_rand_range(rng, 1, 4096);
	case 4:
	case 5:
		return zc_rand_range(rng, 1, 65536);
	case 6:
		return zc_rand_range(rng, 1, 1 << 20);
	case 7:
		return zc_rand_range(rng, 1, 8 << 20);
	default:
		return fz_val(rng, 1, 16384);
	}
}

/* Something odd, @pct% of the time: a tenth of that in a sane call. */
static bool fz_odd(struct fz *f, uint64_t *rng, unsigned int pct)
{
	return fz_below(rng, 1000) < (f->sane ? pct : 10 * pct);
}

/* A reserved field: zero, but now and then not. */
static uint64_t fz_reserved(struct fz *f, uint64_t *rng)
{
	return fz_odd(f, rng, 3) ? 1ULL << fz_below(rng, 64) : 0;
}

static uint64_t fz_env(const char *name, uint64_t def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

static uint64_t fz_iters(void)
{
	return fz_env("ZCOPY_FUZZ_ITERS", FZ_ITERS_DEFAULT);
}

/* ---- memory ---- */

static uint64_t fz_ptr(const void *p)
{
	return (uintptr_t)p;
}

/*
 * Copy @len bytes to @dst through the kernel, as a write(2) into it would:
 * memory another thread unmaps or protects meanwhile gives EFAULT, never a
 * signal.
 */
static int fz_poke_at(struct fz *f, off_t stage, uint64_t dst, const void *src, size_t len)
{
	if (pwrite(f->memfd, src, len, stage) != (ssize_t)len)
		return -errno;
	if (pread(f->memfd, (void *)(uintptr_t)dst, len, stage) != (ssize_t)len)
		return -EFAULT;
	return 0;
}

/* The main thread's (or a forked child's) staging area. */
static int fz_poke(struct fz *f, uint64_t dst, const void *src, size_t len)
{
	return fz_poke_at(f, f->stage, dst, src, len);
}

/* A live mapping of @kind (0: any), under f->lock: its index, or -1. */
static int fz_pick_map(struct fz *f, uint64_t *rng, int kind)
{
	unsigned int i, start = fz_below(rng, FZ_MAPS);

	for (i = 0; i < FZ_MAPS; i++) {
		struct fz_map *m = &f->map[(start + i) % FZ_MAPS];

		if (m->kind && (!kind || m->kind == kind))
			return (start + i) % FZ_MAPS;
	}
	return -1;
}

/* An address in a mapping of @kind, or where one was. */
static uint64_t fz_map_addr(struct fz *f, uint64_t *rng, int kind)
{
	uint64_t a = 0;
	int i;

	pthread_mutex_lock(&f->lock);
	i = fz_pick_map(f, rng, kind);
	if (i >= 0) {
		struct fz_map *m = &f->map[i];

		/* Mostly a page boundary, sometimes just before the end. */
		if (fz_pct(rng, 15))
			a = fz_ptr(m->addr) + m->len - fz_below(rng, 64) - 1;
		else if (fz_pct(rng, 70))
			a = fz_ptr(m->addr) + fz_below(rng, m->len / f->ps) * f->ps;
		else
			a = fz_ptr(m->addr) + fz_below(rng, m->len);
	} else if (f->nstale) {
		a = f->stale[fz_below(rng, f->nstale)];
	}
	pthread_mutex_unlock(&f->lock);
	return a;
}

enum fz_mem {
	FZ_MEM_GOOD,
	FZ_MEM_RO,
	FZ_MEM_NONE,
	FZ_MEM_GUARD,
	FZ_MEM_THP,
	FZ_MEM_SHM,
	FZ_MEM_VOL,
	FZ_MEM_POOL,
	FZ_MEM_RECV,
	FZ_MEM_STALE,
	FZ_MEM_NULL,
	FZ_MEM_KERNEL,
	FZ_MEM_NONCANON,
	FZ_MEM_TOP,
	FZ_MEM_RANDOM,
	FZ_NR_MEM
};

static const uint64_t fz_kernel_addrs[] = {
	0xffff888000000000ULL, 0xffffffff81000000ULL, 0xffffc90000000000ULL,
	0xfffffe0000000000ULL, 0xffffffffff600000ULL,
};

static const uint64_t fz_noncanon_addrs[] = {
	0x0000800000000000ULL, 0x8000000000000000ULL, 0x00ff000000000000ULL,
	0x7fffffffffffffffULL,
};

/* An address of kind @kind for @len bytes. */
static uint64_t fz_addr_of(struct fz *f, uint64_t *rng, int kind, uint64_t len)
{
	uint64_t span;

	switch (kind) {
	case FZ_MEM_GOOD:
		span = FZ_GOOD - FZ_DATA;
		if (len < span && fz_pct(rng, 80))
			return fz_ptr(f->good) + FZ_DATA + fz_below(rng, span - len + 1);
		return fz_ptr(f->good) + FZ_DATA + fz_below(rng, span);
	case FZ_MEM_RO:
		return fz_ptr(f->ro) + fz_below(rng, f->ps);
	case FZ_MEM_NONE:
		return fz_ptr(f->none) + fz_below(rng, f->ps);
	case FZ_MEM_GUARD:
		/* The last bytes of the good buffer, and on into its guard page. */
		return fz_ptr(f->good) + FZ_GOOD - fz_below(rng, 2 * f->ps) - 1;
	case FZ_MEM_THP:
		return fz_ptr(f->thp) + fz_below(rng, FZ_THP);
	case FZ_MEM_SHM:
		return fz_ptr(f->shm) + fz_below(rng, FZ_MEMFD_LEN);
	case FZ_MEM_VOL:
		return fz_ptr(f->vol) + fz_below(rng, FZ_VOL * FZ_VOL_PAGES * f->ps);
	case FZ_MEM_POOL:
		return fz_map_addr(f, rng, FZ_MAP_POOL);
	case FZ_MEM_RECV:
		return fz_map_addr(f, rng, FZ_MAP_RECV);
	case FZ_MEM_STALE:
		return fz_map_addr(f, rng, -1);
	case FZ_MEM_NULL:
		return fz_pct(rng, 50) ? 0 : fz_below(rng, 65536);
	case FZ_MEM_KERNEL:
		return fz_kernel_addrs[fz_below(rng, ARRAY_SIZE(fz_kernel_addrs))] +
		       fz_below(rng, 4) * f->ps;
	case FZ_MEM_NONCANON:
		return fz_noncanon_addrs[fz_below(rng, ARRAY_SIZE(fz_noncanon_addrs))];
	case FZ_MEM_TOP:
		/* The last page of user space, and across its end. */
		return 0x7ffffffff000ULL - fz_below(rng, 3 * f->ps);
	default:
		return zc_rand(rng);
	}
}

/* Where @len bytes to send could be: mostly memory that works. */
static uint64_t fz_addr(struct fz *f, uint64_t *rng, uint64_t len)
{
	static const uint8_t weights[2][FZ_NR_MEM] = { {
		[FZ_MEM_GOOD] = 40, [FZ_MEM_RO] = 5, [FZ_MEM_NONE] = 3, [FZ_MEM_GUARD] = 4,
		[FZ_MEM_THP] = 6, [FZ_MEM_SHM] = 5, [FZ_MEM_VOL] = 10, [FZ_MEM_POOL] = 10,
		[FZ_MEM_RECV] = 5, [FZ_MEM_STALE] = 3, [FZ_MEM_NULL] = 2, [FZ_MEM_KERNEL] = 2,
		[FZ_MEM_NONCANON] = 2, [FZ_MEM_TOP] = 2, [FZ_MEM_RANDOM] = 1,
	}, {
		/* Sane: memory that can be sent, now and then some that cannot. */
		[FZ_MEM_GOOD] = 70, [FZ_MEM_THP] = 8, [FZ_MEM_SHM] = 8, [FZ_MEM_VOL] = 4,
		[FZ_MEM_POOL] = 8, [FZ_MEM_RO] = 1, [FZ_MEM_NONE] = 1,
	} };
	unsigned int r = fz_below(rng, 100), k;

	for (k = 0; k < FZ_NR_MEM - 1 && r >= weights[f->sane][k]; k++)
		r -= weights[f->sane][k];
	return fz_addr_of(f, rng, k, len);
}

/*
 * Where a call's structure goes, written there: mostly the good buffer,
 * where the results can be read back (*@readback), else across its end
 * into the guard page, or anywhere fz_addr() goes, through fz_poke(). With
 * @tame, only places whose bytes no other thread changes: a receive whose
 * structure changed under it could wait for as long as it then says.
 */
static uint64_t fz_place(struct fz *f, uint64_t *rng, const void *arg, size_t len,
			 bool tame, bool *readback)
{
	static const int tame_kinds[] = {
		FZ_MEM_RO, FZ_MEM_NONE, FZ_MEM_NULL, FZ_MEM_KERNEL, FZ_MEM_NONCANON,
	};
	unsigned int r = fz_below(rng, 100);
	uint64_t a;

	*readback = false;
	if (r < (f->sane ? 98 : 85)) {
		a = fz_ptr(f->good) + FZ_ARGS + fz_below(rng, 4096);
		memcpy((void *)(uintptr_t)a, arg, len);
		*readback = true;
		return a;
	}
	if (r < 90) {
		size_t fits = zc_rand_range(rng, 1, len - 1);

		a = fz_ptr(f->good) + FZ_GOOD - fits;
		memcpy((void *)(uintptr_t)a, arg, fits);
		return a;
	}
	if (tame)
		return fz_addr_of(f, rng, tame_kinds[fz_below(rng, ARRAY_SIZE(tame_kinds))], len);
	a = fz_addr(f, rng, len);
	fz_poke(f, a, arg, len);
	return a;
}

/* ---- fds ---- */

/* Every socket waits 2 ms at most: a call never blocks for long. */
static void fz_timeouts(int fd)
{
	struct timeval tv = { 0, 2000 };

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Close with a reset, its queues freed at once. */
static void fz_linger0(int fd)
{
	struct linger lg = { 1, 0 };

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void fz_abort_close(int fd)
{
	if (fd < 0)
		return;
	fz_linger0(fd);
	close(fd);
}

static void fz_sock_make(struct fz_sock *s, int kind)
{
	int fam = kind == FZ_TCP6 || kind == FZ_UDP6 ? AF_INET6 : AF_INET;
	int a = -1, b = -1, p[2];

	switch (kind) {
	case FZ_TCP4:
	case FZ_TCP6:
	case FZ_TCP_SHUT:
	case FZ_TCP_RESET:
		if (zc_tcp_pair(fam, 0, &a, &b))
			break;
		if (kind == FZ_TCP_SHUT)
			shutdown(a, SHUT_WR);
		if (kind == FZ_TCP_RESET) {
			fz_abort_close(b);
			b = -1;
		}
		break;
	case FZ_UDP4:
	case FZ_UDP6:
		zc_udp_pair(fam, true, &a, &b);
		break;
	case FZ_UDP_REFUSED:
		b = zc_bind(AF_INET, SOCK_DGRAM, "127.0.0.1", 0);
		if (b >= 0) {
			uint16_t port = zc_port(b);

			close(b);
			b = -1;
			a = zc_dial(AF_INET, SOCK_DGRAM, "127.0.0.1", port);
		}
		break;
	case FZ_UDP_UNCONN:
		a = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		break;
	case FZ_TCP_UNCONN:
		a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		break;
	case FZ_TCP_LISTEN:
		a = zc_bind(AF_INET6, SOCK_STREAM, "::1", 0);
		break;
	case FZ_UNIX:
		if (!socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p)) {
			a = p[0];
			b = p[1];
		}
		break;
	case FZ_PIPE:
		if (!pipe2(p, O_NONBLOCK | O_CLOEXEC)) {
			a = p[0];
			b = p[1];
		}
		break;
	case FZ_NULL:
		a = open("/dev/null", O_RDWR | O_CLOEXEC);
		break;
	case FZ_MEMFD:
		a = memfd_create("fz", MFD_CLOEXEC);
		break;
	default:
		a = open(ZCOPY_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		break;
	}
	if (a < 0) {
		if (b >= 0)
			close(b);
		a = -1;
		b = -1;
	}
	fz_timeouts(a);
	fz_timeouts(b);
	s->kind = kind;
	s->fd = a;
	s->peer = b;
}

static bool fz_kind_tcp(int kind)
{
	return kind == FZ_TCP4 || kind == FZ_TCP6 || kind == FZ_TCP_UNCONN ||
	       kind == FZ_TCP_LISTEN || kind == FZ_TCP_SHUT || kind == FZ_TCP_RESET;
}

/*
 * Close both ends; with @abort, a TCP pair's both with a reset. Else one
 * end still goes with a reset (when it is the last close: a forked child
 * may hold it): were both to close in order, the one with bytes left to
 * send could stay behind, orphaned, probing a window its closed peer never
 * opens again, for minutes, and with it the pages of its sends.
 */
static void fz_sock_close(struct fz_sock *s, bool abort)
{
	if (fz_kind_tcp(s->kind)) {
		fz_linger0(s->peer);
		if (abort)
			fz_linger0(s->fd);
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->peer >= 0)
		close(s->peer);
	s->fd = -1;
	s->peer = -1;
}

/* A number no fd has now: closed a moment ago. */
static int fz_closed_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd;
}

/* A socket of a connected pair, under f->lock: the table's index, or -1. */
static int fz_pick_connected(struct fz *f, uint64_t *rng)
{
	unsigned int i, start = fz_below(rng, FZ_SOCKS);

	for (i = 0; i < FZ_SOCKS; i++) {
		const struct fz_sock *s = &f->sock[(start + i) % FZ_SOCKS];

		if (s->fd >= 0 && s->kind <= FZ_UDP6)
			return (start + i) % FZ_SOCKS;
	}
	return -1;
}

/*
 * What to pass as a socket: mostly one of the table's, any end; in a sane
 * call, one end of a connected pair (@peer: the receiving end, mostly).
 */
static int fz_sockfd(struct fz *f, uint64_t *rng, bool peer)
{
	static const int odd[] = { -1, -1000, INT_MIN, INT_MAX, 1 << 20, 0, 1, 2, 65535 };
	unsigned int r = fz_below(rng, 100);
	int fd, i;

	if (f->sane && r < 95) {
		pthread_mutex_lock(&f->lock);
		i = fz_pick_connected(f, rng);
		fd = i < 0 ? -1 : fz_pct(rng, 75) == peer ? f->sock[i].peer : f->sock[i].fd;
		pthread_mutex_unlock(&f->lock);
		if (i >= 0)
			return fd;
	}
	if (r < 85) {
		struct fz_sock *s;

		pthread_mutex_lock(&f->lock);
		s = &f->sock[fz_below(rng, FZ_SOCKS)];
		fd = s->peer >= 0 && fz_pct(rng, 40) ? s->peer : s->fd;
		pthread_mutex_unlock(&f->lock);
		return fd;
	}
	if (r < 90)
		return f->zfd[fz_below(rng, FZ_ZFDS)];
	if (r < 94)
		return fz_closed_fd();
	return odd[fz_below(rng, ARRAY_SIZE(odd))];
}

/* ---- the threads' moves, and the main thread's now and then ---- */

/* Remember where a mapping was; under f->lock. */
static void fz_stale_add(struct fz *f, const void *addr)
{
	f->stale[f->stale_next] = fz_ptr(addr);
	f->stale_next = (f->stale_next + 1) % FZ_STALE;
	if (f->nstale < FZ_STALE)
		f->nstale++;
}

static void fz_map_forget(struct fz *f, struct fz_map *m)
{
	fz_stale_add(f, m->addr);
	memset(m, 0, sizeof(*m));
}

/* Map a pool or a receive area of zcopy fd @slot (-1: any); under f->lock. */
static void fz_map_new(struct fz *f, uint64_t *rng, int kind, int slot)
{
	int i, prot, flags = MAP_SHARED;
	size_t pages;
	void *p;

	for (i = 0; i < FZ_MAPS && f->map[i].kind; i++)
		;
	if (i == FZ_MAPS) {
		i = fz_below(rng, FZ_MAPS);
		munmap(f->map[i].addr, f->map[i].len);
		fz_map_forget(f, &f->map[i]);
	}
	if (slot < 0)
		slot = fz_below(rng, FZ_ZFDS);
	pages = fz_pct(rng, 95) ? zc_rand_range(rng, 1, 64) : zc_rand_range(rng, 1, 2048);
	if (kind == FZ_MAP_POOL) {
		prot = fz_pct(rng, 90) ? PROT_READ | PROT_WRITE : PROT_READ;
		if (fz_pct(rng, 3))
			flags = MAP_PRIVATE;
		if (fz_pct(rng, 2))
			prot |= PROT_EXEC;
		p = mmap(NULL, pages * f->ps, prot, flags, f->zfd[slot], ZCOPY_MMAP_POOL);
	} else {
		prot = fz_pct(rng, 95) ? PROT_READ : PROT_READ | PROT_WRITE;
		p = mmap(NULL, pages * f->ps, prot, flags, f->zfd[slot], ZCOPY_MMAP_RECV);
	}
	if (p == MAP_FAILED)
		return;
	f->map[i] = (struct fz_map){ p, pages * f->ps, kind, slot };
	/* The anchor's area keeps the size its first mapping gave it. */
	if (kind == FZ_MAP_RECV && !slot && !f->anchor_area)
		f->anchor_area = pages * f->ps;
}

/* Move a mapping elsewhere: onto a placeholder, so that it must move. */
static void fz_map_move(struct fz *f, struct fz_map *m)
{
	void *to = mmap(NULL, m->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *p;

	if (to == MAP_FAILED)
		return;
	p = mremap(m->addr, m->len, m->len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (p == MAP_FAILED) {
		munmap(to, m->len);
		return;
	}
	fz_stale_add(f, m->addr);
	m->addr = p;
}

/* What a volatile region becomes next: its prot, or gone and back. */
static void fz_vol_move(struct fz *f, uint64_t *rng)
{
	static const int prots[] = { PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE };
	unsigned int v = fz_below(rng, FZ_VOL);
	size_t len = FZ_VOL_PAGES * f->ps;
	uint8_t *p = f->vol + v * len;
	void *q;

	if (f->vol_dead[v])
		return;
	switch (fz_below(rng, 6)) {
	case 0:
		mprotect(p, len, prots[fz_below(rng, ARRAY_SIZE(prots))]);
		break;
	case 1:
		/* New pages in its place, at once: the old ones stay with their pins. */
		mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		break;
	case 2:
		/* Gone for a moment; whatever took its place meanwhile keeps it. */
		munmap(p, len);
		q = mmap(p, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (q != p) {
			if (q != MAP_FAILED)
				munmap(q, len);
			f->vol_dead[v] = true;
		}
		break;
	case 3:
		madvise(p, len, MADV_DONTNEED);
		break;
	default:
		/* Scribble, through the kernel (staged apart): it may be protected now. */
		fz_poke_at(f, FZ_STAGE + 8 * 4096, fz_ptr(p) + fz_below(rng, len - 64), rng,
			   sizeof(*rng));
		break;
	}
}

static void fz_mem_move(struct fz *f, uint64_t *rng)
{
	struct fz_map *m;
	int i;

	pthread_mutex_lock(&f->lock);
	f->mem_ops++;
	switch (fz_below(rng, 12)) {
	case 0:
		fz_map_new(f, rng, FZ_MAP_POOL, -1);
		break;
	case 1:
	case 2:
		fz_map_new(f, rng, FZ_MAP_RECV, -1);
		break;
	case 3:
	case 4:
		i = fz_pick_map(f, rng, 0);
		if (i < 0)
			break;
		munmap(f->map[i].addr, f->map[i].len);
		fz_map_forget(f, &f->map[i]);
		break;
	case 5:
		/* Part of a mapping: a pool splits, a receive area refuses. */
		i = fz_pick_map(f, rng, 0);
		if (i < 0 || f->map[i].len < 2 * f->ps)
			break;
		m = &f->map[i];
		if (fz_pct(rng, 50)) {
			if (!munmap(m->addr, f->ps)) {
				m->addr += f->ps;
				m->len -= f->ps;
			}
		} else if (!munmap(m->addr + m->len - f->ps, f->ps)) {
			m->len -= f->ps;
		}
		break;
	case 6:
		i = fz_pick_map(f, rng, 0);
		if (i >= 0)
			fz_map_move(f, &f->map[i]);
		break;
	case 7:
		i = fz_pick_map(f, rng, 0);
		if (i >= 0) {
			static const int prots[] = {
				PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE, PROT_READ | PROT_EXEC,
			};

			mprotect(f->map[i].addr, f->map[i].len, prots[fz_below(rng, 4)]);
		}
		break;
	case 8:
		i = fz_pick_map(f, rng, 0);
		if (i >= 0) {
			static const int advice[] = { MADV_DONTNEED, MADV_DOFORK, MADV_DONTFORK };

			madvise(f->map[i].addr, f->map[i].len, advice[fz_below(rng, 3)]);
		}
		break;
	default:
		fz_vol_move(f, rng);
		break;
	}
	pthread_mutex_unlock(&f->lock);
}

static void fz_fd_move(struct fz *f, uint64_t *rng)
{
	struct fz_sock *s;
	int slot, fd;

	pthread_mutex_lock(&f->lock);
	f->fd_ops++;
	switch (fz_below(rng, 6)) {
	case 0:
		/* Never the anchor; its mappings keep the old file alive. */
		slot = zc_rand_range(rng, 1, FZ_ZFDS - 1);
		if (f->zfd[slot] >= 0)
			close(f->zfd[slot]);
		f->zfd[slot] = fz_pct(rng, 90) ? open(ZCOPY_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC)
					       : -1;
		/* Mostly with a pool and an area at once, as a program would. */
		if (fz_pct(rng, 70))
			fz_map_new(f, rng, FZ_MAP_POOL, slot);
		if (fz_pct(rng, 70))
			fz_map_new(f, rng, FZ_MAP_RECV, slot);
		break;
	case 1:
	case 2:
	case 3:
	case 4:
		s = &f->sock[fz_below(rng, FZ_SOCKS)];
		fz_sock_close(s, fz_pct(rng, 50));
		fz_sock_make(s, fz_below(rng, FZ_NR_KINDS));
		break;
	default:
		s = &f->sock[fz_below(rng, FZ_SOCKS)];
		fd = fz_pct(rng, 50) && s->peer >= 0 ? s->peer : s->fd;
		if (fz_pct(rng, 70))
			shutdown(fd, fz_below(rng, 3));
		else
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) ^ O_NONBLOCK);
		break;
	}
	pthread_mutex_unlock(&f->lock);
}

/* Where in the kernel the calling thread is, and (as root) every CPU. */
static void fz_dump_stuck(struct fz *f)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stack", f->tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			fprintf(stderr, "# fuzz: its kernel stack:\n%s", buf);
		}
	}
	fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		/* Backtraces of the CPUs and of the blocked tasks, to dmesg. */
		if (write(fd, "l", 1) != 1 || write(fd, "w", 1) != 1)
			fprintf(stderr, "# fuzz: sysrq: %s\n", strerror(errno));
		close(fd);
	}
}

static void fz_kick(int sig)
{
}

/*
 * An iteration blocked for 2 s is interrupted: a call may wait without end
 * on a socket that has no timeout yet, a number another thread reused the
 * moment it made the socket. One that takes 10 s anyway is stuck: say
 * which, what it was doing and where, before the harness's timeout kills
 * the test without a word.
 */
static void *fz_watchdog(void *arg)
{
	struct fz *f = arg;
	uint64_t last = ~0ULL, now;
	int still = 0;

	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		zc_sleep_ms(100);
		now = __atomic_load_n(&fz_sig_iter, __ATOMIC_RELAXED);
		if (now != last) {
			last = now;
			still = 0;
		} else if (++still == 20) {
			fprintf(stderr, "# fuzz: iteration %llu (%s) blocked for 2 s: interrupted\n",
				ZC_U64(now), __atomic_load_n(&f->doing, __ATOMIC_RELAXED));
			__atomic_store_n(&f->kicked, now + 1, __ATOMIC_RELAXED);
			pthread_kill(f->main, SIGUSR1);
		} else if (still == 100) {
			fprintf(stderr, "# fuzz: iteration %llu (%s) stuck for 10 s, ZCOPY_FUZZ_SEED=%#llx\n",
				ZC_U64(now), __atomic_load_n(&f->doing, __ATOMIC_RELAXED),
				ZC_U64(f->seed));
			fz_dump_stuck(f);
		}
	}
	return NULL;
}

/* A thread's pace: a move, then a pause, until told to stop. */
static void fz_nap(uint64_t *rng, unsigned int max_us)
{
	struct timespec ts = { 0, (long)fz_below(rng, max_us) * 1000 };

	nanosleep(&ts, NULL);
}

static void *fz_mapper(void *arg)
{
	struct fz *f = arg;
	uint64_t rng = f->seed ^ 0x6d6170706572ULL;

	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		fz_mem_move(f, &rng);
		fz_nap(&rng, 400);
	}
	return NULL;
}

static void *fz_closer(void *arg)
{
	struct fz *f = arg;
	uint64_t rng = f->seed ^ 0x636c6f736572ULL;

	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		fz_fd_move(f, &rng);
		fz_nap(&rng, 4000);
	}
	return NULL;
}

/* ---- checking the answers ---- */

static void fz_dump(const void *arg, size_t len)
{
	const uint64_t *w = arg;
	size_t i;

	for (i = 0; i < len / 8; i += 4)
		fprintf(stderr, "#   +%3zu: %016llx %016llx %016llx %016llx\n", i * 8,
			ZC_U64(w[i]), ZC_U64(i + 1 < len / 8 ? w[i + 1] : 0),
			ZC_U64(i + 2 < len / 8 ? w[i + 2] : 0),
			ZC_U64(i + 3 < len / 8 ? w[i + 3] : 0));
}

static void __printf(4, 5)
fz_fail(struct __test_metadata *_metadata, struct fz *f, const void *arg, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f->fails++;
	if (f->fails > FZ_MAX_FAILS)
		return;
	TH_LOG("%siteration %llu (ZCOPY_FUZZ_SEED=%#llx%s): %s", f->child ? "forked child, " : "",
	       ZC_U64(f->iter), ZC_U64(f->seed), f->chaos ? "" : " ZCOPY_FUZZ_CHAOS=0", msg);
	if (arg)
		fz_dump(arg, 128);
	EXPECT_TRUE(0);
}

static bool fz_errno_ok(int cmd, int err, bool anchor)
{
	const int *e;

	for (e = fz_errs[cmd]; *e; e++)
		if (*e == err)
			return true;
	/* The fd may have been closed, or reopened as any other file. */
	return !anchor && (err == EBADF || err == ENOTTY);
}

/* A call returned @ret with @err: an answer its command may give? */
static bool fz_answer(struct __test_metadata *_metadata, struct fz *f, int cmd, bool anchor,
		      unsigned long nr, int ret, int err, const void *arg)
{
	f->calls[cmd]++;
	if (ret == 0) {
		f->ok[cmd]++;
		if (cmd != FZ_UNKNOWN)
			return true;
	} else if (ret == -1 && (fz_errno_ok(cmd, err, anchor) ||
				(err == EINTR && __atomic_load_n(&f->kicked, __ATOMIC_RELAXED) ==
						 f->iter + 1))) {
		if (err < FZ_ERRNOS)
			f->errs[cmd][err]++;
		return true;
	}
	fz_fail(_metadata, f, arg, "%s (%#lx) on %s fd: returned %d, errno %d (%s)",
		fz_cmd_name[cmd], nr, anchor ? "the anchor" : "a", ret, ret ? err : 0,
		ret ? strerror(err) : "success");
	return false;
}

static void fz_rxoff_add(struct fz *f, int slot, uint64_t off)
{
	pthread_mutex_lock(&f->lock);
	f->rxoff[f->rxoff_next].off = off;
	f->rxoff[f->rxoff_next].slot = slot;
	f->rxoff_next = (f->rxoff_next + 1) % FZ_RXOFFS;
	if (f->nrxoff < FZ_RXOFFS)
		f->nrxoff++;
	pthread_mutex_unlock(&f->lock);
}

/* ---- the calls ---- */

/*
 * Which zcopy fd a call goes to: slot @slot if >= 0, else the anchor,
 * mostly, or another. Its fd; *@slotp (may be NULL) says which.
 */
static int fz_target(struct fz *f, uint64_t *rng, bool sends, int slot, bool *anchor,
		     int *slotp)
{
	if (slot < 0)
		slot = fz_pct(rng, 60) ? 0 : fz_below(rng, FZ_ZFDS);
	/* A forked child's sends on the anchor would break its sequence. */
	if (f->child && sends && !slot)
		slot = 1;
	*anchor = !slot;
	if (slotp)
		*slotp = slot;
	return __atomic_load_n(&f->zfd[slot], __ATOMIC_RELAXED);
}

static void fz_info(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	struct zcopy_info in = { 0 }, *out;
	bool anchor, rb;
	int fd = fz_target(f, rng, false, -1, &anchor, NULL), ret;
	uint64_t where;

	if (fz_pct(rng, 50))
		zc_fill(&in, ZC_SEED(zc_rand(rng)), sizeof(in));
	in.flags = fz_odd(f, rng, 5) ? fz_val(rng, 0, 3) : 0;
	in.__pad = fz_reserved(f, rng);
	memset(in.reserved, 0, sizeof(in.reserved));
	in.reserved[fz_below(rng, 4)] = fz_reserved(f, rng);
	where = fz_place(f, rng, &in, sizeof(in), false, &rb);
	ret = ioctl(fd, ZCOPY_IOC_INFO, (uintptr_t)where);
	if (!fz_answer(_metadata, f, FZ_INFO, anchor, ZCOPY_IOC_INFO, ret, errno, &in) ||
	    ret || !rb)
		return;
	out = (struct zcopy_info *)(uintptr_t)where;
	if (out->abi_version != ZCOPY_ABI_VERSION || out->page_size != f->ps ||
	    (out->features & 0xf) != 0xf)
		fz_fail(_metadata, f, out, "INFO: abi %u, page size %u, features %#llx",
			out->abi_version, out->page_size, ZC_U64(out->features));
}

static void fz_stats(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	struct zcopy_stats in, *out;
	bool anchor, rb;
	int fd = fz_target(f, rng, false, -1, &anchor, NULL), ret;
	uint64_t where;
	unsigned int i;

	zc_fill(&in, ZC_SEED(zc_rand(rng)), sizeof(in));
	in.flags = fz_odd(f, rng, 10) ? fz_val(rng, 0, 3) : fz_below(rng, 2);
	in.__pad = fz_reserved(f, rng);
	memset(in.reserved, 0, sizeof(in.reserved));
	in.reserved[fz_below(rng, ARRAY_SIZE(in.reserved))] = fz_reserved(f, rng);
	where = fz_place(f, rng, &in, sizeof(in), false, &rb);
	ret = ioctl(fd, ZCOPY_IOC_STATS, (uintptr_t)where);
	if (!fz_answer(_metadata, f, FZ_STATS, anchor, ZCOPY_IOC_STATS, ret, errno, &in) ||
	    ret || !rb)
		return;
	out = (struct zcopy_stats *)(uintptr_t)where;
	for (i = 0; i < ARRAY_SIZE(out->reserved); i++)
		if (out->reserved[i])
			fz_fail(_metadata, f, NULL, "STATS: reserved[%u] %#llx", i,
				ZC_U64(out->reserved[i]));
	if (out->pages_pinned_peak > out->pages_pinned_total)
		fz_fail(_metadata, f, NULL, "STATS: pages_pinned_peak %llu > total %llu",
			ZC_U64(out->pages_pinned_peak), ZC_U64(out->pages_pinned_total));
}

/* A successful send on the anchor: its seq and offset are the next ones. */
static void fz_anchor_sent(struct __test_metadata *_metadata, struct fz *f, const char *what,
			   uint64_t seq, uint64_t offset, uint64_t bytes, uint64_t cookie)
{
	struct zcopy_send s = { .seq = seq, .offset = offset, .bytes = bytes, .cookie = cookie };

	if (seq != f->log.nsent || offset != f->log.bytes)
		fz_fail(_metadata, f, NULL, "%s: seq %llu offset %llu, expected %zu and %llu",
			what, ZC_U64(seq), ZC_U64(offset), f->log.nsent, ZC_U64(f->log.bytes));
	else if (f->log.nsent < f->log.sent_cap)
		zc_log_add(&f->log, &s, 0, 0);
}

static void fz_send(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	struct zcopy_iovec *iov = (struct zcopy_iovec *)(f->good + FZ_IOVS);
	struct zcopy_send in, *out;
	uint64_t where, total = 0;
	unsigned int i, n;
	bool anchor, rb;
	int fd = fz_target(f, rng, true, -1, &anchor, NULL), ret;

	zc_fill(&in, ZC_SEED(zc_rand(rng)), sizeof(in));
	in.sockfd = fz_sockfd(f, rng, false);
	in.flags = fz_pct(rng, 80) ? ZCOPY_SEND_DONTWAIT : 0;
	if (fz_pct(rng, 20))
		in.flags |= ZCOPY_SEND_MORE;
	if (fz_odd(f, rng, 3))
		in.flags |= 1U << fz_below(rng, 32);
	in.buf_index = fz_reserved(f, rng);
	/* From a registered buffer, if the fd has one there. */
	if (fz_pct(rng, 15)) {
		in.flags |= ZCOPY_SEND_FIXED;
		in.buf_index = fz_below(rng, 4);
	}
	memset(in.reserved, 0, sizeof(in.reserved));
	in.reserved[fz_below(rng, 4)] = fz_reserved(f, rng);
	n = fz_odd(f, rng, 10) ? fz_val(rng, 0, ZCOPY_MAX_IOV + 1) : zc_rand_range(rng, 1, 4);
	in.iov_count = n;
	for (i = 0; i < n && i <= ZCOPY_MAX_IOV; i++) {
		iov[i].len = fz_len(f, rng);
		iov[i].base = fz_addr(f, rng, iov[i].len);
		total += iov[i].len;
	}
	in.iov = fz_odd(f, rng, 8) ? fz_addr(f, rng, n * sizeof(*iov)) : fz_ptr(iov);
	/* The anchor's results must be read back: see fz_anchor_sent(). */
	where = fz_place(f, rng, &in, sizeof(in), anchor, &rb);
	ret = ioctl(fd, ZCOPY_IOC_SEND, (uintptr_t)where);
	if (!fz_answer(_metadata, f, FZ_SEND, anchor, ZCOPY_IOC_SEND, ret, errno, &in) || ret)
		return;
	if (!rb) {
		if (anchor)
			fz_fail(_metadata, f, &in, "SEND succeeded with its results unwritable");
		return;
	}
	out = (struct zcopy_send *)(uintptr_t)where;
	if (!out->bytes || (in.iov == fz_ptr(iov) && out->bytes > total))
		fz_fail(_metadata, f, &in, "SEND: %llu bytes of %llu", ZC_U64(out->bytes),
			ZC_U64(total));
	if (anchor)
		fz_anchor_sent(_metadata, f, "SEND", out->seq, out->offset, out->bytes,
			       out->cookie);
}

/*
 * A pool send's arguments: within the mapping [@map, @map + @map_len) of
 * the pool when @map_len, else anywhere, mostly near or in a pool.
 */
static void fz_pool_send_args(struct fz *f, uint64_t *rng, uint64_t map, size_t map_len,
			      struct zcopy_pool_send *in)
{
	zc_fill(in, ZC_SEED(zc_rand(rng)), sizeof(*in));
	in->sockfd = fz_sockfd(f, rng, false);
	in->flags = fz_below(rng, ZCOPY_POOL_SEND_FLAGS + 1);
	if (fz_pct(rng, 80))
		in->flags |= ZCOPY_SEND_DONTWAIT;
	if (fz_odd(f, rng, 3))
		in->flags |= 1U << fz_below(rng, 32);
	memset(in->reserved, 0, sizeof(in->reserved));
	in->reserved[fz_below(rng, 4)] = fz_reserved(f, rng);
	if (map_len) {
		uint64_t off = fz_below(rng, map_len);

		in->len = zc_rand_range(rng, 1, map_len - off);
		in->offset = in->flags & ZCOPY_POOL_SEND_ADDR ? map + off : off;
	} else {
		in->len = fz_pct(rng, 60) ? zc_rand_range(rng, 1, 5 * f->ps) : fz_len(f, rng);
		if (in->flags & ZCOPY_POOL_SEND_ADDR)
			in->offset = fz_pct(rng, 70) ? fz_map_addr(f, rng, FZ_MAP_POOL)
						    : fz_addr(f, rng, in->len);
		else
			in->offset = fz_pct(rng, 80) ? fz_below(rng, 80 * f->ps)
						    : fz_val(rng, 0, 1 << 20);
	}
	if (fz_odd(f, rng, 5))
		in->len = fz_len(f, rng);
}

static void fz_pool_send(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	struct zcopy_pool_send in, *out;
	int slot = -1, fd, ret, i;
	uint64_t where, map = 0;
	size_t map_len = 0;
	bool anchor, rb;

	/* Sane: within a mapping of the pool, on the fd that mapped it. */
	if (f->sane) {
		pthread_mutex_lock(&f->lock);
		i = fz_pick_map(f, rng, FZ_MAP_POOL);
		if (i >= 0) {
			slot = f->map[i].slot;
			map = fz_ptr(f->map[i].addr);
			map_len = f->map[i].len;
		}
		pthread_mutex_unlock(&f->lock);
	}
	fd = fz_target(f, rng, true, slot, &anchor, NULL);
	fz_pool_send_args(f, rng, map, map_len, &in);
	where = fz_place(f, rng, &in, sizeof(in), anchor, &rb);
	ret = ioctl(fd, ZCOPY_IOC_POOL_SEND, (uintptr_t)where);
	if (!fz_answer(_metadata, f, FZ_POOL_SEND, anchor, ZCOPY_IOC_POOL_SEND, ret, errno,
		       &in) || ret)
		return;
	if (!rb) {
		if (anchor)
			fz_fail(_metadata, f, &in, "POOL_SEND succeeded with its results unwritable");
		return;
	}
	out = (struct zcopy_pool_send *)(uintptr_t)where;
	if (!out->bytes || out->bytes > in.len)
		fz_fail(_metadata, f, &in, "POOL_SEND: %llu bytes of %llu", ZC_U64(out->bytes),
			ZC_U64(in.len));
	if ((out->seq == ZCOPY_NO_SEQ) != (out->stream_offset == ZCOPY_NO_SEQ) ||
	    (out->seq == ZCOPY_NO_SEQ && (in.flags & ZCOPY_POOL_SEND_NOTIFY)))
		fz_fail(_metadata, f, &in, "POOL_SEND: seq %#llx stream_offset %#llx",
			ZC_U64(out->seq), ZC_U64(out->stream_offset));
	else if (anchor && out->seq != ZCOPY_NO_SEQ)
		fz_anchor_sent(_metadata, f, "POOL_SEND", out->seq, out->stream_offset,
			       out->bytes, out->cookie);
}

/*
 * An array of @n area offsets to release: mostly ones given out, those of
 * slot @slot first when it is not -1.
 */
static uint64_t fz_offsets(struct fz *f, uint64_t *rng, unsigned int n, int slot)
{
	uint64_t *offs = (uint64_t *)(f->good + FZ_OFFS);
	unsigned int i, j = 0;

	pthread_mutex_lock(&f->lock);
	for (i = 0; i < n && i <= ZCOPY_MAX_RX_DESC; i++) {
		while (slot >= 0 && j < f->nrxoff && f->rxoff[j].slot != slot)
			j++;
		if (slot >= 0 && j < f->nrxoff && !fz_odd(f, rng, 5))
			offs[i] = f->rxoff[j++].off;
		else if (f->nrxoff && fz_pct(rng, 80))
			offs[i] = f->rxoff[fz_below(rng, f->nrxoff)].off;
		else if (fz_pct(rng, 70))
			offs[i] = fz_below(rng, 128) * f->ps;
		else
			offs[i] = fz_val(rng, 0, 1 << 20);
	}
	pthread_mutex_unlock(&f->lock);
	return fz_odd(f, rng, 8) ? fz_addr(f, rng, n * sizeof(*offs)) : fz_ptr(offs);
}

/*
 * FORWARD: pieces mostly of slots given out, of slot @slot's fd when sane,
 * to a socket that may be anything.
 */
static void fz_forward(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	struct zcopy_fwd_piece *p = (struct zcopy_fwd_piece *)(f->good + FZ_IOVS);
	struct zcopy_forward in, *out;
	int slot = -1, fd, ret, i;
	uint64_t where, total = 0;
	bool anchor, rb;

	if (f->sane) {
		pthread_mutex_lock(&f->lock);
		i = f->nrxoff ? (int)fz_below(rng, f->nrxoff) : -1;
		if (i >= 0)
			slot = f->rxoff[i].slot;
		pthread_mutex_unlock(&f->lock);
	}
	fd = fz_target(f, rng, true, slot, &anchor, &slot);
	zc_fill(&in, ZC_SEED(zc_rand(rng)), sizeof(in));
	in.sockfd = fz_sockfd(f, rng, false);
	in.flags = fz_below(rng, ZCOPY_FORWARD_FLAGS + 1);
	if (fz_pct(rng, 80))
		in.flags |= ZCOPY_SEND_DONTWAIT;
	if (fz_odd(f, rng, 3))
		in.flags |= 1U << fz_below(rng, 32);
	in.__pad = fz_reserved(f, rng);
	memset(in.reserved, 0, sizeof(in.reserved));
	in.reserved[fz_below(rng, 4)] = fz_reserved(f, rng);
	in.count = fz_odd(f, rng, 10) ? fz_val(rng, 0, ZCOPY_MAX_FWD_PIECES + 1)
				      : zc_rand_range(rng, 1, 16);
	/* Offsets of slots given out (and others), a part of each. */
	in.pieces = fz_offsets(f, rng, in.count, slot);
	if (in.pieces == fz_ptr(f->good + FZ_OFFS)) {
		const uint64_t *offs = (const uint64_t *)(f->good + FZ_OFFS);

		for (i = 0; i < (int)in.count && i <= ZCOPY_MAX_FWD_PIECES; i++) {
			uint32_t at = fz_pct(rng, 50) ? 0 : fz_below(rng, f->ps);

			p[i].offset = offs[i] + at;
			p[i].len = fz_pct(rng, 80) ? zc_rand_range(rng, 1, f->ps - at)
						   : fz_val(rng, 0, 2 * f->ps);
			p[i].__pad = fz_odd(f, rng, 5) ? 1 : 0;
			total += p[i].len;
		}
		in.pieces = fz_ptr(p);
	}
	where = fz_place(f, rng, &in, sizeof(in), anchor, &rb);
	ret = ioctl(fd, ZCOPY_IOC_FORWARD, (uintptr_t)where);
	if (!fz_answer(_metadata, f, FZ_FORWARD, anchor, ZCOPY_IOC_FORWARD, ret, errno, &in) ||
	    ret)
		return;
	if (!rb) {
		if (anchor)
			fz_fail(_metadata, f, &in, "FORWARD succeeded with its results unwritable");
		return;
	}
	out = (struct zcopy_forward *)(uintptr_t)where;
	if (!out->bytes || (total && out->bytes > total))
		fz_fail(_metadata, f, &in, "FORWARD: %llu bytes of %llu", ZC_U64(out->bytes),
			ZC_U64(total));
	if ((out->seq == ZCOPY_NO_SEQ) != (out->stream_offset == ZCOPY_NO_SEQ) ||
	    (out->seq == ZCOPY_NO_SEQ) != !(in.flags & ZCOPY_FORWARD_NOTIFY))
		fz_fail(_metadata, f, &in, "FORWARD: seq %#llx stream_offset %#llx",
			ZC_U64(out->seq), ZC_U64(out->stream_offset));
	else if (anchor && out->seq != ZCOPY_NO_SEQ) {
		fz_anchor_sent(_metadata, f, "FORWARD", out->seq, out->stream_offset,
			       out->bytes, out->cookie);
		f->fwd_logged++;
		f->fwd_logged_bytes += out->bytes;
	}
}

/* The descriptors of a receive that returned @bytes, as far as we know. */
static void fz_check_descs(struct __test_metadata *_metadata, struct fz *f,
			   const struct zcopy_recv *in, const struct zcopy_recv *out, int slot)
{
	const struct zcopy_rx_desc *d = (const void *)(f->good + FZ_DESCS);
	uint64_t sum = 0, area;
	unsigned int i, kind;

	if (out->desc_count > in->desc_count || (in->max_bytes && out->bytes > in->max_bytes)) {
		fz_fail(_metadata, f, in, "RECV: %u descriptors (of %u), %llu bytes (max %llu)",
			out->desc_count, in->desc_count, ZC_U64(out->bytes),
			ZC_U64(in->max_bytes));
		return;
	}
	if (in->desc != fz_ptr(d))
		return;
	pthread_mutex_lock(&f->lock);
	area = !slot ? f->anchor_area : ~0ULL;
	pthread_mutex_unlock(&f->lock);
	for (i = 0; i < out->desc_count; i++) {
		kind = d[i].flags & (ZCOPY_RX_MAPPED | ZCOPY_RX_COPIED);
		if (d[i].offset % f->ps || d[i].offset >= area || d[i].len > f->ps ||
		    (kind != ZCOPY_RX_MAPPED && kind != ZCOPY_RX_COPIED) ||
		    (d[i].flags & ~(ZCOPY_RX_MAPPED | ZCOPY_RX_COPIED | ZCOPY_RX_EOR)) ||
		    (kind == ZCOPY_RX_MAPPED && d[i].len != f->ps)) {
			fz_fail(_metadata, f, in, "RECV: desc %u/%u: offset %#llx len %u flags %#x (area %#llx)",
				i, out->desc_count, ZC_U64(d[i].offset), d[i].len, d[i].flags,
				ZC_U64(area));
			return;
		}
		sum += d[i].len;
		fz_rxoff_add(f, slot, d[i].offset);
	}
	if (sum != out->bytes)
		fz_fail(_metadata, f, in, "RECV: descriptors hold %llu bytes, it says %llu",
			ZC_U64(sum), ZC_U64(out->bytes));
}

static void fz_recv(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	struct zcopy_rx_desc *desc = (struct zcopy_rx_desc *)(f->good + FZ_DESCS);
	struct zcopy_recv in, *out;
	int slot = -1, fd, ret, i;
	bool anchor, rb;
	uint64_t where;

	/* Sane: on an fd whose receive area is mapped. */
	if (f->sane) {
		pthread_mutex_lock(&f->lock);
		i = fz_pick_map(f, rng, FZ_MAP_RECV);
		if (i >= 0)
			slot = f->map[i].slot;
		pthread_mutex_unlock(&f->lock);
	}
	fd = fz_target(f, rng, false, slot, &anchor, &slot);

	zc_fill(&in, ZC_SEED(zc_rand(rng)), sizeof(in));
	in.sockfd = fz_sockfd(f, rng, true);
	in.flags = fz_pct(rng, 80) ? ZCOPY_RECV_DONTWAIT : 0;
	if (fz_odd(f, rng, 3))
		in.flags |= 1U << fz_below(rng, 32);
	in.__pad = fz_reserved(f, rng);
	memset(in.reserved, 0, sizeof(in.reserved));
	in.reserved[fz_below(rng, 4)] = fz_reserved(f, rng);
	in.desc_count = fz_odd(f, rng, 10) ? fz_val(rng, 0, ZCOPY_MAX_RX_DESC + 1)
					   : zc_rand_range(rng, 1, 64);
	in.desc = fz_odd(f, rng, 15) ? fz_addr(f, rng, 16ULL * in.desc_count) : fz_ptr(desc);
	/* A blocking receive waits a few ms at most (0: SO_RCVTIMEO, 2 ms). */
	in.timeout_ms = fz_pct(rng, 20) ? 0 : zc_rand_range(rng, 1, 3);
	if (in.flags & ZCOPY_RECV_DONTWAIT && fz_pct(rng, 20))
		in.timeout_ms = fz_val(rng, 0, ~0U);
	in.max_bytes = fz_pct(rng, 70) ? 0 : fz_val(rng, 1, 1 << 20);
	in.release_count = 0;
	if (fz_pct(rng, 30)) {
		in.release_count = fz_odd(f, rng, 10) ? fz_val(rng, 0, ZCOPY_MAX_RX_DESC + 1)
						      : zc_rand_range(rng, 1, 16);
		in.release = fz_offsets(f, rng, in.release_count, slot);
	}
	where = fz_place(f, rng, &in, sizeof(in), true, &rb);
	ret = ioctl(fd, ZCOPY_IOC_RECV, (uintptr_t)where);
	if (!fz_answer(_metadata, f, FZ_RECV, anchor, ZCOPY_IOC_RECV, ret, errno, &in) ||
	    ret || !rb)
		return;
	out = (struct zcopy_recv *)(uintptr_t)where;
	fz_check_descs(_metadata, f, &in, out, slot);
}

static void fz_release(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	struct zcopy_release in;
	int slot = -1, fd, ret;
	bool anchor, rb;
	uint64_t where;

	/* Sane: slots given out on one fd, to that fd. */
	pthread_mutex_lock(&f->lock);
	if (f->sane && f->nrxoff)
		slot = f->rxoff[fz_below(rng, f->nrxoff)].slot;
	pthread_mutex_unlock(&f->lock);
	fd = fz_target(f, rng, false, slot, &anchor, &slot);
	zc_fill(&in, ZC_SEED(zc_rand(rng)), sizeof(in));
	in.count = fz_odd(f, rng, 10) ? fz_val(rng, 0, ZCOPY_MAX_RX_DESC + 1)
				      : zc_rand_range(rng, 1, f->sane ? 3 : 16);
	in.offsets = fz_offsets(f, rng, in.count, slot);
	in.flags = fz_odd(f, rng, 3) ? 1U << fz_below(rng, 32) : 0;
	in.reserved[0] = fz_reserved(f, rng);
	in.reserved[1] = fz_reserved(f, rng);
	where = fz_place(f, rng, &in, sizeof(in), false, &rb);
	ret = ioctl(fd, ZCOPY_IOC_RELEASE, (uintptr_t)where);
	fz_answer(_metadata, f, FZ_RELEASE, anchor, ZCOPY_IOC_RELEASE, ret, errno, &in);
}

/* A number the module does not have: another number, size or direction. */
static void fz_register(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	struct zcopy_register in;
	bool anchor, rb;
	int fd = fz_target(f, rng, false, -1, &anchor, NULL), ret;
	uint64_t where;

	zc_fill(&in, ZC_SEED(zc_rand(rng)), sizeof(in));
	in.len = fz_len(f, rng);
	in.addr = fz_addr(f, rng, in.len);
	in.flags = fz_odd(f, rng, 5) ? 1U << fz_below(rng, 32) : 0;
	in.reserved[0] = fz_reserved(f, rng);
	in.reserved[1] = fz_reserved(f, rng);
	where = fz_place(f, rng, &in, sizeof(in), false, &rb);
	ret = ioctl(fd, ZCOPY_IOC_REGISTER, (uintptr_t)where);
	fz_answer(_metadata, f, FZ_REGISTER, anchor, ZCOPY_IOC_REGISTER, ret, errno, &in);
}

static void fz_unregister(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	struct zcopy_unregister in = { 0 };
	bool anchor, rb;
	int fd = fz_target(f, rng, false, -1, &anchor, NULL), ret;
	uint64_t where;

	in.index = fz_pct(rng, 90) ? fz_below(rng, ZCOPY_MAX_REGISTERED + 2) : zc_rand(rng);
	in.flags = fz_odd(f, rng, 5) ? 1U << fz_below(rng, 32) : 0;
	in.reserved[fz_below(rng, 2)] = fz_reserved(f, rng);
	where = fz_place(f, rng, &in, sizeof(in), false, &rb);
	ret = ioctl(fd, ZCOPY_IOC_UNREGISTER, (uintptr_t)where);
	fz_answer(_metadata, f, FZ_UNREGISTER, anchor, ZCOPY_IOC_UNREGISTER, ret, errno, &in);
}

/*
 * A batch's arguments for the @n entries at @sends, each @size bytes,
 * placed as fz_place() places them: where.
 */
static uint64_t fz_batch_args(struct fz *f, uint64_t *rng, struct zcopy_send_batch *in,
			      void *sends, unsigned int n, size_t size, bool *rb)
{
	zc_fill(in, ZC_SEED(zc_rand(rng)), sizeof(*in));
	in->sends = fz_odd(f, rng, 8) ? fz_addr(f, rng, n * size) : fz_ptr(sends);
	in->count = fz_odd(f, rng, 5) ? fz_val(rng, 0, ZCOPY_MAX_BATCH + 1) : n;
	if (in->count > n && in->sends == fz_ptr(sends))
		in->count = n;
	in->flags = fz_odd(f, rng, 5) ? 1U << fz_below(rng, 32) : 0;
	in->__pad = fz_reserved(f, rng);
	in->reserved[0] = fz_reserved(f, rng);
	in->reserved[1] = 0;
	return fz_place(f, rng, in, sizeof(*in), false, rb);
}

/*
 * A batch of up to 4 sends, made as fz_send() makes one, on a zcopy fd that
 * is not the anchor (whose records are accounted for one by one).
 */
static void fz_send_batch(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	struct zcopy_iovec *iov = (struct zcopy_iovec *)(f->good + FZ_IOVS);
	struct zcopy_send s[4];
	struct zcopy_send_batch in;
	unsigned int i, n = zc_rand_range(rng, 1, 4);
	bool anchor, rb;
	int fd = fz_target(f, rng, true, 1 + fz_below(rng, FZ_ZFDS - 1), &anchor, NULL), ret;
	uint64_t where;

	for (i = 0; i < n; i++) {
		iov[i].len = fz_len(f, rng);
		iov[i].base = fz_addr(f, rng, iov[i].len);
		memset(&s[i], 0, sizeof(s[i]));
		s[i].sockfd = fz_sockfd(f, rng, false);
		s[i].flags = fz_pct(rng, 80) ? ZCOPY_SEND_DONTWAIT : 0;
		s[i].iov = fz_ptr(&iov[i]);
		s[i].iov_count = 1;
		s[i].reserved[0] = fz_reserved(f, rng);
	}
	where = fz_batch_args(f, rng, &in, s, n, sizeof(s[0]), &rb);
	ret = ioctl(fd, ZCOPY_IOC_SEND_BATCH, (uintptr_t)where);
	fz_answer(_metadata, f, FZ_SEND_BATCH, anchor, ZCOPY_IOC_SEND_BATCH, ret, errno, &in);
}

/*
 * A batch of up to 4 pool sends, made as fz_pool_send() makes one, on a
 * zcopy fd that is not the anchor: mostly one that mapped a pool.
 */
static void fz_pool_send_batch(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	unsigned int i, n = zc_rand_range(rng, 1, 4);
	struct zcopy_pool_send s[4];
	struct zcopy_send_batch in;
	uint64_t where, map = 0;
	int slot = -1, fd, ret, m;
	size_t map_len = 0;
	bool anchor, rb;

	if (f->sane) {
		pthread_mutex_lock(&f->lock);
		m = fz_pick_map(f, rng, FZ_MAP_POOL);
		if (m >= 0 && f->map[m].slot > 0) {
			slot = f->map[m].slot;
			map = fz_ptr(f->map[m].addr);
			map_len = f->map[m].len;
		}
		pthread_mutex_unlock(&f->lock);
	}
	if (slot < 0)
		slot = 1 + fz_below(rng, FZ_ZFDS - 1);
	fd = fz_target(f, rng, true, slot, &anchor, NULL);
	for (i = 0; i < n; i++)
		fz_pool_send_args(f, rng, map, map_len, &s[i]);
	where = fz_batch_args(f, rng, &in, s, n, sizeof(s[0]), &rb);
	ret = ioctl(fd, ZCOPY_IOC_POOL_SEND_BATCH, (uintptr_t)where);
	fz_answer(_metadata, f, FZ_POOL_SEND_BATCH, anchor, ZCOPY_IOC_POOL_SEND_BATCH, ret,
		  errno, &in);
}

static unsigned long fz_unknown_nr(uint64_t *rng)
{
	unsigned long nr;
	unsigned int i;

	for (;;) {
		unsigned int dir = fz_below(rng, 4), num, size;

		num = fz_pct(rng, 60) ? fz_below(rng, 8) : fz_below(rng, 256);
		size = fz_pct(rng, 50) ? sizeof(struct zcopy_send) + fz_below(rng, 17) - 8
				       : fz_below(rng, 1 << 14);
		nr = _IOC(dir, ZCOPY_IOC_MAGIC, num, size);
		for (i = 0; i < FZ_UNKNOWN; i++)
			if (nr == fz_nr[i])
				break;
		if (i == FZ_UNKNOWN)
			return nr;
	}
}

static void fz_unknown(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	unsigned long nr = fz_unknown_nr(rng);
	uint8_t in[64];
	bool anchor, rb;
	int fd = fz_target(f, rng, false, -1, &anchor, NULL), ret;
	uint64_t where;

	zc_fill(in, ZC_SEED(zc_rand(rng)), sizeof(in));
	where = fz_place(f, rng, in, sizeof(in), false, &rb);
	ret = ioctl(fd, nr, (uintptr_t)where);
	fz_answer(_metadata, f, FZ_UNKNOWN, anchor, nr, ret, errno, NULL);
}

/*
 * Read completion records. The anchor's are read only where they can be
 * seen (the good buffer, or up to its guard page) or nowhere (EFAULT
 * leaves them queued): each must be valid and go into its log.
 */
static void fz_read(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	struct zcopy_completion *c;
	struct pollfd p = { 0, POLLIN, 0 };
	bool anchor = !f->child && fz_pct(rng, 70);
	size_t count = fz_pct(rng, 90) ? zc_rand_range(rng, 1, 64) * sizeof(*c)
				       : fz_val(rng, 0, FZ_SCRATCH_LEN);
	uint64_t buf;
	ssize_t n;
	unsigned int r = fz_below(rng, 100), i;

	/* The others are O_NONBLOCK; the anchor's records are its log's alone. */
	p.fd = f->zfd[anchor ? 0 : zc_rand_range(rng, 1, FZ_ZFDS - 1)];
	if (count > FZ_SCRATCH_LEN)
		count = FZ_SCRATCH_LEN;
	if (r < 80)
		buf = fz_ptr(f->good) + FZ_SCRATCH;
	else if (r < 90)
		buf = fz_ptr(f->good) + FZ_GOOD - fz_below(rng, count + 1);
	else
		buf = fz_addr_of(f, rng, FZ_MEM_RO + fz_below(rng, 2), count);
	/* The anchor blocks: read it only with records waiting. */
	if (anchor && poll(&p, 1, 0) != 1)
		return;
	n = read(p.fd, (void *)(uintptr_t)buf, count);
	if (!anchor)
		return;
	if (n < 0) {
		fz_answer(_metadata, f, FZ_READ, true, 0, -1, errno, NULL);
		return;
	}
	f->calls[FZ_READ]++;
	f->ok[FZ_READ]++;
	if (!n || n % sizeof(*c) || (size_t)n > count) {
		fz_fail(_metadata, f, NULL, "read of %zu bytes of records returned %zd", count, n);
		return;
	}
	c = (struct zcopy_completion *)(uintptr_t)buf;
	for (i = 0; i < n / sizeof(*c); i++) {
		const char *bad = zc_rec_invalid(&c[i]);

		if (bad)
			fz_fail(_metadata, f, &c[i], "record seq %llu: %s", ZC_U64(c[i].seq), bad);
		if (f->log.nrec < f->log.rec_cap)
			zc_log_add_rec(&f->log, &c[i]);
	}
}

/* Bytes that wait in a socket: read, so that sends keep going. */
static void fz_drain(struct fz *f, uint64_t *rng)
{
	int fd = fz_sockfd(f, rng, true);

	recv(fd, f->good + FZ_SCRATCH, FZ_SCRATCH_LEN, MSG_DONTWAIT);
}

/* Write to pool pages, maybe in flight, through the kernel: they may go. */
static void fz_write_pool(struct fz *f, uint64_t *rng)
{
	uint64_t a = fz_map_addr(f, rng, FZ_MAP_POOL);
	size_t len = zc_rand_range(rng, 1, 3 * f->ps);

	fz_poke(f, a, f->good + FZ_DATA, len);
}

static void fz_iteration(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng);

/*
 * A child with copies of the fds and of the memory, but for the pool and
 * the receive area (not inherited): a few calls of its own, then gone,
 * its sends maybe still in flight.
 */
static void fz_fork(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	uint64_t crng = zc_rand(rng);
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	/* The child's copy of the lock must not be held by a thread it lacks. */
	pthread_mutex_lock(&f->lock);
	pid = fork();
	if (!pid) {
		unsigned int i, fails = f->fails;

		pthread_mutex_init(&f->lock, NULL);
		f->child = true;
		f->stage += 4096;
		for (i = 0; i < FZ_CHILD_ITERS; i++)
			fz_iteration(_metadata, f, &crng);
		_exit(f->fails != fails);
	}
	pthread_mutex_unlock(&f->lock);
	if (pid < 0) {
		fz_fail(_metadata, f, NULL, "fork: %s", strerror(errno));
		return;
	}
	f->forks++;
	status = zc_wait_child(pid, 20000);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status))
		fz_fail(_metadata, f, NULL, "forked child: status %#x", status);
}

static const char *fz_doing(unsigned int r)
{
	static const struct {
		unsigned int below;
		const char *what;
	} steps[] = {
		{ 150, "SEND" }, { 300, "POOL_SEND" }, { 450, "RECV" }, { 490, "FORWARD" },
		{ 580, "RELEASE" },
		{ 630, "STATS" }, { 645, "INFO" }, { 655, "REGISTER" }, { 665, "UNREGISTER" },
		{ 670, "SEND_BATCH" },
		{ 675, "POOL_SEND_BATCH" },
		{ 740, "an unknown number" },
		{ 820, "read of records" }, { 880, "draining a socket" },
		{ 925, "a memory move" }, { 955, "an fd move" }, { 997, "a pool write" },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(steps); i++)
		if (r < steps[i].below)
			return steps[i].what;
	return "a fork";
}

static void fz_iteration(struct __test_metadata *_metadata, struct fz *f, uint64_t *rng)
{
	unsigned int r = fz_below(rng, 1000);

	__atomic_store_n(&fz_sig_iter, f->iter, __ATOMIC_RELAXED);
	__atomic_store_n(&f->doing, fz_doing(r), __ATOMIC_RELAXED);
	f->sane = fz_pct(rng, 50);
	if (r < 150)
		fz_send(_metadata, f, rng);
	else if (r < 300)
		fz_pool_send(_metadata, f, rng);
	else if (r < 450)
		fz_recv(_metadata, f, rng);
	else if (r < 490)
		fz_forward(_metadata, f, rng);
	else if (r < 580)
		fz_release(_metadata, f, rng);
	else if (r < 630)
		fz_stats(_metadata, f, rng);
	else if (r < 645)
		fz_info(_metadata, f, rng);
	else if (r < 655)
		fz_register(_metadata, f, rng);
	else if (r < 665)
		fz_unregister(_metadata, f, rng);
	else if (r < 670)
		fz_send_batch(_metadata, f, rng);
	else if (r < 675)
		fz_pool_send_batch(_metadata, f, rng);
	else if (r < 740)
		fz_unknown(_metadata, f, rng);
	else if (r < 820)
		fz_read(_metadata, f, rng);
	else if (r < 880)
		fz_drain(f, rng);
	else if (r < 925)
		fz_mem_move(f, rng);
	else if (r < 955)
		fz_fd_move(f, rng);
	else if (r < 997 || f->child)
		fz_write_pool(f, rng);
	else
		fz_fork(_metadata, f, rng);
	f->iter++;
}

/* ---- setup and teardown ---- */

/* For the signal handler, which has no stdio: append @str, or @x in @base. */
static char *fz_put(char *p, const char *str)
{
	while (*str)
		*p++ = *str++;
	return p;
}

static char *fz_put_num(char *p, uint64_t x, unsigned int base)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[x % base];
		x /= base;
	} while (x);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* A signal is a failure: say when it came, then take it. */
static void fz_fatal(int sig)
{
	char msg[128], *p = msg;

	p = fz_put(p, "# fuzz: signal ");
	p = fz_put_num(p, sig, 10);
	p = fz_put(p, " at iteration ");
	p = fz_put_num(p, __atomic_load_n(&fz_sig_iter, __ATOMIC_RELAXED), 10);
	p = fz_put(p, ", ZCOPY_FUZZ_SEED=0x");
	p = fz_put_num(p, __atomic_load_n(&fz_sig_seed, __ATOMIC_RELAXED), 16);
	*p++ = '\n';
	if (write(2, msg, p - msg) < 0)
		_exit(127);
	signal(sig, SIG_DFL);
	raise(sig);
}

FIXTURE(fuzz)
{
	struct fz *f;
};

FIXTURE_SETUP(fuzz)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGPIPE, SIGSYS };
	uint64_t iters = fz_iters(), rng;
	struct fz *f;
	unsigned int i;
	uint8_t *p;

	f = calloc(1, sizeof(*f));
	ASSERT_NE(NULL, f);
	self->f = f;
	pthread_mutex_init(&f->lock, NULL);
	f->ps = zc_page_size();
	f->memfd = -1;
	/* Sends of every length: some copied for being short, most pinned. */
	if (zc_param_read("copy_below", &f->saved_copy_below))
		f->saved_copy_below = -1;
	else
		zc_param_write("copy_below", 2 * f->ps);
	for (i = 0; i < FZ_ZFDS; i++)
		f->zfd[i] = -1;
	for (i = 0; i < FZ_SOCKS; i++)
		f->sock[i] = (struct fz_sock){ 0, -1, -1 };

	f->zfd[0] = zc_open();
	if (f->zfd[0] < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, f->zfd[0]) TH_LOG("open " ZCOPY_DEVICE ": %s", strerror(errno));
	if ((zc_features(f->zfd[0]) & 0xf) != 0xf)
		SKIP(return, "the module lacks a feature: SEND, STATS, POOL or RECV");

	f->seed = fz_env("ZCOPY_FUZZ_SEED", 0);
	if (!getenv("ZCOPY_FUZZ_SEED")) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		f->seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ ts.tv_nsec ^ (uint64_t)getpid() << 32;
	}
	f->chaos = fz_env("ZCOPY_FUZZ_CHAOS", 1);
	__atomic_store_n(&fz_sig_seed, f->seed, __ATOMIC_RELAXED);
	rng = f->seed ^ 0x7365747570ULL;
	TH_LOG("seed %#llx: ZCOPY_FUZZ_SEED=%#llx repeats it; %llu iterations, %s", ZC_U64(f->seed),
	       ZC_U64(f->seed), ZC_U64(iters),
	       f->chaos ? "with the mapper and closer threads" : "single-threaded");

	for (i = 0; i < ARRAY_SIZE(fatal); i++)
		signal(fatal[i], fz_fatal);

	/* Room for every send's log entry, now: no allocation in the loop. */
	f->log.sent_cap = iters + FZ_CHILD_ITERS + 1;
	f->log.rec_cap = f->log.sent_cap;
	f->log.sent = calloc(f->log.sent_cap, sizeof(*f->log.sent));
	f->log.rec = calloc(f->log.rec_cap, sizeof(*f->log.rec));
	ASSERT_TRUE(f->log.sent && f->log.rec);

	f->good = zc_map(FZ_GOOD);
	ASSERT_NE(NULL, f->good);
	zc_fill(f->good + FZ_DATA, ZC_SEED(f->seed), FZ_GOOD - FZ_DATA);
	p = mmap(NULL, 2 * f->ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	f->ro = p;
	f->none = p + f->ps;
	ASSERT_EQ(0, mprotect(f->none, f->ps, PROT_NONE));
	p = mmap(NULL, 2 * FZ_THP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	f->thp_map = p;
	f->thp = (uint8_t *)(((uintptr_t)p + FZ_THP - 1) & ~(uintptr_t)(FZ_THP - 1));
	madvise(f->thp, FZ_THP, MADV_HUGEPAGE);
	memset(f->thp, 0x77, FZ_THP);
	f->memfd = memfd_create("fuzz", MFD_CLOEXEC);
	ASSERT_LE(0, f->memfd);
	ASSERT_EQ(0, ftruncate(f->memfd, FZ_MEMFD_LEN));
	f->stage = FZ_STAGE;
	p = mmap(NULL, FZ_MEMFD_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	f->shm = p;
	memset(f->shm, 0x33, FZ_STAGE);
	f->vol = zc_map(FZ_VOL * FZ_VOL_PAGES * f->ps);
	ASSERT_NE(NULL, f->vol);

	for (i = 1; i < FZ_ZFDS; i++)
		f->zfd[i] = open(ZCOPY_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	/* One of each kind to begin with: connected TCP and UDP first. */
	for (i = 0; i < FZ_SOCKS; i++)
		fz_sock_make(&f->sock[i], i < FZ_NR_KINDS ? i : (int)(i % 4));
	/* A pool and a receive area for each zcopy fd to begin with. */
	for (i = 0; i < 2 * FZ_ZFDS; i++)
		fz_map_new(f, &rng, i & 1 ? FZ_MAP_RECV : FZ_MAP_POOL, i / 2);
}

static void fz_stop(struct fz *f)
{
	__atomic_store_n(&f->stop, 1, __ATOMIC_RELAXED);
	if (f->threads) {
		pthread_join(f->mapper, NULL);
		pthread_join(f->closer, NULL);
		f->threads = false;
	}
	if (f->watching) {
		pthread_join(f->watchdog, NULL);
		f->watching = false;
	}
}

/* Every socket, TCP with a reset: what they hold is freed now. */
static void fz_close_socks(struct fz *f)
{
	unsigned int i;

	for (i = 0; i < FZ_SOCKS; i++)
		fz_sock_close(&f->sock[i], true);
}

static void fz_close_all(struct fz *f)
{
	unsigned int i;

	fz_stop(f);
	fz_close_socks(f);
	for (i = 0; i < FZ_MAPS; i++)
		if (f->map[i].kind)
			munmap(f->map[i].addr, f->map[i].len);
	memset(f->map, 0, sizeof(f->map));
	for (i = 0; i < FZ_ZFDS; i++) {
		if (f->zfd[i] >= 0)
			close(f->zfd[i]);
		f->zfd[i] = -1;
	}
}

FIXTURE_TEARDOWN(fuzz)
{
	struct fz *f = self->f;

	if (!f)
		return;
	fz_close_all(f);
	if (f->good)
		zc_unmap(f->good, FZ_GOOD);
	if (f->vol)
		zc_unmap(f->vol, FZ_VOL * FZ_VOL_PAGES * f->ps);
	if (f->shm)
		munmap(f->shm, FZ_MEMFD_LEN);
	if (f->thp_map)
		munmap(f->thp_map, 2 * FZ_THP);
	if (f->ro)
		munmap(f->ro, 2 * f->ps);
	if (f->memfd >= 0)
		close(f->memfd);
	if (f->saved_copy_below >= 0)
		zc_param_write("copy_below", f->saved_copy_below);
	zc_log_free(&f->log);
	free(f);
}

/*
 * When something stays in flight: the sockets that still hold bytes (any
 * left in a queue, or orphaned), and how many of each kind, for the log.
 */
static void fz_dump_net(void)
{
	static const char *const files[] = {
		"/proc/net/sockstat", "/proc/net/sockstat6", "/proc/net/tcp", "/proc/net/tcp6",
		"/proc/net/udp", "/proc/net/udp6",
	};
	char line[256];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(files); i++) {
		bool sockets = strstr(files[i], "sockstat") == NULL;
		FILE *fp = fopen(files[i], "r");

		if (!fp)
			continue;
		fprintf(stderr, "# %s:\n", files[i]);
		while (fgets(line, sizeof(line), fp)) {
			char st[8] = "", txq[24] = "";

			/* "sl local remote st tx_queue:rx_queue ...": skip idle ones. */
			if (sockets && (sscanf(line, "%*s %*s %*s %7s %23s", st, txq) != 2 ||
					!strcmp(txq, "00000000:00000000")))
				continue;
			fprintf(stderr, "#   %s", line);
		}
		fclose(fp);
	}
}

/* The errnos a command answered most, for the log. */
static void fz_top_errnos(const uint32_t *errs, char *buf, size_t len)
{
	uint32_t seen[FZ_ERRNOS];
	size_t n = 0;
	int k, e, best;

	memcpy(seen, errs, sizeof(seen));
	buf[0] = 0;
	for (k = 0; k < 5; k++) {
		for (best = 0, e = 1; e < FZ_ERRNOS; e++)
			if (seen[e] > seen[best])
				best = e;
		if (!seen[best])
			break;
		n += snprintf(buf + n, len - n, "%s %s %u", k ? "," : ";",
			      strerrorname_np(best) ?: "?", seen[best]);
		seen[best] = 0;
		if (n >= len)
			break;
	}
}

/*
 * The module once everything is closed: nothing pinned, in flight, queued
 * or mapped. Completions run from a workqueue: wait for them a while.
 */
static void fz_module_idle(struct __test_metadata *_metadata)
{
	struct zcopy_stats st;
	int fd = zc_open();

	ASSERT_LE(0, fd);
	zc_expect_module_idle(_metadata, fd, 10000, &st);
	close(fd);
	if (st.sends_in_flight || st.pool_pages_in_flight)
		fz_dump_net();
}

/*
 * Random calls, with their memory and fds changing under them: each answer
 * one its command may give, the anchor's records exact, nothing left over.
 */
TEST_F_TIMEOUT(fuzz, random_calls, 120)
{
	struct sigaction sa = { .sa_handler = fz_kick };
	struct fz *f = self->f;
	uint64_t iters = fz_iters(), rng = f->seed, i;
	struct zcopy_stats st;
	int64_t t0 = zc_now_ms();
	char msg[512];
	int ret;

	/* No SA_RESTART: the call returns EINTR. */
	sigaction(SIGUSR1, &sa, NULL);
	f->tid = gettid();
	f->main = pthread_self();
	f->watching = !pthread_create(&f->watchdog, NULL, fz_watchdog, f);
	if (f->chaos) {
		ASSERT_EQ(0, pthread_create(&f->mapper, NULL, fz_mapper, f));
		ret = pthread_create(&f->closer, NULL, fz_closer, f);
		if (ret)
			fz_stop(f);
		ASSERT_EQ(0, ret);
		f->threads = true;
	}
	for (i = 0; i < iters && f->fails <= FZ_MAX_FAILS; i++) {
		fz_iteration(_metadata, f, &rng);
		/* A soak says how far it got. */
		if (iters > FZ_ITERS_DEFAULT && !((i + 1) % (iters / 10)))
			TH_LOG("%llu iterations, %lld ms", ZC_U64(i + 1),
			       (long long)(zc_now_ms() - t0));
	}
	fz_stop(f);
	TH_LOG("%llu iterations in %lld ms, %llu forks, %llu memory and %llu fd moves",
	       ZC_U64(f->iter), (long long)(zc_now_ms() - t0), ZC_U64(f->forks),
	       ZC_U64(f->mem_ops), ZC_U64(f->fd_ops));
	for (i = 0; i < FZ_NR_CMDS; i++) {
		char top[160];

		fz_top_errnos(f->errs[i], top, sizeof(top));
		TH_LOG("  %-9s %6llu calls, %6llu succeeded%s", fz_cmd_name[i],
		       ZC_U64(f->calls[i]), ZC_U64(f->ok[i]), top);
	}
	ASSERT_EQ(0, f->fails) TH_LOG("%u calls answered wrongly", f->fails);

	/*
	 * Every send of the anchor's with a record gets one, exactly: reset the
	 * sockets so that what they hold completes, then read the records.
	 */
	fz_close_socks(f);
	ret = zc_collect(f->zfd[0], &f->log, 10000);
	if (ret)
		fz_dump_net();
	ASSERT_EQ(0, ret) TH_LOG("the anchor's records cover %llu of its %zu sends: %s",
				 ZC_U64(f->log.covered), f->log.nsent, strerror(-ret));
	ret = zc_check_records(&f->log, msg, sizeof(msg));
	ASSERT_EQ(0, ret) TH_LOG("the anchor's records: %s", msg);
	/* What the anchor registered stays pinned until unregistered. */
	for (i = 0; i < ZCOPY_MAX_REGISTERED; i++)
		zc_unregister(f->zfd[0], i);
	ret = zc_wait_idle(f->zfd[0], 0, 5000, &st);
	EXPECT_EQ(0, ret) TH_LOG("anchor: %llu sends in flight, %llu pages pinned",
				 ZC_U64(st.sends_in_flight), ZC_U64(st.pages_pinned));
	EXPECT_EQ(f->log.nsent - f->fwd_logged, st.sends)
		TH_LOG("the anchor's ledger counts its sends");
	EXPECT_EQ(f->log.bytes - f->fwd_logged_bytes, st.send_bytes);
	EXPECT_LE(f->fwd_logged, st.fwd_sends);
	EXPECT_EQ(st.sends, st.send_completions);
	EXPECT_EQ(0, st.records_queued);
	TH_LOG("anchor: %zu sends with a record, %llu bytes, %zu records", f->log.nsent,
	       ZC_U64(f->log.bytes), f->log.nrec);

	fz_close_all(f);
	fz_module_idle(_metadata);
}

/*
 * The harness's time limit for random_calls, as long as ZCOPY_FUZZ_ITERS
 * needs, with room to spare: 20 ms an iteration, where the stock kernels
 * take under 1 ms and the debug kernel (KASAN, lockdep, kmemleak) 5.7 ms
 * (100,000 in 568 s, make check-debug on 2026-12-02). Set once the harness has registered the test (in a constructor
 * of its own, which runs before this one).
 */
static void __attribute__((constructor(KSELFTEST_PRIO_TEST + 1))) fz_set_timeout(void)
{
	uint64_t secs = 60 + fz_iters() / 50;

	_fuzz_random_calls_object->timeout = secs < 120 ? 120 : secs > 86400 ? 86400 : secs;
}

/* ---- every number the module does not have ---- */

/*
 * The magic with every other number, and the module's numbers (0 to
 * FZ_NUMBERS - 1) with every other size and direction: ENOTTY, whatever
 * the argument.
 */
#define FZ_NUMBERS	(_IOC_NR(ZCOPY_IOC_POOL_SEND_BATCH) + 1)

TEST(unknown_numbers_enotty)
{
	uint8_t *buf = zc_map(1 << 14);
	unsigned int dir, num, size, bad = 0, n = 0;
	int fd = zc_open();

	if (fd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, buf);
	for (dir = 0; dir < 4; dir++) {
		for (num = 0; num < 256; num++) {
			for (size = 0; size < (1 << 14); size += num < FZ_NUMBERS ? 1 : 1021) {
				unsigned long nr = _IOC(dir, ZCOPY_IOC_MAGIC, num, size);
				unsigned int i;
				int ret;

				for (i = 0; i < FZ_UNKNOWN && nr != fz_nr[i]; i++)
					;
				if (i < FZ_UNKNOWN || nr == FZ_IOC_STATS_ABI1 ||
				    (num < FZ_NUMBERS && size > 512 && size % 61))
					continue;
				ret = ioctl(fd, nr, buf);
				n++;
				if (ret != -1 || errno != ENOTTY) {
					if (bad++ < 10)
						TH_LOG("%#lx: returned %d, errno %d", nr, ret,
						       ret ? errno : 0);
				}
			}
		}
	}
	TH_LOG("%u numbers tried", n);
	EXPECT_EQ(0, bad);
	close(fd);
	zc_unmap(buf, 1 << 14);
}

TEST_HARNESS_MAIN
