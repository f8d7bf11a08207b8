// SPDX-License-Identifier: GPL-2.0
/*
 * zcstat: what the zcopy module offers and what it has done with every byte.
 *
 *   zcstat [--json] [--interval SECONDS [--count N]]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/zcopy.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	__u64 bit;
	const char *name;
} features[] = {
	{ ZCOPY_FEAT_SEND, "send" },
	{ ZCOPY_FEAT_STATS, "stats" },
	{ ZCOPY_FEAT_POOL, "pool" },
	{ ZCOPY_FEAT_RECV, "recv" },
};

#define COUNTER(f, what) { #f, offsetof(struct zcopy_stats, f), what }
static const struct {
	const char *name;
	size_t offset;
	const char *what;
} counters[] = {
	COUNTER(sends, "sends that moved data"),
	COUNTER(send_bytes, "bytes accepted by sockets"),
	COUNTER(send_completions, "sends the stack let go of"),
	COUNTER(tx_zerocopy_bytes, "bytes sent without a copy"),
	COUNTER(tx_copied_bytes, "bytes the stack copied"),
	COUNTER(tx_copied_not_offloaded, "  at send: no SG/csum offload"),
	COUNTER(tx_copied_loopback, "  delivered over loopback"),
	COUNTER(tx_copied_stack, "  elsewhere on the way"),
	COUNTER(sends_in_flight, "sends in flight (now)"),
	COUNTER(pages_pinned, "pages pinned (now)"),
	COUNTER(pages_pinned_peak, "pages pinned at most"),
	COUNTER(pages_pinned_total, "pages pinned in all"),
	COUNTER(records_queued, "completion records unread (now)"),
	COUNTER(pool_pages, "pages in send pools (now)"),
	COUNTER(pool_sends, "sends from a pool"),
	COUNTER(pool_send_bytes, "bytes sent from a pool"),
	COUNTER(pool_send_copied_bytes, "  sent from a copy (pinned elsewhere)"),
	COUNTER(cow_copies, "pool pages copied on write in flight"),
	COUNTER(write_faults, "writes to pool pages that faulted"),
	COUNTER(pages_rearmed, "pool pages re-armed after completion"),
	COUNTER(pool_pages_in_flight, "pool pages the stack holds (now)"),
	COUNTER(receives, "receives that returned data"),
	COUNTER(rx_bytes_mapped, "bytes received as mapped pages"),
	COUNTER(rx_bytes_copied, "bytes received by copying"),
	COUNTER(rx_slots_used, "receive slots holding data (now)"),
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: zcstat [--json] [--interval SECONDS [--count N]]\n"
		"Show the zcopy module's ABI, features and ledger (module-wide totals).\n"
		"\n"
		"  -j, --json            machine-readable output, one object per sample\n"
		"  -i, --interval SECS   print a new sample every SECS seconds\n"
		"  -c, --count N         stop after N samples (default: forever with -i)\n"
		"  -h, --help            this text\n");
}

static __u64 counter(const struct zcopy_stats *st, size_t i)
{
	return *(const __u64 *)((const char *)st + counters[i].offset);
}

static void print_json(const struct zcopy_info *info, const struct zcopy_stats *st)
{
	const char *sep = "";
	size_t i;

	printf("{\"abi_version\": %u, \"page_size\": %u, \"features\": [",
	       info->abi_version, info->page_size);
	for (i = 0; i < ARRAY_SIZE(features); i++) {
		if (info->features & features[i].bit) {
			printf("%s\"%s\"", sep, features[i].name);
			sep = ", ";
		}
	}
	printf("], \"ledger\": {");
	for (i = 0; i < ARRAY_SIZE(counters); i++)
		printf("%s\"%s\": %llu", i ? ", " : "", counters[i].name,
		       (unsigned long long)counter(st, i));
	printf("}}\n");
}

static void print_text(const struct zcopy_info *info, const struct zcopy_stats *st)
{
	size_t i;

	printf("zcopy ABI %u (zcstat speaks %u), page size %u, features:",
	       info->abi_version, ZCOPY_ABI_VERSION, info->page_size);
	for (i = 0; i < ARRAY_SIZE(features); i++)
		if (info->features & features[i].bit)
			printf(" %s", features[i].name);
	printf("\n");
	for (i = 0; i < ARRAY_SIZE(counters); i++)
		printf("  %-26s %14llu  %s\n", counters[i].name,
		       (unsigned long long)counter(st, i), counters[i].what);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long interval = 0, count = 1, n;
	struct zcopy_stats st;
	struct zcopy_info info;
	int json = 0, c, fd;
	char *end;

	while ((c = getopt_long(argc, argv, "ji:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'i':
			interval = strtol(optarg, &end, 10);
			if (*end || interval <= 0) {
				fprintf(stderr, "zcstat: bad interval '%s'\n", optarg);
				return 2;
			}
			count = 0;
			break;
		case 'c':
			count = strtol(optarg, &end, 10);
			if (*end || count <= 0) {
				fprintf(stderr, "zcstat: bad count '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "zcstat: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	fd = open(ZCOPY_DEVICE, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "zcstat: %s: %s%s\n", ZCOPY_DEVICE, strerror(errno),
			errno == ENOENT ? " (is zcopy.ko loaded?)" : "");
		return 1;
	}
	memset(&info, 0, sizeof(info));
	if (ioctl(fd, ZCOPY_IOC_INFO, &info)) {
		fprintf(stderr, "zcstat: ZCOPY_IOC_INFO: %s\n", strerror(errno));
		return 1;
	}

	for (n = 0; !count || n < count; n++) {
		if (n)
			sleep(interval);
		memset(&st, 0, sizeof(st));
		st.flags = ZCOPY_STATS_MODULE;
		if (ioctl(fd, ZCOPY_IOC_STATS, &st)) {
			fprintf(stderr, "zcstat: ZCOPY_IOC_STATS: %s\n", strerror(errno));
			return 1;
		}
		if (json)
			print_json(&info, &st);
		else
			print_text(&info, &st);
		fflush(stdout);
	}
	close(fd);
	return 0;
}
