// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend: stream bytes to a receiver over TCP or UDP by one of several send
 * methods, plain or zero-copy, and say what it cost.
 *
 *   zcsend --connect HOST:PORT [--udp] [--method M]
 *          [--pattern | --stamp | --file PATH | -] [--bytes N] [--msg-size N]
 *          [--ring N] [--notify] [--batch N] [--checksum] [--json]
 *
 * The methods: write, mmap (+ write), sendfile, splice (from the file, or
 * vmsplice of fresh pages), msg_zerocopy (MSG_ZEROCOPY with notifications
 * from the error queue), zcopy (ZCOPY_IOC_SEND from a ring of buffers,
 * each reused once a completion record covers it), zcopy-fixed (the same
 * ring registered once, ZCOPY_SEND_FIXED: nothing pinned per send) and
 * zcopy-pool (ZCOPY_IOC_POOL_SEND from the copy-on-write pool; with
 * --notify, a record per send and only completed buffers reused).
 *
 * A TCP stream ends with a shutdown; the sender then waits for the receiver
 * to close, so the time covers delivery. A UDP stream ends with zero-length
 * datagrams, which zcrecv takes as the end.
 */
#include <getopt.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <linux/errqueue.h>

#include "zccommon.h"

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY		5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED	1
#endif

enum method { M_WRITE, M_MMAP, M_SENDFILE, M_SPLICE, M_MSG_ZEROCOPY, M_ZCOPY, M_FIXED, M_POOL };

static const char * const method_names[] = {
	[M_WRITE] = "write",
	[M_MMAP] = "mmap",
	[M_SENDFILE] = "sendfile",
	[M_SPLICE] = "splice",
	[M_MSG_ZEROCOPY] = "msg_zerocopy",
	[M_ZCOPY] = "zcopy",
	[M_FIXED] = "zcopy-fixed",
	[M_POOL] = "zcopy-pool",
};

enum source { SRC_PATTERN, SRC_STAMP, SRC_FILE, SRC_STDIN };

/* How long to wait for completions, and for the receiver, at the end. */
#define DRAIN_TIMEOUT_MS	30000
#define CONNECT_RETRY_MS	5000
#define RING_BYTES		(4 << 20)
#define MIN_RING		4
#define MAX_RING		1024

struct opts {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int have_addr;
	int udp;
	enum method method;
	enum source src;
	const char *file;
	uint64_t bytes;
	int bytes_set;
	uint64_t msg_size;
	unsigned int ring;
	unsigned int batch;
	int notify, json, checksum;
	int corrupt;
	uint64_t corrupt_at;
};

/*
 * A buffer of the ring, and the part of the method's completion space it
 * waits for: stream bytes for zcopy, send ids for MSG_ZEROCOPY.
 */
struct slot {
	char *buf;
	uint64_t start, end, done;
};

struct sender {
	const struct opts *o;
	int sock;
	int in_fd;
	uint64_t limit;		/* bytes to send at most */
	uint64_t off;		/* stream bytes produced so far */
	uint64_t hash;
	struct zc_progress progress;
	/* the ring, for msg_zerocopy, zcopy, zcopy-fixed and zcopy-pool */
	struct slot *slots;
	unsigned int nslots;
	size_t slot_size;
	uint64_t expected, completed;	/* completion space sent, and covered */
	int zfd;
	uint32_t fixed;			/* zcopy-fixed: the ring's buffer index */
	/* --batch: sends waiting for one ZCOPY_IOC_SEND_BATCH (or POOL_SEND_BATCH) */
	struct zcopy_send *batch;
	struct zcopy_pool_send *pool_batch;
	struct zcopy_iovec *batch_iov;
	struct slot **batch_slot;
	unsigned int nbatch, batch_max;
	uint64_t next_id;		/* MSG_ZEROCOPY: the next send's id */
	/* what the report says besides the common part */
	uint64_t send_calls, completions, completions_copied;
	/* a record missing or failed, or a receiver that did not close */
	unsigned int problems;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: zcsend --connect HOST:PORT [options] [--pattern | --stamp | --file PATH | -]\n"
		"Stream data to HOST:PORT (numeric; IPv6 as [ADDR]:PORT) and report the cost.\n"
		"\n"
		"  -c, --connect HOST:PORT  where to send (TCP connects retry for 5 s)\n"
		"  -u, --udp                UDP datagrams of --msg-size, ended by empty ones\n"
		"  -m, --method M           write (default), mmap, sendfile, splice,\n"
		"                           msg_zerocopy, zcopy, zcopy-fixed, zcopy-pool\n"
		"                           (mmap and sendfile need --file; sendfile and\n"
		"                           splice are TCP only; zcopy* need /dev/zcopy)\n"
		"  -p, --pattern            send the test pattern (default): byte N of the\n"
		"                           stream is a function of N, for zcrecv --verify\n"
		"  -S, --stamp              rewrite only the first 8 bytes of each page of a\n"
		"                           buffer (its stream offset) before sending it: an\n"
		"                           application's rewrite at no cost of making data,\n"
		"                           for measuring the transfer alone\n"
		"  -f, --file PATH          send a file; PATH - (or a lone -) is stdin\n"
		"  -b, --bytes N            bytes to send (pattern, stamp: default 1G; file,\n"
		"                           stdin: at most); N takes K, M, G, T (powers of 1024)\n"
		"  -s, --msg-size N         bytes per send call (default 64K; UDP: 1472 over\n"
		"                           IPv4, 1448 over IPv6, at most 65507/65527)\n"
		"  -r, --ring N             buffers in flight for msg_zerocopy and the zcopy\n"
		"                           methods (default: 4M worth, 4 to 1024)\n"
		"  -n, --notify             zcopy-pool: ZCOPY_POOL_SEND_NOTIFY, and rewrite\n"
		"                           only buffers whose completion record came back\n"
		"  -B, --batch N            zcopy, zcopy-fixed, zcopy-pool: N sends per batch call\n"
		"                           (1 to 1024, fewer than the ring's buffers)\n"
		"  -k, --checksum           print the FNV-1a 64 of the stream sent\n"
		"  -j, --json               one JSON object at the end, instead of text\n"
		"  -h, --help               this text\n"
		"\n"
		"JSON keys:\n" ZC_REPORT_KEYS
		"  send_calls (send calls or ioctls), completions (MSG_ZEROCOPY notifications\n"
		"  or zcopy completion records read), completions_copied (of which say the\n"
		"  stack copied)\n"
		"\n"
		"Exit status: 0 done, 1 run-time error (also: a completion record missing\n"
		"or failed, or a receiver that did not close), 2 bad arguments.\n");
}

