// SPDX-License-Identifier: GPL-2.0
/*
 * libzcopy's test pattern: zc_fill() and zc_check() agree at any offset and
 * length, zc_locate() places pattern data at any alignment and refuses
 * what is not pattern data. Output: TAP.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libzcopy.h"

#define ROUNDS	20000
#define MAX_LEN	4096

static int tests, failed;

static void result(bool ok, const char *name)
{
	tests++;
	if (!ok)
		failed = 1;
	printf("%sok %d %s\n", ok ? "" : "not ", tests, name);
}

/* xorshift64*: the same cases on every run. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static bool fill_check(void)
{
	static uint8_t buf[MAX_LEN];
	uint64_t s = 1, off;
	size_t len, bad;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		off = rnd(&s) >> (rnd(&s) & 63);
		len = rnd(&s) % MAX_LEN;
		zc_fill(buf, off, len);
		if (zc_check(buf, off, len) != len) {
			printf("# offset %llu, %zu bytes: zc_check() says %zu\n",
			       (unsigned long long)off, len, zc_check(buf, off, len));
			return false;
		}
		if (!len)
			continue;
		bad = rnd(&s) % len;
		buf[bad] ^= 1 << (rnd(&s) & 7);
		if (zc_check(buf, off, len) != bad) {
			printf("# offset %llu, %zu bytes, byte %zu changed: zc_check() says %zu\n",
			       (unsigned long long)off, len, bad, zc_check(buf, off, len));
			return false;
		}
	}
	return true;
}

/* zc_locate() finds @len bytes of the pattern from @off where they are. */
static bool locate_at(uint64_t off, size_t len)
{
	static uint8_t buf[MAX_LEN];
	uint64_t got = 0;

	zc_fill(buf, off, len);
	if (!zc_locate(buf, len, &got) && got == off)
		return true;
	printf("# %zu bytes at %llu: located at %llu\n", len, (unsigned long long)off,
	       (unsigned long long)got);
	return false;
}

/* Datagrams of @len at offsets @len apart, as zcsend --udp sends them. */
static bool locate_stream(size_t len)
{
	int i;

	for (i = 0; i < ROUNDS; i++)
		if (!locate_at((uint64_t)i * len, len))
			return false;
	return true;
}

static bool locate_any(void)
{
	uint64_t s = 2, off;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		off = rnd(&s) >> (rnd(&s) & 63) >> 3;
		if (!locate_at(off, ZC_LOCATE_MIN + rnd(&s) % 64))
			return false;
	}
	return true;
}

static bool locate_refuses(void)
{
	static uint8_t buf[MAX_LEN];
	uint64_t s = 3, got;
	size_t len, i;
	int n;

	for (n = 0; n < ROUNDS; n++) {
		len = ZC_LOCATE_MIN + rnd(&s) % 64;
		for (i = 0; i < len; i++)
			buf[i] = rnd(&s);
		if (!zc_locate(buf, len, &got)) {
			printf("# random bytes (%zu) located at %llu\n", len,
			       (unsigned long long)got);
			return false;
		}
	}
	zc_fill(buf, 12345, ZC_LOCATE_MIN - 1);
	if (!zc_locate(buf, ZC_LOCATE_MIN - 1, &got)) {
		printf("# %d bytes were located\n", ZC_LOCATE_MIN - 1);
		return false;
	}
	return true;
}

int main(void)
{
	printf("TAP version 13\n1..5\n");
	result(fill_check(), "zc_check() accepts zc_fill()'s bytes and finds one changed bit");
	result(locate_stream(1001), "zc_locate() places 1001-byte datagrams, at every alignment");
	result(locate_stream(1400), "zc_locate() places 1400-byte datagrams");
	result(locate_any(), "zc_locate() places short runs at random offsets");
	result(locate_refuses(), "zc_locate() refuses random bytes and too few bytes");
	return failed;
}
