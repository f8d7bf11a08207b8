/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What zcsend and zcrecv share: the test pattern, the FNV-1a checksum, size
 * and address parsing, the zcopy ledger, timing, the progress line and the
 * final report (text or JSON).
 *
 * The pattern: byte o of a stream is byte (o % 8) (little-endian) of
 * zc_word(o / 8), where zc_word() is a bijection of 64-bit integers. So a
 * receiver can check every byte against its stream offset, and, given any
 * eight consecutive bytes of the pattern, tell at which offset they lie
 * (zc_locate()): a UDP receiver finds where each datagram belongs even
 * after a loss.
 */
#ifndef ZCCOMMON_H
#define ZCCOMMON_H

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/zcopy.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ZC_MIN(a, b) ((a) < (b) ? (a) : (b))

/* Exit statuses: 1 for what went wrong at run time, 2 for bad arguments. */
#define ZC_EXIT_RUNTIME	1
#define ZC_EXIT_USAGE	2

static const char *zc_prog;

static inline void zc_vmsg(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", zc_prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* A one-line message on stderr, then exit with @status. */
static inline _Noreturn void zc_die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	zc_vmsg(fmt, ap);
	va_end(ap);
	fflush(stdout);
	exit(status);
}

/* A failed system call: "prog: what: strerror(errno)", exit 1. */
static inline _Noreturn void zc_fail(const char *what)
{
	zc_die(ZC_EXIT_RUNTIME, "%s: %s", what, strerror(errno));
}

/* ---- the pattern ---- */

#define ZC_MUL1		0xd6e8feb86659fd93ULL
#define ZC_MUL2		0xff51afd7ed558ccdULL
#define ZC_ADD		0x6a09e667f3bcc909ULL

static inline uint64_t zc_word(uint64_t k)
{
	uint64_t x = k + ZC_ADD;

	x ^= x >> 32;
	x *= ZC_MUL1;
	x ^= x >> 29;
	x *= ZC_MUL2;
	x ^= x >> 32;
	return x;
}

/* The inverse of multiplying by odd @m modulo 2^64 (Newton's iteration). */
static inline uint64_t zc_mul_inverse(uint64_t m)
{
	uint64_t inv = m;
	int i;

	for (i = 0; i < 5; i++)
		inv *= 2 - m * inv;
	return inv;
}

/* The k for which zc_word(k) == @x. */
static inline uint64_t zc_unword(uint64_t x)
{
	x ^= x >> 32;
	x *= zc_mul_inverse(ZC_MUL2);
	x ^= (x >> 29) ^ (x >> 58);
	x *= zc_mul_inverse(ZC_MUL1);
	x ^= x >> 32;
	return x - ZC_ADD;
}

static inline uint8_t zc_byte(uint64_t off)
{
	return zc_word(off >> 3) >> ((off & 7) * 8);
}

/* Stream bytes [@off, @off + @len) of the pattern into @buf. */
static inline void zc_fill(void *buf, uint64_t off, size_t len)
{
	uint8_t *p = buf;
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		p[i] = zc_byte(off + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = htole64(zc_word((off + i) >> 3));

		memcpy(p + i, &w, 8);
	}
	for (; i < len; i++)
		p[i] = zc_byte(off + i);
}

/* The index of the first byte of @buf that is not pattern byte @off + i, or @len. */
static inline size_t zc_check(const void *buf, uint64_t off, size_t len)
{
	const uint8_t *p = buf;
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		if (p[i] != zc_byte(off + i))
			return i;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		if (le64toh(w) != zc_word((off + i) >> 3))
			break;
	}
	for (; i < len; i++)
		if (p[i] != zc_byte(off + i))
			return i;
	return len;
}

/*
 * Where in the pattern @buf (@len >= 15 bytes) lies, judged by its first
 * aligned word: 0 with *@off set, or -1 if no alignment fits (the start of
 * @buf is not pattern data).
 */
static inline int zc_locate(const void *buf, size_t len, uint64_t *off)
{
	const uint8_t *p = buf;
	unsigned int r;

	if (len < 15)
		return -1;
	for (r = 0; r < 8; r++) {
		size_t lead = (8 - r) & 7;
		uint64_t w, start;

		memcpy(&w, p + lead, 8);
		start = zc_unword(le64toh(w)) * 8 - lead;
		if ((start & 7) == r && zc_check(p, start, lead + 8) == lead + 8) {
			*off = start;
			return 0;
		}
	}
	return -1;
}

/* ---- FNV-1a, 64 bits, over the whole stream ---- */

#define ZC_FNV_INIT	0xcbf29ce484222325ULL
#define ZC_FNV_PRIME	0x100000001b3ULL

