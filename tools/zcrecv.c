// SPDX-License-Identifier: GPL-2.0
/*
 * zcrecv: receive one stream from zcsend (or anything else) over TCP or
 * UDP by one of several receive methods, check it, and say what it cost.
 *
 *   zcrecv --listen [ADDR:]PORT [--udp] [--method M] [--verify] [--output PATH]
 *          [--checksum] [--expect-checksum HEX] [--timeout SECS] [--json]
 *
 * The methods: read, tcp_zerocopy (TCP_ZEROCOPY_RECEIVE into a mapping of
 * the socket, 512 KiB windows at a time as the kernel's tcp_mmap does,
 * read() for what cannot be mapped) and zcopy-recv (the zcopy
 * receive area: ZCOPY_IOC_RECV, each call giving back the slots of the
 * previous one).
 *
 * TCP: one connection is accepted and read to its end; --timeout bounds
 * the wait for it, as for data. UDP: datagrams are
 * read until an empty one (zcsend sends three at the end) or, once data
 * has come, until --timeout seconds pass without any.
 */
#include <getopt.h>
#include <poll.h>
#include <sys/mman.h>

#include <netinet/tcp.h>

#include "zccommon.h"

enum method { M_READ, M_TCP_ZEROCOPY, M_ZCOPY_RECV };

static const char * const method_names[] = {
	[M_READ] = "read",
	[M_TCP_ZEROCOPY] = "tcp_zerocopy",
	[M_ZCOPY_RECV] = "zcopy-recv",
};

#define READ_BUF	(256 << 10)
/*
 * TCP_ZEROCOPY_RECEIVE maps whole pages only, and a call with less than a
 * page queued maps nothing: as the kernel's tcp_mmap does, wait with
 * SO_RCVLOWAT for a window of this much, and map it whole.
 */
#define ZC_WINDOW	(512 << 10)
#define AREA_SLOTS	2048		/* the zcopy receive area, in pages */
#define RX_DESC		256
#define UDP_RCVBUF	(8 << 20)
#define UDP_TIMEOUT_S	5
#define MAX_GAPS	64		/* UDP --verify: losses remembered */

struct opts {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int have_addr;
	int udp;
	enum method method;
	int verify, json, checksum;
	int expect_set;
	uint64_t expect;
	const char *output;
	int timeout_s;
};

struct receiver {
	const struct opts *o;
	int sock;
	int out_fd;
	int timeout_ms;		/* now: -1 for none */
	uint64_t pos;		/* stream offset of the next byte */
	uint64_t bytes, hash;
	uint64_t recv_calls, mapped, copied;
	/* UDP --verify: stream bytes not received before the furthest end */
	uint64_t datagrams, reordered, lost;
	uint64_t high;		/* the end of the furthest datagram */
	struct gap { uint64_t start, end; } gaps[MAX_GAPS];
	unsigned int ngaps;	/* the latest, in stream order */
	const char *end;	/* how the stream ended */
	struct zc_progress progress;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: zcrecv --listen [ADDR:]PORT [options]\n"
		"Receive one stream (a TCP connection, or UDP datagrams) and report the cost.\n"
		"\n"
		"  -l, --listen [ADDR:]PORT  where to listen (numeric; IPv6 as [ADDR]:PORT;\n"
		"                            PORT alone: all addresses; port 0: any, and\n"
		"                            the line \"zcrecv: listening on ADDR:PORT\"\n"
		"                            on stderr says which)\n"
		"  -u, --udp                 UDP: datagrams until an empty one\n"
		"  -m, --method M            read (default), tcp_zerocopy (TCP only),\n"
		"                            zcopy-recv (needs /dev/zcopy)\n"
		"  -v, --verify              check every byte against zcsend's pattern at its\n"
		"                            stream offset; exit 1 at the first mismatch,\n"
		"                            saying where (UDP: each datagram is placed by\n"
		"                            its content; lost bytes and datagrams out of\n"
		"                            order, late or twice, are counted)\n"
		"  -o, --output PATH         write the data to PATH (- for stdout; the\n"
		"                            report then goes to stderr)\n"
		"  -k, --checksum            print the FNV-1a 64 of the stream received\n"
		"  -e, --expect-checksum HEX exit 1 unless the checksum is HEX\n"
		"  -t, --timeout SECS        fail (TCP) or end (UDP, once data came) after\n"
		"                            SECS without data, or (TCP) without a\n"
		"                            connection (default: TCP never, UDP %d)\n"
		"  -j, --json                one JSON object at the end, instead of text\n"
		"  -h, --help                this text\n"
		"\n"
		"JSON keys:\n" ZC_REPORT_KEYS
		"  recv_calls, mapped_bytes (tcp_zerocopy: mapped; zcopy-recv: in mapped\n"
		"  slots), copied_bytes (the rest), verified (true, or null without\n"
		"  --verify), datagrams, lost_bytes, reordered (UDP), end (\"eof\",\n"
		"  \"marker\": an empty datagram, \"timeout\")\n"
		"\n"
		"Exit status: 0 done, 1 run-time error or a mismatch, 2 bad arguments.\n",
		UDP_TIMEOUT_S);
}

