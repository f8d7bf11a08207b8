// SPDX-License-Identifier: GPL-2.0
/*
 * zcproxy: relay one TCP connection, both ways, and say what it cost.
 *
 *   zcproxy [--method copy|splice|zcopy] [--timeout SECS] [--json] LISTEN UPSTREAM
 *
 * Accepts one connection on LISTEN, connects to UPSTREAM, and relays each
 * direction in a thread of its own until both have ended. The methods:
 * copy (read() and write() through a buffer), splice (splice() through a
 * pipe: no copy, but the proxy never sees the bytes) and zcopy (received
 * into the zcopy receive area, where the proxy may read them, and sent on
 * from the same pages with ZCOPY_IOC_FORWARD: no copy either).
 */
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>

#include "zccommon.h"

enum method { M_COPY, M_SPLICE, M_ZCOPY };

static const char * const method_names[] = {
	[M_COPY] = "copy",
	[M_SPLICE] = "splice",
	[M_ZCOPY] = "zcopy",
};

#define COPY_BUF	(256 << 10)
#define SPLICE_CHUNK	(1 << 20)
#define AREA_SLOTS	1024		/* the receive area of each direction, in pages */
#define FWD_DESC	256
/* What one direction's out socket may queue: less than its area holds. */
#define OUT_SNDBUF	(AREA_SLOTS * 4096 / 2)

struct opts {
	struct sockaddr_storage listen, upstream;
	socklen_t listen_len, upstream_len;
	enum method method;
	int timeout_s;
	int json;
};

/* One direction of the connection. */
struct relay {
	const struct opts *o;
	const char *name;
	int in, out;
	uint64_t bytes;
	uint64_t calls;
	const char *failed;	/* what failed, NULL if nothing */
	int err;
	pthread_t thread;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: zcproxy [OPTIONS] LISTEN UPSTREAM\n"
		"Relay one TCP connection accepted on LISTEN ([ADDR:]PORT) to UPSTREAM\n"
		"(ADDR:PORT, [IPV6]:PORT), both ways, until both directions end.\n"
		"\n"
		"  -m, --method M     copy (read/write, default), splice (through a pipe),\n"
		"                     zcopy (the zcopy receive area and ZCOPY_IOC_FORWARD)\n"
		"  -t, --timeout SECS give up on a direction idle this long (default: never)\n"
		"  -j, --json         one JSON object at the end, instead of text\n"
		"  -h, --help         this text\n"
		"\n"
		"The connection to UPSTREAM is retried for 5 s while it is refused.\n"
		"\n"
		"The report: bytes each way, the proxy's CPU per GiB relayed, and the\n"
		"growth of zcopy's module-wide ledger (what was received mapped or copied,\n"
		"forwarded without a copy or copied by the stack, and why). JSON keys:\n"
		ZC_REPORT_KEYS
		"  and up_bytes (client to upstream), down_bytes, calls (receive calls).\n");
}

static void relay_fail(struct relay *r, const char *what)
{
	if (!r->failed) {
		r->failed = what;
		r->err = errno;
	}
}

/* The end of this direction: the other side learns it. */
static void relay_done(struct relay *r)
{
	shutdown(r->out, SHUT_WR);
}

static void relay_copy(struct relay *r)
{
	char *buf = malloc(COPY_BUF);
	ssize_t n;

	if (!buf) {
		relay_fail(r, "malloc");
		return;
	}
	for (;;) {
		n = read(r->in, buf, COPY_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				relay_fail(r, "read");
			break;
		}
		r->calls++;
		if (zc_write_all(r->out, buf, n)) {
			relay_fail(r, "write");
			break;
		}
		r->bytes += n;
	}
	free(buf);
}

static void relay_splice(struct relay *r)
{
	int p[2];
	ssize_t n, m;

	if (pipe2(p, O_CLOEXEC)) {
		relay_fail(r, "pipe");
		return;
	}
	fcntl(p[1], F_SETPIPE_SZ, SPLICE_CHUNK);
	for (;;) {
		n = splice(r->in, NULL, p[1], NULL, SPLICE_CHUNK, SPLICE_F_MOVE | SPLICE_F_MORE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				relay_fail(r, "splice from the socket");
			break;
		}
		r->calls++;
		while (n > 0) {
			m = splice(p[0], NULL, r->out, NULL, n, SPLICE_F_MOVE | SPLICE_F_MORE);
			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0) {
				relay_fail(r, "splice to the socket");
				goto out;
			}
			n -= m;
			r->bytes += m;
		}
	}
