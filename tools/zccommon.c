// SPDX-License-Identifier: GPL-2.0
/*
 * What zcsend and zcrecv share beyond libzcopy: see zccommon.h.
 */
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <sys/time.h>

#include "zccommon.h"

const char *zc_prog;

void zc_vmsg(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", zc_prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

_Noreturn void zc_die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	zc_vmsg(fmt, ap);
	va_end(ap);
	fflush(stdout);
	exit(status);
}

_Noreturn void zc_fail(const char *what)
{
	zc_die(ZC_EXIT_RUNTIME, "%s: %s", what, strerror(errno));
}

int zc_parse_size(const char *s, uint64_t *out)
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

int zc_timeout_arg(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v <= 0 || v > 86400)
		zc_die(ZC_EXIT_USAGE, "bad timeout '%s' (1 to 86400 seconds)", s);
	return v;
}

uint64_t zc_size_arg(const char *opt, const char *s)
{
	uint64_t v;

	if (zc_parse_size(s, &v))
		zc_die(ZC_EXIT_USAGE, "bad size '%s' for %s (a number, optionally K, M, G or T)",
		       s, opt);
	return v;
}

int zc_parse_addr(const char *arg, int port_only_ok,
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

const char *zc_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
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

uint64_t zc_udp_max(int family)
{
	return family == AF_INET6 ? 65527 : 65507;
}

int zc_write_all(int fd, const void *buf, size_t len)
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

int zc_wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int n;

	do {
		n = poll(&pfd, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		zc_fail("poll");
	return n ? 0 : -1;
}

double zc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double zc_tv(const struct timeval *tv)
{
	return tv->tv_sec + tv->tv_usec / 1e6;
}

void zc_progress_start(struct zc_progress *p)
{
	p->on = isatty(STDERR_FILENO);
	p->start = zc_now();
	p->next = p->start + 1;
	p->last_bytes = 0;
}

void zc_progress(struct zc_progress *p, uint64_t bytes)
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

void zc_progress_end(struct zc_progress *p)
{
	if (p->on && p->last_bytes)
		fputc('\n', stderr);
}

int zc_ledger_read(struct zcopy_stats *st)
{
	int fd = open(ZCOPY_DEVICE, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = zc_stats(fd, ZCOPY_STATS_MODULE, st) ? -1 : 0;
	close(fd);
	return ret;
}

int zc_open_device(const char *method)
{
	int fd = open(ZCOPY_DEVICE, O_RDWR | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		zc_die(ZC_EXIT_RUNTIME, "method %s needs %s: %s%s", method, ZCOPY_DEVICE,
		       strerror(errno), errno == ENOENT ? " (is zcopy.ko loaded?)" : "");
	return fd;
}

/*
 * The process's CPU time, every thread, to the nanosecond: the scheduler's
 * own sum, where getrusage()'s user/system split is sampled at ticks.
 */
static double zc_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * The machine's busy CPU time so far, in seconds, or -1 if unknown, so that
 * work charged to no process of ours (softirqs, the kernel's workers)
 * counts over exactly the span the process measures itself. With one CPU,
 * which is running this, the time since boot less its tickless idle and
 * iowait clocks (/proc/timer_list, to the nanosecond); else /proc/stat's
 * ticks, as another CPU's idle clock leaves out the idle it is in.
 */
static double zc_busy_now(void)
{
	unsigned long long now = 0, v, idle = 0, t[7];
	char line[256];
	int cpus = 0;
	FILE *f;

	f = sysconf(_SC_NPROCESSORS_ONLN) == 1 ? fopen("/proc/timer_list", "r") : NULL;
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "now at %llu nsecs", &v) == 1) {
				now = v;
			} else if (sscanf(line, "  .idle_sleeptime : %llu nsecs", &v) == 1) {
				idle += v;
				cpus++;
			} else if (sscanf(line, "  .iowait_sleeptime: %llu nsecs", &v) == 1) {
				idle += v;
			}
		}
		fclose(f);
		if (now && cpus == 1)
			return ((double)now - (double)idle) / 1e9;
	}
	f = fopen("/proc/stat", "r");
	if (!f)
		return -1;
	v = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &t[0], &t[1], &t[2], &t[3],
		   &t[4], &t[5], &t[6]);
	fclose(f);
	if (v != 7)
		return -1;
	/* user, nice, system, irq, softirq */
	return (double)(t[0] + t[1] + t[2] + t[5] + t[6]) / sysconf(_SC_CLK_TCK);
}

void zc_report_start(struct zc_report *r)
{
	r->ledger_on = !zc_ledger_read(&r->ledger_start);
	r->busy_start = zc_busy_now();
	getrusage(RUSAGE_SELF, &r->ru_start);
	r->cpu_start = zc_cpu_now();
	r->start = zc_now();
}

void zc_report_end(struct zc_report *r)
{
	r->end = zc_now();
	r->cpu_end = zc_cpu_now();
	getrusage(RUSAGE_SELF, &r->ru_end);
	r->busy_end = zc_busy_now();
	if (r->ledger_on)
		r->ledger_on = !zc_ledger_read(&r->ledger_end);
}

double zc_report_user(const struct zc_report *r)
{
	return zc_tv(&r->ru_end.ru_utime) - zc_tv(&r->ru_start.ru_utime);
}

double zc_report_sys(const struct zc_report *r)
{
	return zc_tv(&r->ru_end.ru_stime) - zc_tv(&r->ru_start.ru_stime);
}

double zc_report_secs(const struct zc_report *r)
{
	return r->end - r->start;
}

uint64_t zc_report_faults(const struct zc_report *r)
{
	return (r->ru_end.ru_minflt - r->ru_start.ru_minflt) +
	       (r->ru_end.ru_majflt - r->ru_start.ru_majflt);
}