/* ---- what every method does with the bytes ---- */

static _Noreturn void bad_byte(const uint8_t *p, uint64_t off)
{
	zc_die(ZC_EXIT_RUNTIME,
	       "pattern mismatch at stream offset %llu: byte 0x%02x, expected 0x%02x",
	       (unsigned long long)off, *p, zc_byte(off));
}

/*
 * Make room for a gap at @i (gaps[@i] on move up): @i, or MAX_GAPS when it
 * would be the oldest of too many. The oldest is forgotten: it stays lost.
 */
static unsigned int gap_insert(struct receiver *r, unsigned int i)
{
	if (r->ngaps == MAX_GAPS) {
		if (!i)
			return MAX_GAPS;
		memmove(&r->gaps[0], &r->gaps[1], --r->ngaps * sizeof(r->gaps[0]));
		i--;
	}
	memmove(&r->gaps[i + 1], &r->gaps[i], (r->ngaps - i) * sizeof(r->gaps[0]));
	r->ngaps++;
	return i;
}

/* Bytes [@start, @end) came: what of them was missing is no longer lost. */
static void gaps_fill(struct receiver *r, uint64_t start, uint64_t end)
{
	unsigned int i = 0;

	while (i < r->ngaps) {
		struct gap *g = &r->gaps[i];
		uint64_t lo = ZC_MAX(g->start, start), hi = ZC_MIN(g->end, end);

		if (lo >= hi) {
			i++;
			continue;
		}
		r->lost -= hi - lo;
		if (lo > g->start && hi < g->end) {
			uint64_t g_end = g->end;

			g->end = lo;
			i = gap_insert(r, i + 1);
			if (i < MAX_GAPS)
				r->gaps[i] = (struct gap){ hi, g_end };
			return;
		}
		if (lo > g->start) {
			g->end = lo;
		} else if (hi < g->end) {
			g->start = hi;
		} else {
			memmove(g, g + 1, (--r->ngaps - i) * sizeof(*g));
			continue;
		}
		i++;
	}
}

/*
 * A datagram's place in the stream, from its content, and what it says of
 * those before it: one past the furthest end opens a gap of lost bytes;
 * one before that end came late, or twice (a buffer reused too early shows
 * as one): reordered. One that is not pattern data at all is checked where
 * it should have been, and fails there.
 */
static void place_datagram(struct receiver *r, const void *data, size_t len)
{
	uint64_t off;
	unsigned int i;

	if (zc_check(data, r->pos, ZC_MIN(len, 16)) != ZC_MIN(len, 16) &&
	    !zc_locate(data, len, &off))
		r->pos = off;
	if (r->pos > r->high) {
		r->lost += r->pos - r->high;
		i = gap_insert(r, r->ngaps);
		if (i < MAX_GAPS)
			r->gaps[i] = (struct gap){ r->high, r->pos };
	} else if (r->pos < r->high) {
		r->reordered++;
	}
}

/* Bytes of the stream, in order; @dgram: they start a datagram. */
static void consume(struct receiver *r, const void *data, size_t len, int dgram)
{
	if (r->o->verify) {
		size_t bad;

		if (dgram)
			place_datagram(r, data, len);
		/*
		 * Late bytes fill what they can of the gaps, in every piece
		 * of a datagram (zcopy-recv's descriptors, one per page).
		 */
		if (r->pos < r->high)
			gaps_fill(r, r->pos, r->pos + len);
		bad = zc_check(data, r->pos, len);
		if (bad < len)
			bad_byte((const uint8_t *)data + bad, r->pos + bad);
	}
	if (r->o->checksum)
		r->hash = zc_fnv(r->hash, data, len);
	if (r->out_fd >= 0 && zc_write_all(r->out_fd, data, len))
		zc_fail(r->o->output);
	r->pos += len;
	r->bytes += len;
	if (r->pos > r->high)
		r->high = r->pos;
	zc_progress(&r->progress, r->bytes);
}