/* ---- the source ---- */

/* read() up to @len bytes, short only at the end: the count, or -1. */
static ssize_t read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (!n)
			break;
		got += n;
	}
	return got;
}

/*
 * --stamp: the stream offset of each page's start, in its first 8 bytes (or
 * fewer, at the end): every page of @buf written, as a rewrite would, and
 * little else.
 */
static void stamp(char *buf, uint64_t off, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t i;

	for (i = 0; i < len; i += page - ((uintptr_t)(buf + i) & (page - 1))) {
		uint64_t v = off + i;

		memcpy(buf + i, &v, ZC_MIN(sizeof(v), len - i));
	}
}

/*
 * The next stream bytes, up to @len, into @buf: the count, 0 at the end.
 * The checksum covers the data as meant; --corrupt-at then spoils a byte.
 */
static size_t produce(struct sender *s, char *buf, size_t len)
{
	ssize_t n;

	len = ZC_MIN(len, s->limit - s->off);
	if (!len)
		return 0;
	if (s->o->src == SRC_PATTERN) {
		zc_fill(buf, s->off, len);
		n = len;
	} else if (s->o->src == SRC_STAMP) {
		stamp(buf, s->off, len);
		n = len;
	} else {
		n = read_full(s->in_fd, buf, len);
		if (n < 0)
			zc_fail(s->o->src == SRC_STDIN ? "stdin" : s->o->file);
	}
	if (s->o->checksum)
		s->hash = zc_fnv(s->hash, buf, n);
	if (s->o->corrupt && s->o->corrupt_at >= s->off && s->o->corrupt_at < s->off + n)
		buf[s->o->corrupt_at - s->off] ^= 0x5a;
	s->off += n;
	zc_progress(&s->progress, s->off);
	return n;
}

/* For the methods that never see the file's bytes: checksum them apart. */
static void checksum_file_range(struct sender *s, uint64_t off, size_t len)
{
	char buf[65536];

	while (len) {
		ssize_t n = pread(s->in_fd, buf, ZC_MIN(len, sizeof(buf)), off);

		if (n <= 0)
			zc_die(ZC_EXIT_RUNTIME, "%s: read for the checksum failed", s->o->file);
		s->hash = zc_fnv(s->hash, buf, n);
		off += n;
		len -= n;
	}
}

/* ---- plain sends ---- */

/* send() all of @buf (one datagram for UDP), retrying ENOBUFS. */
static void send_full(struct sender *s, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(s->sock, buf, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EINTR || errno == ENOBUFS)) {
			if (errno == ENOBUFS)
				usleep(100);
			continue;
		}
		if (n < 0)
			zc_fail("send");
		s->send_calls++;
		buf += n;
		len -= n;
	}
}

static void method_write(struct sender *s)
{
	char *buf = malloc(s->o->msg_size);
	size_t n;

	if (!buf)
		zc_fail("malloc");
	while ((n = produce(s, buf, s->o->msg_size)))
		send_full(s, buf, n);
	free(buf);
}

/* The file's size, capped by --bytes. */
static uint64_t file_length(struct sender *s)
{
	struct stat st;

	if (fstat(s->in_fd, &st))
		zc_fail(s->o->file);
	if (!S_ISREG(st.st_mode))
		zc_die(ZC_EXIT_RUNTIME, "%s: method %s needs a regular file", s->o->file,
		       method_names[s->o->method]);
	return ZC_MIN((uint64_t)st.st_size, s->limit);
}