double zc_report_mbps(const struct zc_report *r)
{
	double s = zc_report_secs(r);

	return s > 0 ? r->bytes / 1e6 / s : 0;
}

double zc_report_cpu_per_gib(const struct zc_report *r)
{
	double gib = r->bytes / (double)(1ULL << 30);

	return gib > 0 ? (r->cpu_end - r->cpu_start) / gib : 0;
}

uint64_t zc_report_delta(const struct zc_report *r, size_t i)
{
	return zc_counter_get(&r->ledger_end, i) - zc_counter_get(&r->ledger_start, i);
}

void zc_report_json_open(const struct zc_report *r)
{
	const char *sep = "";
	size_t i;

	printf("{\"tool\": \"%s\", \"method\": \"%s\", \"proto\": \"%s\", \"family\": \"%s\", ",
	       zc_prog, r->method, r->udp ? "udp" : "tcp",
	       r->family == AF_INET6 ? "ipv6" : "ipv4");
	printf("\"bytes\": %llu, \"seconds\": %.6f, \"mb_per_s\": %.3f, ",
	       (unsigned long long)r->bytes, zc_report_secs(r), zc_report_mbps(r));
	printf("\"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f, \"cpu_s\": %.6f, \"cpu_s_per_gib\": %.6f, ",
	       zc_report_user(r), zc_report_sys(r), r->cpu_end - r->cpu_start,
	       zc_report_cpu_per_gib(r));
	printf("\"page_faults\": %llu, ", (unsigned long long)zc_report_faults(r));
	if (r->busy_start >= 0 && r->busy_end >= r->busy_start)
		printf("\"busy_s\": %.6f, ", r->busy_end - r->busy_start);
	else
		printf("\"busy_s\": null, ");
	printf("\"ctx_switches\": %ld, \"ctx_preempted\": %ld, ",
	       r->ru_end.ru_nvcsw - r->ru_start.ru_nvcsw,
	       r->ru_end.ru_nivcsw - r->ru_start.ru_nivcsw);
	if (r->checksum_on)
		printf("\"checksum\": \"%016llx\", ", (unsigned long long)r->checksum);
	else
		printf("\"checksum\": null, ");
	if (!r->ledger_on) {
		printf("\"zcopy\": null");
		return;
	}
	printf("\"zcopy\": {");
	for (i = 0; i < zc_nr_counters; i++)
		if (!zc_counters[i].now)
			printf("%s\"%s\": %llu", sep, zc_counters[i].name,
			       (unsigned long long)zc_report_delta(r, i)), sep = ", ";
	printf("}");
}

void zc_report_deltas(const struct zc_report *r, struct zcopy_stats *d)
{
	size_t i;

	memset(d, 0, sizeof(*d));
	for (i = 0; i < zc_nr_counters; i++) {
		uint64_t v = zc_counters[i].now ? 0 : zc_report_delta(r, i);

		memcpy((char *)d + zc_counters[i].offset, &v, sizeof(v));
	}
}

void zc_report_ledger_text(const struct zc_report *r)
{
	struct zcopy_stats d;

	zc_report_deltas(r, &d);
	printf("zcopy ledger, module-wide, over the run:\n");
	printf("  sent        %llu bytes in %llu sends, %llu sends completed\n",
	       ZC_ULL(d.send_bytes), ZC_ULL(d.sends), ZC_ULL(d.send_completions));
	printf("  zero-copied %llu bytes\n", ZC_ULL(d.tx_zerocopy_bytes));
	printf("  copied      %llu bytes: not offloaded %llu, loopback %llu, stack %llu, small %llu\n",
	       ZC_ULL(d.tx_copied_bytes), ZC_ULL(d.tx_copied_not_offloaded),
	       ZC_ULL(d.tx_copied_loopback), ZC_ULL(d.tx_copied_stack),
	       ZC_ULL(d.tx_copied_small));
	printf("  pinned      %llu pages\n", ZC_ULL(d.pages_pinned_total));
	printf("  pool        %llu bytes in %llu sends, %llu bytes sent from a copy\n",
	       ZC_ULL(d.pool_send_bytes), ZC_ULL(d.pool_sends), ZC_ULL(d.pool_send_copied_bytes));
	printf("  COW copies  %llu, write faults %llu, pages re-armed %llu\n",
	       ZC_ULL(d.cow_copies), ZC_ULL(d.write_faults), ZC_ULL(d.pages_rearmed));
	printf("  received    %llu bytes mapped, %llu bytes copied, in %llu receives\n",
	       ZC_ULL(d.rx_bytes_mapped), ZC_ULL(d.rx_bytes_copied), ZC_ULL(d.receives));
	printf("  copied on receipt, by cause: linear %llu, partial page %llu, unaligned %llu,\n"
	       "              foreign page %llu, cut by max_bytes %llu, datagram %llu\n",
	       ZC_ULL(d.rx_copied_linear), ZC_ULL(d.rx_copied_partial),
	       ZC_ULL(d.rx_copied_unaligned), ZC_ULL(d.rx_copied_foreign), ZC_ULL(d.rx_copied_cut),
	       ZC_ULL(d.rx_copied_datagram));
}

void zc_report_text(const struct zc_report *r)
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

size_t zc_parse_choice(const char *what, const char *name, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (names[i] && !strcmp(name, names[i]))
			return i;
	zc_die(ZC_EXIT_USAGE, "unknown %s '%s' (see --help)", what, name);
}

_Noreturn void zc_bad_option(int c, char **argv)
{
	if (c == ':')
		zc_die(ZC_EXIT_USAGE, "option '%s' needs a value (see --help)", argv[optind - 1]);
	zc_die(ZC_EXIT_USAGE, "unknown option '%s' (see --help)", argv[optind - 1]);
}