/* Wait for data: 0, or -1 when the timeout passed. */
static int wait_data(struct receiver *r)
{
	return zc_wait_fd(r->sock, POLLIN, r->timeout_ms);
}

/* Nothing came for --timeout: the end of a UDP stream, a failure for TCP. */
static void timed_out(struct receiver *r)
{
	if (!r->o->udp || !r->datagrams)
		zc_die(ZC_EXIT_RUNTIME, "no data for %d s (received %llu bytes)",
		       r->timeout_ms / 1000, (unsigned long long)r->bytes);
	r->end = "timeout";
}

/* A datagram arrived; UDP's idle timeout starts with the first. */
static void got_datagram(struct receiver *r)
{
	r->datagrams++;
	if (r->timeout_ms < 0)
		r->timeout_ms = (r->o->timeout_s ? r->o->timeout_s : UDP_TIMEOUT_S) * 1000;
}

/* ---- read ---- */

static void method_read(struct receiver *r)
{
	char *buf = malloc(READ_BUF);

	if (!buf)
		zc_fail("malloc");
	for (;;) {
		ssize_t n;

		if (wait_data(r)) {
			timed_out(r);
			break;
		}
		n = recv(r->sock, buf, READ_BUF, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			zc_fail("recv");
		r->recv_calls++;
		if (!n) {
			r->end = r->o->udp ? "marker" : "eof";
			break;
		}
		if (r->o->udp)
			got_datagram(r);
		r->copied += n;
		consume(r, buf, n, r->o->udp);
	}
	free(buf);
}

/* ---- TCP_ZEROCOPY_RECEIVE ---- */

/* read() what cannot be mapped, up to @len (0: whatever is there): 0 at the end. */
static int zc_read_some(struct receiver *r, char *buf, size_t len)
{
	ssize_t n;

	n = recv(r->sock, buf, len ? ZC_MIN(len, READ_BUF) : READ_BUF, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (n < 0)
		zc_fail("recv");
	r->recv_calls++;
	if (!n)
		return 0;
	r->copied += n;
	consume(r, buf, n, 0);
	return 1;
}

static void method_tcp_zerocopy(struct receiver *r)
{
	char *buf = malloc(READ_BUF);
	int lowat = ZC_WINDOW;
	void *map;

	if (!buf)
		zc_fail("malloc");
	map = mmap(NULL, ZC_WINDOW, PROT_READ, MAP_SHARED, r->sock, 0);
	if (map == MAP_FAILED)
		zc_fail("mmap of the TCP socket");
	if (setsockopt(r->sock, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat)))
		zc_fail("setsockopt(SO_RCVLOWAT)");
	for (;;) {
		struct tcp_zerocopy_receive zc;
		socklen_t len = sizeof(zc);

		if (wait_data(r)) {
			timed_out(r);
			break;
		}
		memset(&zc, 0, sizeof(zc));
		zc.address = (uintptr_t)map;
		zc.length = ZC_WINDOW;
		if (getsockopt(r->sock, IPPROTO_TCP, TCP_ZEROCOPY_RECEIVE, &zc, &len)) {
			if (errno == EINTR)
				continue;
			if (errno != EIO)	/* EIO: the end; read() says so below */
				zc_fail("getsockopt(TCP_ZEROCOPY_RECEIVE)");
			zc.length = 0;
			zc.recv_skip_hint = 0;
		}
		r->recv_calls++;
		if (zc.length) {
			r->mapped += zc.length;
			consume(r, map, zc.length, 0);
			madvise(map, zc.length, MADV_DONTNEED);
		}
		if ((zc.recv_skip_hint || !zc.length) && !zc_read_some(r, buf, zc.recv_skip_hint)) {
			r->end = "eof";
			break;
		}
	}
	munmap(map, ZC_WINDOW);
	free(buf);
}

/* ---- the zcopy receive area ---- */

/* Slots held since the last call go back; if the call failed, make sure. */
static void area_release(int zfd, uint64_t *held, uint32_t *nheld)
{
	int ret = *nheld ? zc_release(zfd, held, *nheld) : 0;

	errno = -ret;
	if (ret && ret != -ENOENT)
		zc_fail("ZCOPY_IOC_RELEASE");
	*nheld = 0;
}

static void method_zcopy_recv(struct receiver *r)
{
	int zfd = zc_open_device("zcopy-recv");
	struct zcopy_rx_desc desc[RX_DESC];
	uint64_t held[RX_DESC];
	uint32_t nheld = 0, i;
	char *area;

	area = zc_rx_map(zfd, AREA_SLOTS);
	if (area == MAP_FAILED)
		zc_fail("mmap of the zcopy receive area");
	for (;;) {
		struct zcopy_recv rv = {
			.sockfd = r->sock,
			.desc = (uintptr_t)desc,
			.desc_count = RX_DESC,
			.timeout_ms = r->timeout_ms > 0 ? r->timeout_ms : 0,
			.release = (uintptr_t)held,
			.release_count = nheld,
		};

		int ret = zc_recv_args(zfd, &rv);

		if (ret) {
			errno = -ret;
			if (ret != -EINTR && ret != -EAGAIN)
				zc_fail("ZCOPY_IOC_RECV");
			area_release(zfd, held, &nheld);
			if (ret == -EAGAIN && r->timeout_ms > 0) {
				timed_out(r);
				break;
			}
			continue;
		}
		nheld = 0;
		r->recv_calls++;
		if (!rv.bytes) {
			r->end = r->o->udp ? "marker" : "eof";
			break;
		}
		if (r->o->udp)
			got_datagram(r);
		for (i = 0; i < rv.desc_count; i++) {
			if (desc[i].flags & ZCOPY_RX_MAPPED)
				r->mapped += desc[i].len;
			else
				r->copied += desc[i].len;
			consume(r, area + desc[i].offset, desc[i].len, r->o->udp && !i);
			held[nheld++] = desc[i].offset;
		}
	}
	munmap(area, (size_t)AREA_SLOTS * sysconf(_SC_PAGESIZE));
	close(zfd);
}

/* ---- the socket ---- */

static void announce(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char a[80];

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		zc_fail("getsockname");
	fprintf(stderr, "%s: listening on %s\n", zc_prog, zc_addr_str(&ss, a, sizeof(a)));
	fflush(stderr);
}

static int bound_socket(const struct opts *o)
{
	int fd, one = 1, zero = 0;

	fd = socket(o->addr.ss_family, (o->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		zc_fail("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (o->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (const struct sockaddr *)&o->addr, o->addrlen))
		zc_fail("bind");
	return fd;
}

/* UDP has no flow control: a large receive buffer loses less. */
static void udp_rcvbuf(int fd)
{
	int size = UDP_RCVBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

static int open_stream(const struct opts *o, int *family)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	int lfd = bound_socket(o), fd;

	*family = o->addr.ss_family;
	if (o->udp) {
		udp_rcvbuf(lfd);
		announce(lfd);
		return lfd;
	}
	if (listen(lfd, 1))
		zc_fail("listen");
	announce(lfd);
	/* --timeout covers the wait for the connection too: a sender may fail before it. */
	if (o->timeout_s && zc_wait_fd(lfd, POLLIN, o->timeout_s * 1000))
		zc_die(ZC_EXIT_RUNTIME, "no connection for %d s", o->timeout_s);
	do {
		fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		zc_fail("accept");
	close(lfd);
	*family = peer.ss_family;
	return fd;
}

/* ---- arguments ---- */

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "udp", no_argument, NULL, 'u' },
		{ "method", required_argument, NULL, 'm' },
		{ "verify", no_argument, NULL, 'v' },
		{ "output", required_argument, NULL, 'o' },
		{ "checksum", no_argument, NULL, 'k' },
		{ "expect-checksum", required_argument, NULL, 'e' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->method = M_READ;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":l:um:vo:ke:t:jh", lopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (zc_parse_addr(optarg, 1, &o->addr, &o->addrlen))
				zc_die(ZC_EXIT_USAGE,
				       "bad address '%s' ([ADDR:]PORT or [IPV6]:PORT)", optarg);
			o->have_addr = 1;
			break;
		case 'u':
			o->udp = 1;
			break;
		case 'm':
			o->method = zc_parse_choice("method", optarg, method_names,
						    ARRAY_SIZE(method_names));
			break;
		case 'v':
			o->verify = 1;
			break;
		case 'o':
			o->output = optarg;
			break;
		case 'k':
			o->checksum = 1;
			break;
		case 'e':
			errno = 0;
			o->expect = strtoull(optarg, &end, 16);
			if (!*optarg || *end || errno)
				zc_die(ZC_EXIT_USAGE, "bad checksum '%s' (hex digits)", optarg);
			o->expect_set = 1;
			o->checksum = 1;
			break;
		case 't':
			o->timeout_s = zc_timeout_arg(optarg);
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			zc_bad_option(c, argv);
		}
	}
	if (optind < argc)
		zc_die(ZC_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
	if (!o->have_addr)
		zc_die(ZC_EXIT_USAGE, "--listen [ADDR:]PORT is required");
	if (o->udp && o->method == M_TCP_ZEROCOPY)
		zc_die(ZC_EXIT_USAGE, "method tcp_zerocopy is for TCP only");
}

/* --output: a file, or stdout (the report then goes to stderr). */
static int open_output(const char *path)
{
	int fd;

	if (!path)
		return -1;
	if (strcmp(path, "-")) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			zc_fail(path);
		return fd;
	}
	fd = dup(STDOUT_FILENO);
	if (fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
		zc_fail("dup");
	return fd;
}

static void print_report(const struct receiver *r, const struct zc_report *rep)
{
	if (r->o->json) {
		zc_report_json_open(rep);
		printf(", \"recv_calls\": %llu, \"mapped_bytes\": %llu, \"copied_bytes\": %llu",
		       (unsigned long long)r->recv_calls, (unsigned long long)r->mapped,
		       (unsigned long long)r->copied);
		printf(", \"verified\": %s, \"datagrams\": %llu, \"lost_bytes\": %llu",
		       r->o->verify ? "true" : "null", (unsigned long long)r->datagrams,
		       (unsigned long long)r->lost);
		printf(", \"reordered\": %llu, \"end\": \"%s\"}\n",
		       (unsigned long long)r->reordered, r->end);
		return;
	}
	zc_report_text(rep);
	printf("receive calls: %llu, mapped %llu bytes, copied %llu bytes, ended by %s\n",
	       (unsigned long long)r->recv_calls, (unsigned long long)r->mapped,
	       (unsigned long long)r->copied, r->end);
	if (r->o->udp)
		printf("datagrams: %llu, lost %llu bytes, %llu out of order\n",
		       (unsigned long long)r->datagrams, (unsigned long long)r->lost,
		       (unsigned long long)r->reordered);
	if (r->o->verify)
		printf("verified: every byte received matches the pattern\n");
}

int main(int argc, char **argv)
{
	struct zc_report report;
	struct receiver r;
	struct opts o;
	int family;

	zc_prog = "zcrecv";
	parse_args(argc, argv, &o);

	memset(&r, 0, sizeof(r));
	r.o = &o;
	r.hash = ZC_FNV_INIT;
	r.end = "eof";
	r.timeout_ms = o.timeout_s && !o.udp ? o.timeout_s * 1000 : -1;
	if (o.method == M_ZCOPY_RECV)
		close(zc_open_device("zcopy-recv"));	/* fail early, before listening */
	r.out_fd = open_output(o.output);
	r.sock = open_stream(&o, &family);

	memset(&report, 0, sizeof(report));
	report.method = method_names[o.method];
	report.udp = o.udp;
	report.family = family;
	zc_report_start(&report);
	zc_progress_start(&r.progress);

	switch (o.method) {
	case M_READ:
		method_read(&r);
		break;
	case M_TCP_ZEROCOPY:
		method_tcp_zerocopy(&r);
		break;
	case M_ZCOPY_RECV:
		method_zcopy_recv(&r);
		break;
	}

	zc_report_end(&report);
	zc_progress_end(&r.progress);
	report.bytes = r.bytes;
	report.checksum_on = o.checksum;
	report.checksum = r.hash;
	print_report(&r, &report);
	fflush(stdout);
	if (r.out_fd >= 0 && close(r.out_fd))
		zc_fail(o.output);
	if (o.expect_set && r.hash != o.expect)
		zc_die(ZC_EXIT_RUNTIME, "checksum mismatch: received %016llx, expected %016llx",
		       (unsigned long long)r.hash, (unsigned long long)o.expect);
	close(r.sock);
	return 0;
}
