/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What zcsend and zcrecv share beyond libzcopy (the calls, the test
 * pattern and the checksum): messages, size and address parsing, timing,
 * the progress line and the final report (text or JSON).
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

#include "lib/libzcopy.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ZC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ZC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Exit statuses: 1 for what went wrong at run time, 2 for bad arguments. */
#define ZC_EXIT_RUNTIME	1
#define ZC_EXIT_USAGE	2

extern const char *zc_prog;

void zc_vmsg(const char *fmt, va_list ap);

/* A one-line message on stderr, then exit with @status. */
_Noreturn void zc_die(int status, const char *fmt, ...);

/* A failed system call: "prog: what: strerror(errno)", exit 1. */
_Noreturn void zc_fail(const char *what);

/* ---- arguments ---- */

/* "N" with an optional K, M, G or T (powers of 1024): 0, or -1 if bad. */
int zc_parse_size(const char *s, uint64_t *out);

/* A size argument, or exit 2 naming @opt. */
uint64_t zc_size_arg(const char *opt, const char *s);

/* A --timeout argument: whole seconds, 1 to 86400, or exit with usage. */
int zc_timeout_arg(const char *s);

/*
 * "ADDR:PORT", "[IPV6]:PORT" or, when @port_only_ok, "PORT" (the wildcard
 * address, IPv6 and IPv4): numeric addresses only. 0, or -1 if bad.
 */
int zc_parse_addr(const char *arg, int port_only_ok,
		  struct sockaddr_storage *ss, socklen_t *len);

/* "ADDR:PORT" or "[ADDR]:PORT" of @ss into @buf. */
const char *zc_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len);

/* Largest UDP payload for @family. */
uint64_t zc_udp_max(int family);

/* ---- I/O ---- */

/* write() all of @buf: 0, or -1 with errno. */
int zc_write_all(int fd, const void *buf, size_t len);

/*
 * Wait for @fd to be ready for @events (0: errors and hangup only): 0, or
 * -1 when @timeout_ms passed; dies on poll()'s own failure.
 */
int zc_wait_fd(int fd, short events, int timeout_ms);

/* ---- time, CPU, progress ---- */

double zc_now(void);

double zc_tv(const struct timeval *tv);

/* A progress line on stderr about once a second, if stderr is a terminal. */
struct zc_progress {
	int on;
	double start, next;
	uint64_t last_bytes;
};

void zc_progress_start(struct zc_progress *p);

void zc_progress(struct zc_progress *p, uint64_t bytes);

void zc_progress_end(struct zc_progress *p);

/* ---- the zcopy ledger ---- */

/* The module-wide ledger into @st: 0, or -1 (no /dev/zcopy, or no stats). */
int zc_ledger_read(struct zcopy_stats *st);

/* /dev/zcopy for a method that needs it, or exit 1 saying why. */
int zc_open_device(const char *method);

/* ---- the report ---- */

struct zc_report {
	const char *method;
	int udp, family;
	uint64_t bytes;
	double start, end;
	double cpu_start, cpu_end;	/* CLOCK_PROCESS_CPUTIME_ID */
	double busy_start, busy_end;	/* the machine's busy CPU time, or -1 */
	struct rusage ru_start, ru_end;
	int checksum_on;
	uint64_t checksum;
	int ledger_on;
	struct zcopy_stats ledger_start, ledger_end;
};

void zc_report_start(struct zc_report *r);

void zc_report_end(struct zc_report *r);

double zc_report_user(const struct zc_report *r);

double zc_report_sys(const struct zc_report *r);

double zc_report_secs(const struct zc_report *r);

/* Page faults the process took over the run. */
uint64_t zc_report_faults(const struct zc_report *r);

double zc_report_mbps(const struct zc_report *r);

double zc_report_cpu_per_gib(const struct zc_report *r);

uint64_t zc_report_delta(const struct zc_report *r, size_t i);

#define ZC_REPORT_KEYS \
	"  tool method proto (\"tcp\", \"udp\") family (\"ipv4\", \"ipv6\") bytes seconds\n" \
	"  mb_per_s cpu_user_s cpu_sys_s (getrusage(), split at ticks) cpu_s\n" \
	"  (CLOCK_PROCESS_CPUTIME_ID, exact) cpu_s_per_gib (of cpu_s) page_faults\n" \
	"  (the process's, over the run) busy_s (the machine's busy CPU time\n" \
	"  over the run, all processes, softirqs and kernel workers: with one\n" \
	"  CPU from /proc/timer_list, else /proc/stat; null if unknown)\n" \
	"  ctx_switches ctx_preempted (its voluntary and involuntary context\n" \
	"  switches, over the run) checksum (16 hex digits,\n" \
	"  or null without --checksum) zcopy (null without /dev/zcopy, else the\n" \
	"  module-wide ledger's growth over the run: each counter of zcstat that\n" \
	"  only grows, by its name)\n"

/* The common part of the JSON object, left open for the tool's own keys. */
void zc_report_json_open(const struct zc_report *r);

/* The growth of each counter that only grows into @d (the others zero). */
void zc_report_deltas(const struct zc_report *r, struct zcopy_stats *d);

#define ZC_ULL(x) ((unsigned long long)(x))

void zc_report_ledger_text(const struct zc_report *r);

void zc_report_text(const struct zc_report *r);

/* ---- options ---- */

/* The index of @name among @names (@n of them), or exit 2 naming the @what. */
size_t zc_parse_choice(const char *what, const char *name, const char *const *names, size_t n);
/* getopt_long() said @c (':' or '?') of argv[optind - 1]: exit 2, saying why. */
_Noreturn void zc_bad_option(int c, char **argv);

#endif /* ZCCOMMON_H */