static void method_mmap(struct sender *s)
{
	uint64_t len = file_length(s), off;
	char *map;

	if (!len)
		return;
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, s->in_fd, 0);
	if (map == MAP_FAILED)
		zc_fail("mmap");
	for (off = 0; off < len; off += s->o->msg_size) {
		size_t n = ZC_MIN(s->o->msg_size, len - off);

		if (s->o->checksum)
			s->hash = zc_fnv(s->hash, map + off, n);
		send_full(s, map + off, n);
		s->off += n;
		zc_progress(&s->progress, s->off);
	}
	munmap(map, len);
}

static void method_sendfile(struct sender *s)
{
	uint64_t len = file_length(s);
	off_t off = 0;

	while ((uint64_t)off < len) {
		off_t was = off;
		ssize_t n = sendfile(s->sock, s->in_fd, &off, ZC_MIN(s->o->msg_size, len - off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			zc_fail("sendfile");
		if (!n)
			zc_die(ZC_EXIT_RUNTIME, "%s: shrank while being sent", s->o->file);
		s->send_calls++;
		if (s->o->checksum)
			checksum_file_range(s, was, n);
		s->off += n;
		zc_progress(&s->progress, s->off);
	}
}

/* Move @len bytes from the pipe to the socket. */
static void splice_out(struct sender *s, int pipe_r, size_t len)
{
	while (len) {
		ssize_t n = splice(pipe_r, NULL, s->sock, NULL, len, SPLICE_F_MOVE | SPLICE_F_MORE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			zc_fail("splice to the socket");
		s->send_calls++;
		len -= n;
	}
}

/* splice(): file -> pipe -> socket, a pipe-full at a time. */
static void splice_file(struct sender *s, int pfd[2], size_t cap)
{
	uint64_t len = file_length(s);
	loff_t off = 0;

	while ((uint64_t)off < len) {
		loff_t was = off;
		ssize_t n = splice(s->in_fd, &off, pfd[1], NULL,
				   ZC_MIN(cap, len - off), SPLICE_F_MOVE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			zc_fail("splice from the file");
		if (!n)
			zc_die(ZC_EXIT_RUNTIME, "%s: shrank while being sent", s->o->file);
		splice_out(s, pfd[0], n);
		if (s->o->checksum)
			checksum_file_range(s, was, n);
		s->off += n;
		zc_progress(&s->progress, s->off);
	}
}

/*
 * vmsplice(): buffer -> pipe -> socket. The pipe and then the socket keep
 * references to the buffer's pages, not copies, so a buffer is never
 * written again: each message gets fresh pages, and the old ones are
 * unmapped (they live on as long as the stack holds them).
 */
static void splice_buffers(struct sender *s, int pfd[2], size_t cap)
{
	size_t size = s->o->msg_size, n;

	for (;;) {
		char *buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		size_t done = 0;

		if (buf == MAP_FAILED)
			zc_fail("mmap");
		n = produce(s, buf, size);
		while (done < n) {
			struct iovec iov = { buf + done, ZC_MIN(n - done, cap) };
			ssize_t m = vmsplice(pfd[1], &iov, 1, 0);

			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0)
				zc_fail("vmsplice");
			splice_out(s, pfd[0], m);
			done += m;
		}
		munmap(buf, size);
		if (!n)
			break;
	}
}

static void method_splice(struct sender *s)
{
	long page = sysconf(_SC_PAGESIZE);
	int pfd[2], cap;

	if (pipe2(pfd, O_CLOEXEC))
		zc_fail("pipe");
	cap = (s->o->msg_size + page - 1) / page * page;
	cap = fcntl(pfd[1], F_SETPIPE_SZ, cap);
	if (cap < 0)
		cap = fcntl(pfd[1], F_GETPIPE_SZ);
	if (cap <= 0)
		zc_fail("F_GETPIPE_SZ");
	if (s->o->src == SRC_FILE)
		splice_file(s, pfd, cap);
	else
		splice_buffers(s, pfd, cap);
	close(pfd[0]);
	close(pfd[1]);
}

/* ---- the ring of buffers the zero-copy methods reuse ---- */

static int slot_busy(const struct slot *sl)
{
	return sl->done < sl->end - sl->start;
}

/* Completion space [@lo, @hi) came back: credit every slot it covers. */
static void ring_complete(struct sender *s, uint64_t lo, uint64_t hi)
{
	unsigned int i;

	for (i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];
		uint64_t a = lo > sl->start ? lo : sl->start;
		uint64_t b = hi < sl->end ? hi : sl->end;

		if (a < b)
			sl->done += b - a;
	}
	s->completed += hi - lo;
}

/* A slot starts waiting for [@start, @end); a later range of it extends it. */
static void slot_wait_for(struct sender *s, struct slot *sl, uint64_t start, uint64_t end)
{
	if (sl->end == sl->start || sl->done == sl->end - sl->start) {
		sl->start = start;
		sl->done = 0;
	}
	sl->end = end;
	s->expected += end - start;
}

/* Buffers for the ring: anonymous, page-aligned. */
static void ring_alloc(struct sender *s)
{
	char *mem;
	unsigned int i;

	mem = mmap(NULL, (size_t)s->nslots * s->slot_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED)
		zc_fail("mmap of the send buffers");
	for (i = 0; i < s->nslots; i++)
		s->slots[i].buf = mem + (size_t)i * s->slot_size;
}

/* ---- MSG_ZEROCOPY ---- */

/* Read the notifications queued on the socket's error queue: how many. */
static int mz_reap_queued(struct sender *s)
{
	int got = 0;

	for (;;) {
		char control[128];
		struct msghdr msg = { .msg_control = control, .msg_controllen = sizeof(control) };
		struct sock_extended_err *ee;
		struct cmsghdr *cm;
		uint64_t lo, hi;

		if (recvmsg(s->sock, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return got;
			zc_fail("recvmsg(MSG_ERRQUEUE)");
		}
		cm = CMSG_FIRSTHDR(&msg);
		if (!cm || !((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
			     (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
			zc_die(ZC_EXIT_RUNTIME, "unexpected message on the error queue");
		ee = (struct sock_extended_err *)CMSG_DATA(cm);
		if (ee->ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee->ee_errno)
			zc_die(ZC_EXIT_RUNTIME, "socket error: %s", strerror(ee->ee_errno));
		/* ids are 32 bits; ours count on: take the nearest below next_id */
		lo = s->next_id - (uint32_t)((uint32_t)s->next_id - ee->ee_info);
		hi = s->next_id - (uint32_t)((uint32_t)s->next_id - ee->ee_data);
		ring_complete(s, lo, hi + 1);
		s->completions++;
		if (ee->ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
			s->completions_copied++;
		got++;
	}
}

static void mz_reap(struct sender *s, int timeout_ms)
{
	if (timeout_ms && zc_wait_fd(s->sock, 0, timeout_ms))
		return;
	mz_reap_queued(s);
}

static void mz_send(struct sender *s, struct slot *sl, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(s->sock, sl->buf + done, len - done,
				 MSG_ZEROCOPY | MSG_NOSIGNAL);

		if (n < 0 && errno == ENOBUFS) {
			/* out of option memory for notifications: read some */
			if (!mz_reap_queued(s))
				zc_wait_fd(s->sock, 0, 10);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			zc_fail("send(MSG_ZEROCOPY)");
		s->send_calls++;
		slot_wait_for(s, sl, s->next_id, s->next_id + 1);
		s->next_id++;
		done += n;
	}
}

/* ---- zcopy: completion records ---- */

static int zc_reap_queued(struct sender *s)
{
	struct zcopy_completion recs[64];
	int got = 0;

	for (;;) {
		ssize_t n = read(s->zfd, recs, sizeof(recs));
		size_t i;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return got;
		if (n < 0)
			zc_fail("read of completion records");
		for (i = 0; i < n / sizeof(recs[0]); i++) {
			if (recs[i].status) {
				fprintf(stderr, "%s: completion record with status %d\n",
					zc_prog, recs[i].status);
				s->problems++;
			}
			ring_complete(s, recs[i].offset, recs[i].offset + recs[i].bytes);
			s->completions++;
			if (recs[i].copied)
				s->completions_copied++;
			got++;
		}
	}
}

static void zc_reap(struct sender *s, int timeout_ms)
{
	if (timeout_ms && zc_wait_fd(s->zfd, POLLIN, timeout_ms))
		return;
	zc_reap_queued(s);
}

/* A call that failed with -@err may want records read first (ENOSPC) or memory back (ENOBUFS). */
static void zc_retry(struct sender *s, int err, const char *what)
{
	errno = err;
	if (errno == EINTR)
		return;
	if ((errno == ENOSPC || errno == ENOBUFS) && s->completed < s->expected) {
		zc_reap(s, DRAIN_TIMEOUT_MS);
		return;
	}
	if (errno == ENOSPC && zc_reap_queued(s))
		return;
	zc_fail(what);
}

/*
 * Bytes [@done, @len) of @sl's buffer; zcopy: pinned per send, zcopy-fixed:
 * from the ring, registered once.
 */
static void pinned_send_from(struct sender *s, struct slot *sl, size_t done, size_t len)
{
	int fixed = s->o->method == M_FIXED;

	while (done < len) {
		struct zcopy_iovec iov = {
			.base = (uintptr_t)(sl->buf + done),
			.len = len - done,
		};
		struct zcopy_send zs;
		int ret = fixed ? zc_send_fixed(s->zfd, s->sock, s->fixed, &iov, 1, 0, 0, &zs) :
				  zc_send(s->zfd, s->sock, &iov, 1, 0, 0, &zs);

		if (ret) {
			zc_retry(s, -ret, fixed ? "ZCOPY_IOC_SEND (fixed)" : "ZCOPY_IOC_SEND");
			continue;
		}
		s->send_calls++;
		slot_wait_for(s, sl, zs.offset, zs.offset + zs.bytes);
		done += zs.bytes;
	}
}

static void pinned_send(struct sender *s, struct slot *sl, size_t len)
{
	pinned_send_from(s, sl, 0, len);
}

static uint32_t pool_send_flags(const struct sender *s)
{
	return ZCOPY_POOL_SEND_ADDR | (s->o->notify ? ZCOPY_POOL_SEND_NOTIFY : 0);
}

/* A pool send of @sl's bytes was made: wait for its record, or not. */
static void pool_sent(struct sender *s, struct slot *sl, const struct zcopy_pool_send *ps)
{
	if (ps->seq != ZCOPY_NO_SEQ && s->o->notify)
		slot_wait_for(s, sl, ps->stream_offset, ps->stream_offset + ps->bytes);
	else if (ps->seq != ZCOPY_NO_SEQ)
		s->expected += ps->bytes;	/* UDP: a record to read */
	/* UDP without --notify: the buffer is rewritten at once, keep up */
	if (!s->o->notify && s->completed < s->expected)
		zc_reap_queued(s);
}

static void pool_send_from(struct sender *s, struct slot *sl, size_t done, size_t len)
{
	while (done < len) {
		struct zcopy_pool_send ps;
		int ret = zc_pool_send(s->zfd, s->sock, (uintptr_t)(sl->buf + done), len - done,
				       pool_send_flags(s), 0, &ps);

		if (ret) {
			zc_retry(s, -ret, "ZCOPY_IOC_POOL_SEND");
			continue;
		}
		s->send_calls++;
		pool_sent(s, sl, &ps);
		done += ps.bytes;
	}
}

static void pool_send(struct sender *s, struct slot *sl, size_t len)
{
	pool_send_from(s, sl, 0, len);
}

/* A send of --batch's queue @i: its results, as one on its own. */
static void batch_sent(struct sender *s, unsigned int i, uint64_t *bytes)
{
	if (s->pool_batch) {
		const struct zcopy_pool_send *ps = &s->pool_batch[i];

		pool_sent(s, s->batch_slot[i], ps);
		*bytes = ps->bytes;
	} else {
		const struct zcopy_send *zs = &s->batch[i];

		slot_wait_for(s, s->batch_slot[i], zs->offset, zs->offset + zs->bytes);
		*bytes = zs->bytes;
	}
}

/* Bytes [@done, @len) of --batch's queue @i, on their own. */
static void batch_send_rest(struct sender *s, unsigned int i, size_t done, size_t len)
{
	if (s->pool_batch)
		pool_send_from(s, s->batch_slot[i], done, len);
	else
		pinned_send_from(s, s->batch_slot[i], done, len);
}

/*
 * --batch: the queued sends in ZCOPY_IOC_SEND_BATCH (POOL_SEND_BATCH)
 * calls. A short one is finished, and one the module refused is sent
 * again, on its own (where pinned_send_from() and pool_send_from() handle
 * what it says).
 */
static void batch_flush(struct sender *s)
{
	unsigned int first = 0, i;
	uint64_t bytes;
	int k;

	while (first < s->nbatch) {
		k = s->pool_batch ?
		    zc_pool_send_batch(s->zfd, s->pool_batch + first, s->nbatch - first) :
		    zc_send_batch(s->zfd, s->batch + first, s->nbatch - first);
		if (k < 0) {
			batch_send_rest(s, first, 0, s->batch_iov[first].len);
			first++;
			continue;
		}
		s->send_calls++;
		for (i = first; i < first + k; i++) {
			batch_sent(s, i, &bytes);
			if (bytes < s->batch_iov[i].len)
				batch_send_rest(s, i, bytes, s->batch_iov[i].len);
		}
		first += k;
	}
	s->nbatch = 0;
}

/* --batch: queue @sl's @len bytes; the batch goes when full. */
static void batch_send(struct sender *s, struct slot *sl, size_t len)
{
	unsigned int i = s->nbatch++;

	s->batch_iov[i] = (struct zcopy_iovec){ .base = (uintptr_t)sl->buf, .len = len };
	if (s->pool_batch)
		s->pool_batch[i] = (struct zcopy_pool_send){
			.sockfd = s->sock,
			.flags = pool_send_flags(s),
			.offset = (uintptr_t)sl->buf,
			.len = len,
		};
	else
		s->batch[i] = (struct zcopy_send){
			.sockfd = s->sock,
			.flags = s->o->method == M_FIXED ? ZCOPY_SEND_FIXED : 0,
			.iov = (uintptr_t)&s->batch_iov[i],
			.iov_count = 1,
			.buf_index = s->o->method == M_FIXED ? s->fixed : 0,
		};
	s->batch_slot[i] = sl;
	if (s->nbatch == s->batch_max)
		batch_flush(s);
}

/* Records are read, and waited for, only with every queued send made. */
static void batch_reap(struct sender *s, int timeout_ms)
{
	batch_flush(s);
	zc_reap(s, timeout_ms);
}

/* The pool as the ring's buffers. */
static void pool_map(struct sender *s)
{
	char *pool;
	unsigned int i;

	pool = zc_pool_map(s->zfd, (size_t)s->nslots * s->slot_size);
	if (pool == MAP_FAILED)
		zc_fail("mmap of the zcopy pool");
	for (i = 0; i < s->nslots; i++)
		s->slots[i].buf = pool + (size_t)i * s->slot_size;
}

/* Wait for @sl's records: a fatal error after DRAIN_TIMEOUT_MS without any. */
static void slot_reclaim(struct sender *s, struct slot *sl, void (*reap)(struct sender *, int))
{
	uint64_t completed = s->completed;
	double deadline = zc_now() + DRAIN_TIMEOUT_MS / 1000.0;

	while (slot_busy(sl)) {
		if (s->completed != completed) {
			completed = s->completed;
			deadline = zc_now() + DRAIN_TIMEOUT_MS / 1000.0;
		} else if (zc_now() >= deadline) {
			zc_die(ZC_EXIT_RUNTIME, "no completion record for %d s",
			       DRAIN_TIMEOUT_MS / 1000);
		}
		reap(s, 1000);
	}
}

/* The zero-copy methods: fill a free buffer, send it, wait for it to come back. */
static void method_ring(struct sender *s, void (*send_slot)(struct sender *, struct slot *,
							    size_t),
			void (*reap)(struct sender *, int))
{
	double deadline;
	unsigned int i;
	size_t n;

	for (i = 0;; i = (i + 1) % s->nslots) {
		struct slot *sl = &s->slots[i];

		/*
		 * Completions are read when a buffer is wanted back, as an
		 * application would: one read covers many merged sends.
		 */
		if (slot_busy(sl))
			reap(s, 0);
		slot_reclaim(s, sl, reap);
		n = produce(s, sl->buf, s->o->msg_size);
		if (!n)
			break;
		send_slot(s, sl, n);
	}
	/* What is queued (--batch) goes now; the rest is already in flight. */
	reap(s, 0);
	deadline = zc_now() + DRAIN_TIMEOUT_MS / 1000.0;
	while (s->completed < s->expected && zc_now() < deadline)
		reap(s, 100);
	if (s->completed < s->expected) {
		fprintf(stderr, "%s: %llu of %llu completions still missing\n", zc_prog,
			(unsigned long long)(s->expected - s->completed),
			(unsigned long long)s->expected);
		s->problems++;
	}
}

static void ring_setup(struct sender *s)
{
	long page = sysconf(_SC_PAGESIZE);

	s->slot_size = (s->o->msg_size + page - 1) / page * page;
	s->nslots = s->o->ring;
	if (!s->nslots)
		s->nslots = ZC_MIN(MAX_RING, (RING_BYTES + s->slot_size - 1) / s->slot_size);
	if (s->nslots < MIN_RING)
		s->nslots = MIN_RING;
	s->slots = calloc(s->nslots, sizeof(*s->slots));
	if (!s->slots)
		zc_fail("calloc");
}

static void method_msg_zerocopy(struct sender *s)
{
	int one = 1;

	if (setsockopt(s->sock, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)))
		zc_fail("setsockopt(SO_ZEROCOPY)");
	method_ring(s, mz_send, mz_reap);
}

/* --batch: queues for @s->o->batch sends. */
static void batch_alloc(struct sender *s, int pool)
{
	/* The ring must not come round to a buffer still queued. */
	s->batch_max = ZC_MIN(s->o->batch, s->nslots - 1);
	if (pool)
		s->pool_batch = calloc(s->batch_max, sizeof(*s->pool_batch));
	else
		s->batch = calloc(s->batch_max, sizeof(*s->batch));
	s->batch_iov = calloc(s->batch_max, sizeof(*s->batch_iov));
	s->batch_slot = calloc(s->batch_max, sizeof(*s->batch_slot));
	if ((!s->batch && !s->pool_batch) || !s->batch_iov || !s->batch_slot)
		zc_fail("calloc");
}

static void method_zcopy(struct sender *s)
{
	if (!s->o->batch) {
		method_ring(s, pinned_send, zc_reap);
		return;
	}
	batch_alloc(s, 0);
	method_ring(s, batch_send, batch_reap);
}

static void method_pool(struct sender *s)
{
	if (!s->o->batch) {
		method_ring(s, pool_send, zc_reap);
		return;
	}
	batch_alloc(s, 1);
	method_ring(s, batch_send, batch_reap);
}

/*
 * The ring's buffers, set up and written once before the clock starts:
 * a run measures the steady state, not each page's first-touch fault.
 */
static void ring_prepare(struct sender *s)
{
	unsigned int i;

	int ret;

	if (s->o->method != M_MSG_ZEROCOPY && s->o->method != M_ZCOPY &&
	    s->o->method != M_FIXED && s->o->method != M_POOL)
		return;
	ring_setup(s);
	if (s->o->method == M_POOL)
		pool_map(s);
	else
		ring_alloc(s);
	for (i = 0; i < s->nslots; i++)
		memset(s->slots[i].buf, 0, s->slot_size);
	if (s->o->method == M_FIXED) {
		ret = zc_register(s->zfd, s->slots[0].buf, (size_t)s->nslots * s->slot_size);
		if (ret < 0) {
			errno = -ret;
			zc_fail("ZCOPY_IOC_REGISTER of the ring");
		}
		s->fixed = ret;
	}
}

/* ---- the connection ---- */

static int connect_to(const struct opts *o)
{
	double deadline = zc_now() + CONNECT_RETRY_MS / 1000.0;
	const char *errno_msg;
	char a[80];
	int fd;

	for (;;) {
		fd = socket(o->addr.ss_family, (o->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC,
			    0);
		if (fd < 0)
			zc_fail("socket");
		if (!connect(fd, (const struct sockaddr *)&o->addr, o->addrlen))
			return fd;
		if (errno != ECONNREFUSED || zc_now() > deadline)
			break;
		close(fd);
		usleep(50000);
	}
	errno_msg = strerror(errno);
	zc_die(ZC_EXIT_RUNTIME, "connect to %s: %s", zc_addr_str(&o->addr, a, sizeof(a)),
	       errno_msg);
}

/* TCP: no more data, then wait for the receiver to close. UDP: end markers. */
static void finish(struct sender *s)
{
	char buf[4096];
	int i;

	if (s->o->udp) {
		for (i = 0; i < 3; i++) {
			if (send(s->sock, buf, 0, 0) < 0 && errno != ECONNREFUSED)
				zc_fail("send of the end marker");
			usleep(20000);
		}
		return;
	}
	if (shutdown(s->sock, SHUT_WR))
		zc_fail("shutdown");
	for (;;) {
		ssize_t n;

		if (zc_wait_fd(s->sock, POLLIN, DRAIN_TIMEOUT_MS)) {
			fprintf(stderr, "%s: the receiver did not close\n", zc_prog);
			s->problems++;
			return;
		}
		n = read(s->sock, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != ECONNRESET)
			zc_fail("read");
		if (n <= 0)
			return;
	}
}

/* ---- arguments ---- */

/* Option @name's value @arg, a count from 1 to @max. */
static unsigned int count_arg(const char *name, const char *arg, unsigned int max)
{
	uint64_t v = zc_size_arg(name, arg);

	if (v < 1 || v > max)
		zc_die(ZC_EXIT_USAGE, "%s must be 1 to %u", name, max);
	return v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "udp", no_argument, NULL, 'u' },
		{ "method", required_argument, NULL, 'm' },
		{ "pattern", no_argument, NULL, 'p' },
		{ "stamp", no_argument, NULL, 'S' },
		{ "file", required_argument, NULL, 'f' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "msg-size", required_argument, NULL, 's' },
		{ "ring", required_argument, NULL, 'r' },
		{ "notify", no_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'B' },
		{ "checksum", no_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "corrupt-at", required_argument, NULL, 'C' },	/* testing: hidden */
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->method = M_WRITE;
	o->bytes = 1ULL << 30;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:um:pSf:b:s:r:nB:kjh", lopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (zc_parse_addr(optarg, 0, &o->addr, &o->addrlen))
				zc_die(ZC_EXIT_USAGE, "bad address '%s' (HOST:PORT or [IPV6]:PORT)",
				       optarg);
			o->have_addr = 1;
			break;
		case 'u':
			o->udp = 1;
			break;
		case 'm':
			o->method = zc_parse_choice("method", optarg, method_names,
						    ARRAY_SIZE(method_names));
			break;
		case 'p':
			o->src = SRC_PATTERN;
			break;
		case 'S':
			o->src = SRC_STAMP;
			break;
		case 'f':
			o->src = strcmp(optarg, "-") ? SRC_FILE : SRC_STDIN;
			o->file = optarg;
			break;
		case 'b':
			o->bytes = zc_size_arg("--bytes", optarg);
			o->bytes_set = 1;
			break;
		case 's':
			o->msg_size = zc_size_arg("--msg-size", optarg);
			if (!o->msg_size || o->msg_size > (1U << 30))
				zc_die(ZC_EXIT_USAGE, "--msg-size must be 1 to 1G");
			break;
		case 'r':
			o->ring = count_arg("--ring", optarg, MAX_RING);
			if (o->ring < MIN_RING)
				zc_die(ZC_EXIT_USAGE, "--ring must be %u to %u", MIN_RING, MAX_RING);
			break;
		case 'n':
			o->notify = 1;
			break;
		case 'B':
			o->batch = count_arg("--batch", optarg, ZCOPY_MAX_BATCH);
			break;
		case 'k':
			o->checksum = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'C':
			o->corrupt_at = zc_size_arg("--corrupt-at", optarg);
			o->corrupt = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			zc_bad_option(c, argv);
		}
	}
	if (optind < argc && !strcmp(argv[optind], "-")) {
		o->src = SRC_STDIN;
		optind++;
	}
	if (optind < argc)
		zc_die(ZC_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
}

static void check_args(struct opts *o)
{
	const char *m = method_names[o->method];

	if (!o->have_addr)
		zc_die(ZC_EXIT_USAGE, "--connect HOST:PORT is required");
	if ((o->method == M_MMAP || o->method == M_SENDFILE) && o->src != SRC_FILE)
		zc_die(ZC_EXIT_USAGE, "method %s needs --file PATH", m);
	if (o->udp && (o->method == M_SENDFILE || o->method == M_SPLICE))
		zc_die(ZC_EXIT_USAGE, "method %s is for TCP only", m);
	if (o->notify && o->method != M_POOL)
		zc_die(ZC_EXIT_USAGE, "--notify is for method zcopy-pool only");
	if (o->batch && o->method != M_ZCOPY && o->method != M_FIXED && o->method != M_POOL)
		zc_die(ZC_EXIT_USAGE, "--batch is for the methods zcopy, zcopy-fixed and zcopy-pool only");
	if (o->corrupt && (o->src != SRC_PATTERN || o->method == M_MMAP ||
			   o->method == M_SENDFILE))
		zc_die(ZC_EXIT_USAGE, "--corrupt-at needs --pattern and a buffered method");
	if (!o->msg_size)
		o->msg_size = !o->udp ? 65536 : o->addr.ss_family == AF_INET6 ? 1448 : 1472;
	if (o->udp && o->msg_size > zc_udp_max(o->addr.ss_family))
		zc_die(ZC_EXIT_USAGE, "--msg-size %llu is more than a UDP datagram holds (%llu)",
		       (unsigned long long)o->msg_size,
		       (unsigned long long)zc_udp_max(o->addr.ss_family));
	if (o->src != SRC_PATTERN && o->src != SRC_STAMP && !o->bytes_set)
		o->bytes = ~0ULL;
}

static void open_source(struct sender *s)
{
	s->in_fd = -1;
	if (s->o->src == SRC_STDIN)
		s->in_fd = STDIN_FILENO;
	if (s->o->src == SRC_FILE) {
		s->in_fd = open(s->o->file, O_RDONLY | O_CLOEXEC);
		if (s->in_fd < 0)
			zc_fail(s->o->file);
	}
}

static void print_report(const struct sender *s, const struct zc_report *r)
{
	if (s->o->json) {
		zc_report_json_open(r);
		printf(", \"send_calls\": %llu, \"completions\": %llu, \"completions_copied\": %llu}\n",
		       (unsigned long long)s->send_calls, (unsigned long long)s->completions,
		       (unsigned long long)s->completions_copied);
		return;
	}
	zc_report_text(r);
	printf("send calls: %llu", (unsigned long long)s->send_calls);
	if (s->completions)
		printf(", completions: %llu (%llu say copied)", (unsigned long long)s->completions,
		       (unsigned long long)s->completions_copied);
	printf("\n");
}

int main(int argc, char **argv)
{
	struct zc_report report;
	struct sender s;
	struct opts o;

	zc_prog = "zcsend";
	parse_args(argc, argv, &o);
	check_args(&o);

	memset(&s, 0, sizeof(s));
	s.o = &o;
	s.limit = o.bytes;
	s.hash = ZC_FNV_INIT;
	s.zfd = -1;
	if (o.method == M_ZCOPY || o.method == M_FIXED || o.method == M_POOL)
		s.zfd = zc_open_device(method_names[o.method]);
	open_source(&s);
	s.sock = connect_to(&o);

	ring_prepare(&s);
	memset(&report, 0, sizeof(report));
	report.method = method_names[o.method];
	report.udp = o.udp;
	report.family = o.addr.ss_family;
	zc_report_start(&report);
	zc_progress_start(&s.progress);

	switch (o.method) {
	case M_WRITE:
		method_write(&s);
		break;
	case M_MMAP:
		method_mmap(&s);
		break;
	case M_SENDFILE:
		method_sendfile(&s);
		break;
	case M_SPLICE:
		method_splice(&s);
		break;
	case M_MSG_ZEROCOPY:
		method_msg_zerocopy(&s);
		break;
	case M_ZCOPY:
	case M_FIXED:
		method_zcopy(&s);
		break;
	case M_POOL:
		method_pool(&s);
		break;
	}
	finish(&s);

	zc_report_end(&report);
	zc_progress_end(&s.progress);
	report.bytes = s.off;
	report.checksum_on = o.checksum;
	report.checksum = s.hash;
	print_report(&s, &report);
	close(s.sock);
	return s.problems ? ZC_EXIT_RUNTIME : 0;
}