out:
	close(p[0]);
	close(p[1]);
}

/*
 * Receive into the area, forward every slot from the very pages it was
 * received into, and give the slots back with the next receive: the stack
 * keeps a slot it still sends from until it is done with it.
 */
/*
 * The stack completes forwards after the bytes are sent: wait (up to 5 s)
 * until @zfd's have all completed, so that the report's ledger counts how
 * each left.
 */
static void forwards_settle(int zfd)
{
	struct zcopy_stats st;
	int i;

	for (i = 0; i < 500; i++) {
		if (zc_stats(zfd, 0, &st) || st.fwd_completions >= st.fwd_sends)
			return;
		usleep(10000);
	}
}

static void relay_zcopy(struct relay *r)
{
	struct zcopy_rx_desc d[FWD_DESC];
	struct zcopy_fwd_piece p[FWD_DESC];
	uint64_t held[FWD_DESC];
	uint32_t nheld = 0, i;
	int zfd, sndbuf = OUT_SNDBUF, ret;
	void *area;

	zfd = zc_open();
	if (zfd < 0) {
		relay_fail(r, "open " ZCOPY_DEVICE);
		return;
	}
	area = zc_rx_map(zfd, AREA_SLOTS);
	if (area == MAP_FAILED) {
		relay_fail(r, "mmap of the receive area");
		close(zfd);
		return;
	}
	setsockopt(r->out, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (;;) {
		struct zcopy_recv rv = {
			.sockfd = r->in, .desc = (uintptr_t)d, .desc_count = FWD_DESC,
			.release = (uintptr_t)held, .release_count = nheld,
		};

		ret = zc_recv_args(zfd, &rv);
		/* The slots given back went first, whatever came next. */
		nheld = 0;
		if (ret == -EINTR)
			continue;
		/* Every slot is still being sent from: let the stack catch up. */
		if (ret == -ENOSPC) {
			poll(NULL, 0, 1);
			continue;
		}
		if (ret) {
			errno = -ret;
			relay_fail(r, "ZCOPY_IOC_RECV");
			break;
		}
		if (!rv.bytes)
			break;
		r->calls++;
		for (i = 0; i < rv.desc_count; i++) {
			p[i] = (struct zcopy_fwd_piece){ .offset = d[i].offset, .len = d[i].len };
			held[i] = d[i].offset;
		}
		nheld = rv.desc_count;
		ret = zc_forward_all(zfd, r->out, p, rv.desc_count, 0, NULL);
		if (ret) {
			errno = -ret;
			relay_fail(r, "ZCOPY_IOC_FORWARD");
			break;
		}
		r->bytes += rv.bytes;
	}
	forwards_settle(zfd);
	munmap(area, (size_t)AREA_SLOTS * sysconf(_SC_PAGESIZE));
	close(zfd);
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;

	switch (r->o->method) {
	case M_COPY:
		relay_copy(r);
		break;
	case M_SPLICE:
		relay_splice(r);
		break;
	case M_ZCOPY:
		relay_zcopy(r);
		break;
	}
	relay_done(r);
	return NULL;
}

/* ---- the two connections ---- */

static void set_timeout(int fd, int secs)
{
	struct timeval tv = { .tv_sec = secs };

	if (secs) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
}

static int accept_client(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int lfd, fd, one = 1, zero = 0;
	char a[80];

	lfd = socket(o->listen.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		zc_fail("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (o->listen.ss_family == AF_INET6)
		setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(lfd, (const struct sockaddr *)&o->listen, o->listen_len) || listen(lfd, 1))
		zc_fail("bind/listen");
	/* Where we are: port 0 asks the kernel for one. */
	if (getsockname(lfd, (struct sockaddr *)&ss, &len))
		zc_fail("getsockname");
	fprintf(stderr, "%s: listening on %s\n", zc_prog, zc_addr_str(&ss, a, sizeof(a)));
	fflush(stderr);
	do {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		zc_fail("accept");
	close(lfd);
	return fd;
}

/* As zcsend does, retry a refused connection for 5 s: the upstream may be starting. */
static int connect_upstream(const struct opts *o)
{
	double deadline = zc_now() + 5;
	int fd;

	for (;;) {
		fd = socket(o->upstream.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			zc_fail("socket");
		if (!connect(fd, (const struct sockaddr *)&o->upstream, o->upstream_len))
			return fd;
		if (errno != ECONNREFUSED || zc_now() > deadline)
			zc_fail("connect to the upstream");
		close(fd);
		poll(NULL, 0, 20);
	}
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "method", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:t:jh", lopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->method = zc_parse_choice("method", optarg, method_names,
						    ARRAY_SIZE(method_names));
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
	if (argc - optind != 2)
		zc_die(ZC_EXIT_USAGE, "LISTEN and UPSTREAM are required (see --help)");
	if (zc_parse_addr(argv[optind], 1, &o->listen, &o->listen_len))
		zc_die(ZC_EXIT_USAGE, "bad address '%s' ([ADDR:]PORT or [IPV6]:PORT)",
		       argv[optind]);
	if (zc_parse_addr(argv[optind + 1], 0, &o->upstream, &o->upstream_len))
		zc_die(ZC_EXIT_USAGE, "bad address '%s' (ADDR:PORT or [IPV6]:PORT)",
		       argv[optind + 1]);
}

int main(int argc, char **argv)
{
	struct relay up = { .name = "up" }, down = { .name = "down" };
	struct relay *dirs[] = { &up, &down };
	struct zc_report rep;
	struct opts o;
	int client, server, i, failed = 0;

	zc_prog = "zcproxy";
	parse_args(argc, argv, &o);
	if (o.method == M_ZCOPY)
		close(zc_open_device("zcopy"));	/* fail early, before listening */

	client = accept_client(&o);
	server = connect_upstream(&o);
	set_timeout(client, o.timeout_s);
	set_timeout(server, o.timeout_s);
	up = (struct relay){ .o = &o, .name = "up", .in = client, .out = server };
	down = (struct relay){ .o = &o, .name = "down", .in = server, .out = client };

	memset(&rep, 0, sizeof(rep));
	rep.method = method_names[o.method];
	rep.family = o.upstream.ss_family;
	zc_report_start(&rep);
	for (i = 0; i < 2; i++)
		if (pthread_create(&dirs[i]->thread, NULL, relay_main, dirs[i]))
			zc_die(ZC_EXIT_RUNTIME, "pthread_create failed");
	for (i = 0; i < 2; i++)
		pthread_join(dirs[i]->thread, NULL);
	zc_report_end(&rep);
	rep.bytes = up.bytes + down.bytes;

	if (o.json) {
		zc_report_json_open(&rep);
		printf(", \"up_bytes\": %llu, \"down_bytes\": %llu, \"calls\": %llu}\n",
		       ZC_ULL(up.bytes), ZC_ULL(down.bytes), ZC_ULL(up.calls + down.calls));
	} else {
		zc_report_text(&rep);
		printf("relayed: %llu bytes up, %llu bytes down, in %llu receive calls\n",
		       ZC_ULL(up.bytes), ZC_ULL(down.bytes), ZC_ULL(up.calls + down.calls));
		if (rep.ledger_on) {
			struct zcopy_stats d;

			zc_report_deltas(&rep, &d);
			printf("forwarded:   %llu bytes, %llu left uncopied, %llu copied by the stack\n",
			       ZC_ULL(d.fwd_bytes), ZC_ULL(d.fwd_zerocopy_bytes),
			       ZC_ULL(d.fwd_copied_bytes));
		}
	}
	fflush(stdout);
	for (i = 0; i < 2; i++) {
		if (!dirs[i]->failed)
			continue;
		errno = dirs[i]->err;
		fprintf(stderr, "%s: %s: %s: %s\n", zc_prog, dirs[i]->name, dirs[i]->failed,
			strerror(errno));
		failed = 1;
	}
	close(client);
	close(server);
	return failed ? ZC_EXIT_RUNTIME : 0;
}