static inline uint64_t zc_fnv(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= ZC_FNV_PRIME;
	}
	return h;
}

/* ---- arguments ---- */

/* "N" with an optional K, M, G or T (powers of 1024): 0, or -1 if bad. */
static inline int zc_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	case 't': case 'T':
		shift = 40;
		break;
	default:
		return -1;
	}
	if (*end && end[1])
		return -1;
	if (shift && v > (~0ULL >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* A size argument, or exit 2 naming @opt. */
static inline uint64_t zc_size_arg(const char *opt, const char *s)
{
	uint64_t v;

	if (zc_parse_size(s, &v))
		zc_die(ZC_EXIT_USAGE, "bad size '%s' for %s (a number, optionally K, M, G or T)",
		       s, opt);
	return v;
}

/*
 * "ADDR:PORT", "[IPV6]:PORT" or, when @port_only_ok, "PORT" (the wildcard
 * address, IPv6 and IPv4): numeric addresses only. 0, or -1 if bad.
 */
static inline int zc_parse_addr(const char *arg, int port_only_ok,
				struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN + 1];
	const char *port, *colon;
	unsigned long p;
	size_t hlen;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (arg[0] == '[') {
		colon = strchr(arg, ']');
		if (!colon || colon[1] != ':')
			return -1;
		hlen = colon - arg - 1;
		if (hlen > INET6_ADDRSTRLEN)
			return -1;
		memcpy(host, arg + 1, hlen);
		port = colon + 2;
	} else {
		colon = strrchr(arg, ':');
		if (!colon && !port_only_ok)
			return -1;
		hlen = colon ? (size_t)(colon - arg) : 0;
		if (hlen > INET6_ADDRSTRLEN || (colon && memchr(arg, ':', hlen)))
			return -1;
		memcpy(host, arg, hlen);
		port = colon ? colon + 1 : arg;
	}
	host[hlen] = '\0';
	errno = 0;
	p = strtoul(port, &end, 10);
	if (!*port || *end || errno || p > 65535)
		return -1;
	if (!hlen || inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		if (!hlen && !port_only_ok)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(p);
		*len = sizeof(*s6);
		return 0;
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(p);
		*len = sizeof(*s4);
		return 0;
	}
	return -1;
}

/* "ADDR:PORT" or "[ADDR]:PORT" of @ss into @buf. */
static inline const char *zc_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	}
	return buf;
}

/* Largest UDP payload for @family. */
static inline uint64_t zc_udp_max(int family)
{
	return family == AF_INET6 ? 65527 : 65507;
}

/* ---- I/O ---- */

/* write() all of @buf: 0, or -1 with errno. */
static inline int zc_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* ---- time, CPU, progress ---- */

static inline double zc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline double zc_tv(const struct timeval *tv)
{
	return tv->tv_sec + tv->tv_usec / 1e6;
}

/* A progress line on stderr about once a second, if stderr is a terminal. */
struct zc_progress {
	int on;
	double start, next;
	uint64_t last_bytes;
};

static inline void zc_progress_start(struct zc_progress *p)
{
	p->on = isatty(STDERR_FILENO);
	p->start = zc_now();
	p->next = p->start + 1;
	p->last_bytes = 0;
}

static inline void zc_progress(struct zc_progress *p, uint64_t bytes)
{
	double now;

	if (!p->on)
		return;
	now = zc_now();
	if (now < p->next)
		return;
	fprintf(stderr, "\r%s: %llu bytes, %.1f s, %.1f MB/s   ", zc_prog,
		(unsigned long long)bytes, now - p->start,
		(bytes - p->last_bytes) / 1e6 / (now - p->next + 1));
	p->last_bytes = bytes;
	p->next = now + 1;
}

static inline void zc_progress_end(struct zc_progress *p)
{
	if (p->on && p->last_bytes)
		fputc('\n', stderr);
}

/* ---- the zcopy ledger ---- */

/* The counters that only grow: their difference over the run is reported. */
#define ZC_LEDGER(f) { #f, offsetof(struct zcopy_stats, f) }
static const struct {
	const char *name;
	size_t offset;
} zc_ledger_fields[] = {
	ZC_LEDGER(sends),
	ZC_LEDGER(send_bytes),
	ZC_LEDGER(send_completions),
	ZC_LEDGER(tx_zerocopy_bytes),
	ZC_LEDGER(tx_copied_bytes),
	ZC_LEDGER(tx_copied_not_offloaded),
	ZC_LEDGER(tx_copied_loopback),
	ZC_LEDGER(tx_copied_stack),
	ZC_LEDGER(pages_pinned_total),
	ZC_LEDGER(pool_sends),
	ZC_LEDGER(pool_send_bytes),
	ZC_LEDGER(pool_send_copied_bytes),
	ZC_LEDGER(cow_copies),
	ZC_LEDGER(write_faults),
	ZC_LEDGER(pages_rearmed),
	ZC_LEDGER(receives),
	ZC_LEDGER(rx_bytes_mapped),
	ZC_LEDGER(rx_bytes_copied),
};

