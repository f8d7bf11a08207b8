/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libzcopy: the calls applications make to /dev/zcopy, as liburing is for
 * io_uring. Each is a thin wrapper of one ioctl, mmap() or read() of the
 * ABI in <linux/zcopy.h>, returning 0 (or a count) on success and -errno
 * on failure; what each call does is documented there.
 *
 * Also here, for tools and tests: the ledger's counters by name, and the
 * test pattern, an endless stream whose every byte is known from its
 * offset, with a 64-bit FNV-1a checksum.
 */
#ifndef LIBZCOPY_H
#define LIBZCOPY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/zcopy.h>

/* ---- the device ---- */

/* open(ZCOPY_DEVICE, O_RDWR | O_CLOEXEC): the fd, or -1 with errno. */
int zc_open(void);
int zc_info(int zfd, struct zcopy_info *info);
/* ZCOPY_FEAT_* bits, 0 if the call fails. */
uint64_t zc_features(int zfd);
/* The fd's ledger, or the module's with ZCOPY_STATS_MODULE in @flags. */
int zc_stats(int zfd, uint32_t flags, struct zcopy_stats *st);

/* ---- sending ---- */

/* ZCOPY_IOC_SEND of @n vectors; *@out (may be NULL) gets bytes, seq, offset. */
int zc_send(int zfd, int sock, const struct zcopy_iovec *iov, uint32_t n,
	    uint32_t flags, uint64_t cookie, struct zcopy_send *out);
/*
 * ZCOPY_IOC_SEND_BATCH of @n sends, each as zc_send() would fill it (its
 * results written back): how many were made (>= 1), or -errno when the
 * first failed. Sending stops at the first failure or short send.
 */
int zc_send_batch(int zfd, struct zcopy_send *sends, uint32_t n);
/*
 * Register [@buf, @buf + @len) (ZCOPY_IOC_REGISTER): its index (>= 0), or
 * -errno. zc_send_fixed() then sends from it without pinning anything.
 */
int zc_register(int zfd, const void *buf, size_t len);
int zc_unregister(int zfd, uint32_t index);
/* zc_send() of vectors that all lie in registered buffer @index. */
int zc_send_fixed(int zfd, int sock, uint32_t index, const struct zcopy_iovec *iov,
		  uint32_t n, uint32_t flags, uint64_t cookie, struct zcopy_send *out);
/* Map @len bytes of the send pool, read-write: the address, or MAP_FAILED. */
void *zc_pool_map(int zfd, size_t len);
/* ZCOPY_IOC_POOL_SEND of pool bytes [@off, @off + @len). */
int zc_pool_send(int zfd, int sock, uint64_t off, uint64_t len, uint32_t flags,
		 uint64_t cookie, struct zcopy_pool_send *out);
/* zc_send_batch() of pool sends (ZCOPY_IOC_POOL_SEND_BATCH), each as zc_pool_send() fills it. */
int zc_pool_send_batch(int zfd, struct zcopy_pool_send *sends, uint32_t n);
/*
 * Up to @n completion records, waiting up to @timeout_ms for the first
 * (-1: for ever, 0: not at all): how many were read, 0 if none came, or
 * -errno. Reading them maps the pool pages they cover writable again.
 * Where other threads read records from @zfd too, it should be O_NONBLOCK:
 * a blocking read after the wait can outlast @timeout_ms if they took them.
 */
int zc_read_records(int zfd, struct zcopy_completion *rec, unsigned int n, int timeout_ms);

/* ---- receiving ---- */

/* Map the receive area of @pages slots, read-only: the address, or MAP_FAILED. */
void *zc_rx_map(int zfd, size_t pages);
/* ZCOPY_IOC_RECV into @desc (@n entries): 0 with *@out filled in, or -errno. */
int zc_recv(int zfd, int sock, struct zcopy_rx_desc *desc, uint32_t n, uint32_t flags,
	    uint32_t timeout_ms, struct zcopy_recv *out);
/* ZCOPY_IOC_RECV with every field of @r the caller's (slots released in the same call). */
int zc_recv_args(int zfd, struct zcopy_recv *r);
/* ZCOPY_IOC_RELEASE of @n slots, by area offset. */
int zc_release(int zfd, const uint64_t *offsets, uint32_t n);

/* ---- forwarding: received bytes sent on ---- */

/*
 * ZCOPY_IOC_FORWARD of @n pieces of the receive area to @sock; *@out (may
 * be NULL) gets bytes, seq, stream_offset.
 */
int zc_forward(int zfd, int sock, const struct zcopy_fwd_piece *pieces, uint32_t n,
	       uint32_t flags, uint64_t cookie, struct zcopy_forward *out);

/*
 * Forward every byte of @pieces (@n), however short each call, retrying
 * after EINTR; *@calls (may be NULL) counts the ioctls that sent. 0 or
 * -errno. What each call sent is taken off @pieces (a piece sent whole
 * gets len 0, one sent in part a later offset), so that after an error
 * they hold what was not sent, and a call with the same @pieces resumes:
 * leading pieces of len 0 are skipped (all of them empty: 0, no call).
 */
int zc_forward_all(int zfd, int sock, struct zcopy_fwd_piece *pieces, uint32_t n,
		   uint32_t flags, uint64_t *calls);

/* ---- the features, by name ---- */

struct zc_feature {
	uint64_t bit;		/* ZCOPY_FEAT_* */
	const char *name;	/* as zcstat prints it */
};

/* Every ZCOPY_FEAT_* of <linux/zcopy.h>, in bit order. */
extern const struct zc_feature zc_feature_names[];
extern const size_t zc_nr_features;

/* ---- the ledger's counters, in the order of struct zcopy_stats ---- */

struct zc_counter {
	const char *name;	/* the field's name */
	size_t offset;		/* in struct zcopy_stats */
	const char *what;	/* a few words for people */
	int now;		/* a level (now), not a count that only grows */
};

extern const struct zc_counter zc_counters[];
extern const size_t zc_nr_counters;

uint64_t zc_counter_get(const struct zcopy_stats *st, size_t i);

/* ---- the test pattern and the checksum ---- */

/* Byte @off of the pattern. */
uint8_t zc_byte(uint64_t off);
/* Bytes [@off, @off + @len) of the pattern into @buf. */
void zc_fill(void *buf, uint64_t off, size_t len);
/* How many bytes of @buf, from the first, are pattern bytes from @off on. */
size_t zc_check(const void *buf, uint64_t off, size_t len);
/*
 * Where in the pattern @buf (@len >= ZC_LOCATE_MIN bytes) lies, judged by
 * its first two aligned words: 0 with *@off set, or -1 if it is not
 * pattern data.
 */
#define ZC_LOCATE_MIN	23
int zc_locate(const void *buf, size_t len, uint64_t *off);

/* A distinct stretch of the pattern for each @seed: zc_fill(buf, ZC_SEED(s), len). */
#define ZC_SEED(seed)	((uint64_t)(seed) << 40)

#define ZC_FNV_INIT	0xcbf29ce484222325ULL

/* FNV-1a, 64 bits: start from ZC_FNV_INIT, feed the bytes in order. */
uint64_t zc_fnv(uint64_t h, const void *buf, size_t len);

#endif /* LIBZCOPY_H */
