// SPDX-License-Identifier: GPL-2.0
/*
 * zcstat: what the zcopy module offers and what it has done.
 *
 *   zcstat [--json]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/zcopy.h>

static const struct {
	__u64 bit;
	const char *name;
} features[] = {
	{ 0, NULL },
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: zcstat [--json]\n"
		"Show the zcopy module's ABI and features.\n"
		"\n"
		"  -j, --json   machine-readable output\n"
		"  -h, --help   this text\n");
}

static void print_features(__u64 have, int json)
{
	const char *sep = "";
	unsigned int i;

	for (i = 0; features[i].name; i++) {
		if (!(have & features[i].bit))
			continue;
		printf(json ? "%s\"%s\"" : "%s%s", sep, features[i].name);
		sep = json ? ", " : " ";
	}
	if (!json && !*sep)
		printf("(none)");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct zcopy_info info;
	int json = 0, c, fd;

	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
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
		close(fd);
		return 1;
	}
	close(fd);

	if (json) {
		printf("{\"abi_version\": %u, \"page_size\": %u, \"features\": [",
		       info.abi_version, info.page_size);
		print_features(info.features, 1);
		printf("]}\n");
	} else {
		printf("zcopy ABI %u (this zcstat speaks ABI %u), page size %u\n",
		       info.abi_version, ZCOPY_ABI_VERSION, info.page_size);
		printf("features: ");
		print_features(info.features, 0);
		printf("\n");
	}
	return 0;
}
