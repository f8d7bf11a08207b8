// SPDX-License-Identifier: GPL-2.0
/*
 * What a byte copied costs against a call, in the time of the machine it
 * runs on: user-space rep movsb and an 8-byte loop, and the kernel's own
 * copies (a pipe written and read back: two copy_user calls a byte), by
 * chunks of 64 KiB and of 64 bytes, so that the per-byte and per-call
 * parts can be told apart. Run in the bench's VM (-icount: guest time is
 * instructions) and on the host, the ratios say how much more a copy
 * weighs under -icount than on the host's CPU.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOTAL	(64UL << 20)
#define BUF	(1UL << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void rep_movsb(void *d, const void *s, size_t n)
{
	asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static void loop8(void *d, const void *s, size_t n)
{
	uint64_t *dd = d;
	const uint64_t *ss = s;
	size_t i;

	for (i = 0; i < n / 8; i++)
		dd[i] = ss[i];
	asm volatile("" : : "r"(dd) : "memory");
}

static double user_copy(void (*f)(void *, const void *, size_t), char *a, char *b)
{
	double t = now();
	size_t done;

	for (done = 0; done < TOTAL; done += BUF)
		f(b, a, BUF);
	return (now() - t) / TOTAL * 1e9;
}

/* ns per byte through a pipe, in chunks of @chunk: a write and a read each. */
static double pipe_copy(char *a, char *b, size_t chunk, size_t total)
{
	int p[2];
	size_t done;
	double t;

	if (pipe(p) || fcntl(p[1], F_SETPIPE_SZ, 1 << 20) < 0)
		exit(1);
	t = now();
	for (done = 0; done < total; done += chunk) {
		if (write(p[1], a, chunk) != (ssize_t)chunk || read(p[0], b, chunk) != (ssize_t)chunk)
			exit(1);
	}
	t = (now() - t) / total * 1e9;
	close(p[0]);
	close(p[1]);
	return t;
}

int main(void)
{
	char *a = malloc(BUF), *b = malloc(BUF);
	double big, small;

	memset(a, 1, BUF);
	memset(b, 2, BUF);
	printf("user rep movsb:         %.3f ns/byte\n", user_copy(rep_movsb, a, b));
	printf("user 8-byte loop:       %.3f ns/byte\n", user_copy(loop8, a, b));
	big = pipe_copy(a, b, 65536, TOTAL);
	small = pipe_copy(a, b, 64, TOTAL / 64);
	printf("pipe, 64 KiB chunks:    %.3f ns/byte (a write and a read: two copies)\n", big);
	printf("pipe, 64-byte chunks:   %.3f ns/byte, %.0f ns a write and read\n", small,
	       small * 64);
	printf("kernel copy, per byte:  %.3f ns (of the 64 KiB figure, less its calls' share)\n",
	       (big - small * 64 / 65536) / 2);
	return 0;
}
