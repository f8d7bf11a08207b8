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

#include "lib/libzcopy.h"

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

static void print_json(const struct zcopy_info *info, const struct zcopy_stats *st)
{
	const char *sep = "";
	size_t i;

	printf("{\"abi_version\": %u, \"page_size\": %u, \"features\": [",
	       info->abi_version, info->page_size);
	for (i = 0; i < zc_nr_features; i++) {
		if (info->features & zc_feature_names[i].bit) {
			printf("%s\"%s\"", sep, zc_feature_names[i].name);
			sep = ", ";
		}
	}
	printf("], \"ledger\": {");
	for (i = 0; i < zc_nr_counters; i++)
		printf("%s\"%s\": %llu", i ? ", " : "", zc_counters[i].name,
		       (unsigned long long)zc_counter_get(st, i));
	printf("}}\n");
}

static void print_text(const struct zcopy_info *info, const struct zcopy_stats *st)
{
	size_t i;

	printf("zcopy ABI %u (zcstat speaks %u), page size %u, features:",
	       info->abi_version, ZCOPY_ABI_VERSION, info->page_size);
	for (i = 0; i < zc_nr_features; i++)
		if (info->features & zc_feature_names[i].bit)
			printf(" %s", zc_feature_names[i].name);
	printf("\n");
	for (i = 0; i < zc_nr_counters; i++)
		printf("  %-26s %14llu  %s\n", zc_counters[i].name,
		       (unsigned long long)zc_counter_get(st, i), zc_counters[i].what);
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
	int json = 0, c, fd, ret;
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
	ret = zc_info(fd, &info);
	if (ret) {
		fprintf(stderr, "zcstat: ZCOPY_IOC_INFO: %s\n", strerror(-ret));
		return 1;
	}

	for (n = 0; !count || n < count; n++) {
		if (n)
			sleep(interval);
		ret = zc_stats(fd, ZCOPY_STATS_MODULE, &st);
		if (ret) {
			fprintf(stderr, "zcstat: ZCOPY_IOC_STATS: %s\n", strerror(-ret));
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