#define ZC_LEDGER_KEYS \
	"sends send_bytes send_completions tx_zerocopy_bytes tx_copied_bytes\n" \
	"                tx_copied_not_offloaded tx_copied_loopback tx_copied_stack\n" \
	"                pages_pinned_total pool_sends pool_send_bytes\n" \
	"                pool_send_copied_bytes cow_copies write_faults pages_rearmed\n" \
	"                receives rx_bytes_mapped rx_bytes_copied\n"

static inline uint64_t zc_ledger_get(const struct zcopy_stats *st, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)st + zc_ledger_fields[i].offset, sizeof(v));
	return v;
}

/* The module-wide ledger into @st: 0, or -1 (no /dev/zcopy, or no stats). */
static inline int zc_ledger_read(struct zcopy_stats *st)
{
	int fd = open(ZCOPY_DEVICE, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	memset(st, 0, sizeof(*st));
	st->flags = ZCOPY_STATS_MODULE;
	ret = ioctl(fd, ZCOPY_IOC_STATS, st) ? -1 : 0;
	close(fd);
	return ret;
}

/* /dev/zcopy for a method that needs it, or exit 1 saying why. */
static inline int zc_open_device(const char *method)
{
	int fd = open(ZCOPY_DEVICE, O_RDWR | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		zc_die(ZC_EXIT_RUNTIME, "method %s needs %s: %s%s", method, ZCOPY_DEVICE,
		       strerror(errno), errno == ENOENT ? " (is zcopy.ko loaded?)" : "");
	return fd;
}

/* ---- the report ---- */

struct zc_report {
	const char *method;
	int udp, family;
	uint64_t bytes;
	double start, end;
	struct rusage ru_start, ru_end;
	int checksum_on;
	uint64_t checksum;
	int ledger_on;
	struct zcopy_stats ledger_start, ledger_end;
};

static inline void zc_report_start(struct zc_report *r)
{
	r->ledger_on = !zc_ledger_read(&r->ledger_start);
	getrusage(RUSAGE_SELF, &r->ru_start);
	r->start = zc_now();
}

static inline void zc_report_end(struct zc_report *r)
{
	r->end = zc_now();
	getrusage(RUSAGE_SELF, &r->ru_end);
	if (r->ledger_on)
		r->ledger_on = !zc_ledger_read(&r->ledger_end);
}

static inline double zc_report_user(const struct zc_report *r)
{
	return zc_tv(&r->ru_end.ru_utime) - zc_tv(&r->ru_start.ru_utime);
}

static inline double zc_report_sys(const struct zc_report *r)
{
	return zc_tv(&r->ru_end.ru_stime) - zc_tv(&r->ru_start.ru_stime);
}

static inline double zc_report_secs(const struct zc_report *r)
{
	return r->end - r->start;
}

/* Page faults the process took over the run. */
static inline uint64_t zc_report_faults(const struct zc_report *r)
{
	return (r->ru_end.ru_minflt - r->ru_start.ru_minflt) +
	       (r->ru_end.ru_majflt - r->ru_start.ru_majflt);
}

static inline double zc_report_mbps(const struct zc_report *r)
{
	double s = zc_report_secs(r);

	return s > 0 ? r->bytes / 1e6 / s : 0;
}

static inline double zc_report_cpu_per_gib(const struct zc_report *r)
{
	double gib = r->bytes / (double)(1ULL << 30);

	return gib > 0 ? (zc_report_user(r) + zc_report_sys(r)) / gib : 0;
}

static inline uint64_t zc_report_delta(const struct zc_report *r, size_t i)
{
	return zc_ledger_get(&r->ledger_end, i) - zc_ledger_get(&r->ledger_start, i);
}

#define ZC_REPORT_KEYS \
	"  tool method proto (\"tcp\", \"udp\") family (\"ipv4\", \"ipv6\") bytes seconds\n" \
	"  mb_per_s cpu_user_s cpu_sys_s cpu_s_per_gib page_faults (the process's,\n" \
	"  over the run) checksum (16 hex digits,\n" \
	"  or null without --checksum) zcopy (null without /dev/zcopy, else the\n" \
	"  module-wide ledger's growth over the run, keys as in zcstat:\n" \
	"                " ZC_LEDGER_KEYS

/* The common part of the JSON object, left open for the tool's own keys. */
static inline void zc_report_json_open(const struct zc_report *r)
{
	size_t i;

	printf("{\"tool\": \"%s\", \"method\": \"%s\", \"proto\": \"%s\", \"family\": \"%s\", ",
	       zc_prog, r->method, r->udp ? "udp" : "tcp",
	       r->family == AF_INET6 ? "ipv6" : "ipv4");
	printf("\"bytes\": %llu, \"seconds\": %.6f, \"mb_per_s\": %.3f, ",
	       (unsigned long long)r->bytes, zc_report_secs(r), zc_report_mbps(r));
	printf("\"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f, \"cpu_s_per_gib\": %.6f, ",
	       zc_report_user(r), zc_report_sys(r), zc_report_cpu_per_gib(r));
	printf("\"page_faults\": %llu, ", (unsigned long long)zc_report_faults(r));
	if (r->checksum_on)
		printf("\"checksum\": \"%016llx\", ", (unsigned long long)r->checksum);
	else
		printf("\"checksum\": null, ");
	if (!r->ledger_on) {
		printf("\"zcopy\": null");
		return;
	}
	printf("\"zcopy\": {");
	for (i = 0; i < ARRAY_SIZE(zc_ledger_fields); i++)
		printf("%s\"%s\": %llu", i ? ", " : "", zc_ledger_fields[i].name,
		       (unsigned long long)zc_report_delta(r, i));
	printf("}");
}

/* The growth of each counter in zc_ledger_fields[] into @d (others zero). */
static inline void zc_report_deltas(const struct zc_report *r, struct zcopy_stats *d)
{
	size_t i;

	memset(d, 0, sizeof(*d));
	for (i = 0; i < ARRAY_SIZE(zc_ledger_fields); i++) {
		uint64_t v = zc_report_delta(r, i);

		memcpy((char *)d + zc_ledger_fields[i].offset, &v, sizeof(v));
	}
}

#define ZC_ULL(x) ((unsigned long long)(x))

static inline void zc_report_ledger_text(const struct zc_report *r)
{
	struct zcopy_stats d;

	zc_report_deltas(r, &d);
	printf("zcopy ledger, module-wide, over the run:\n");
	printf("  sent        %llu bytes in %llu sends, %llu sends completed\n",
	       ZC_ULL(d.send_bytes), ZC_ULL(d.sends), ZC_ULL(d.send_completions));
	printf("  zero-copied %llu bytes\n", ZC_ULL(d.tx_zerocopy_bytes));
	printf("  copied      %llu bytes: not offloaded %llu, loopback %llu, stack %llu\n",
	       ZC_ULL(d.tx_copied_bytes), ZC_ULL(d.tx_copied_not_offloaded),
	       ZC_ULL(d.tx_copied_loopback), ZC_ULL(d.tx_copied_stack));
	printf("  pinned      %llu pages\n", ZC_ULL(d.pages_pinned_total));
	printf("  pool        %llu bytes in %llu sends, %llu bytes sent from a copy\n",
	       ZC_ULL(d.pool_send_bytes), ZC_ULL(d.pool_sends), ZC_ULL(d.pool_send_copied_bytes));
	printf("  COW copies  %llu, write faults %llu, pages re-armed %llu\n",
	       ZC_ULL(d.cow_copies), ZC_ULL(d.write_faults), ZC_ULL(d.pages_rearmed));
	printf("  received    %llu bytes mapped, %llu bytes copied, in %llu receives\n",
	       ZC_ULL(d.rx_bytes_mapped), ZC_ULL(d.rx_bytes_copied), ZC_ULL(d.receives));
}

static inline void zc_report_text(const struct zc_report *r)
{
	printf("%s: %s over %s/%s: %llu bytes in %.3f s, %.1f MB/s\n", zc_prog, r->method,
	       r->udp ? "UDP" : "TCP", r->family == AF_INET6 ? "IPv6" : "IPv4",
	       (unsigned long long)r->bytes, zc_report_secs(r), zc_report_mbps(r));
	printf("CPU: %.3f s user, %.3f s sys, %.3f s per GiB\n", zc_report_user(r),
	       zc_report_sys(r), zc_report_cpu_per_gib(r));
	if (r->checksum_on)
		printf("checksum (FNV-1a 64): %016llx\n", (unsigned long long)r->checksum);
	if (r->ledger_on)
		zc_report_ledger_text(r);
}

#endif /* ZCCOMMON_H */
